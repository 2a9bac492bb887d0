//! Elman RNN, one direction (PyTorch `nn.RNN`):
//!
//! ```text
//! h_t = f(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh),   f = tanh or relu       [B, H]
//! ```
//!
//! Backward: `da = (dy_t + dh_t) ⊙ f'(a)` with `f' = 1 − h_t²` (tanh) or `[h_t > 0]` (relu, 0 at
//! the kink like PyTorch), then `dh_{t-1} = da W_hh`.

use super::{
    backprop_to_previous_state, carry_finished_rows, finish_backward, inference_gates, project_inputs, resized,
    write_output, BackwardScratch, CellCache, CellDownstream, CellGrads, CellInput, CellSequence, CellUpstream,
    CellWeights, CellWorkspace, PackedCellWeights,
};
use super::{
    block_product, for_each_row_block, for_each_row_block_backward, recurrent_product, step_row_blocks, RowBlocks,
    SharedRows,
};
use crate::kernels::activations;
use crate::kernels::precision::PackedOperand;

/// One step: `pre_t [B, H]` holds the input side (+ both biases) on entry and `h_t` (for every
/// row) on exit; `h_t` receives a copy.
fn step(w_hh_t: &impl PackedOperand, batch: usize, pre_t: &mut [f32], h_prev: &[f32], h_t: &mut [f32], relu: bool) {
    let Some(per) = step_row_blocks(batch) else {
        // pre_t [B, H] += h_prev [B, H] · W_hhᵀ [H, H]
        recurrent_product(batch, h_prev, w_hh_t, 1.0, pre_t);
        activations::rnn_step(pre_t, relu);
        h_t.copy_from_slice(pre_t);
        return;
    };
    // The same per row, one parallel region: each block of `per` rows does both phases.
    let len = per * w_hh_t.k();
    let mut blocks: RowBlocks<_> = pre_t.chunks_mut(len).zip(h_prev.chunks(len)).zip(h_t.chunks_mut(len)).collect();
    crate::parallel::for_each_mut(&mut blocks[..], |((pre, h_prev), h_t)| {
        block_product(h_prev.len() / w_hh_t.k(), h_prev, w_hh_t, 1.0, pre);
        activations::rnn_step(pre, relu);
        h_t.copy_from_slice(pre);
    });
}

/// Training forward over `cache.x`; `cache` has been prepared (h0 in slot 0).
pub(super) fn forward(w: &CellWeights, y: &mut [f32], cache: &mut CellCache, relu: bool) {
    let d = cache.dims;
    let bh = d.batch * d.hidden;
    project_inputs(w, None, d, 1, 1, &cache.x, &mut cache.gates);
    if let Some(per) = step_row_blocks(d.batch) {
        // Each block of rows runs every step in one parallel region (the same operations per
        // row as one region per step).
        let (hd, lengths, w_hh_t) = (d.hidden, &cache.lengths, &cache.w_hh_t);
        let (gates, h, out) = (SharedRows::new(&mut cache.gates), SharedRows::new(&mut cache.h), SharedRows::new(y));
        return for_each_row_block(d.batch, per, |rows| {
            let (first, len, lengths) = (rows.start * hd, rows.len() * hd, &lengths[rows.clone()]);
            for t in 0..d.steps {
                // SAFETY: this block's rows of step t (pre, y), t (h_prev) and t + 1 (h_t):
                // disjoint from each other and from every other block's.
                let (pre_t, h_prev, h_t, y_t) = unsafe {
                    let at = t * bh + first;
                    (gates.slice(at, len), &*h.slice(at, len), h.slice(at + bh, len), out.slice(at, len))
                };
                block_product(rows.len(), h_prev, w_hh_t, 1.0, pre_t);
                activations::rnn_step(pre_t, relu);
                h_t.copy_from_slice(pre_t);
                carry_finished_rows(lengths, t, hd, h_prev, h_t);
                write_output(lengths, t, hd, h_t, y_t);
            }
        });
    }
    for t in 0..d.steps {
        let pre_t = &mut cache.gates[t * bh..(t + 1) * bh];
        let (h_before, h_after) = cache.h.split_at_mut((t + 1) * bh);
        let (h_prev, h_t) = (&h_before[t * bh..], &mut h_after[..bh]);
        step(&cache.w_hh_t, d.batch, pre_t, h_prev, h_t, relu);
        carry_finished_rows(&cache.lengths, t, d.hidden, h_prev, h_t);
        write_output(&cache.lengths, t, d.hidden, h_t, &mut y[t * bh..(t + 1) * bh]);
    }
}

/// Cache-free forward: state `h` `[B, H]` in and out.
pub(super) fn forward_inference(
    w: &CellWeights,
    packed: &PackedCellWeights,
    seq: CellSequence<CellInput>,
    h: &mut [f32],
    y: &mut [f32],
    ws: &mut CellWorkspace,
    relu: bool,
) {
    let CellSequence { dims: d, x, lengths } = seq;
    let bh = d.batch * d.hidden;
    inference_gates(w, packed, d, 1, 1, x, &mut ws.gates);
    for t in 0..d.steps {
        let pre_t = &mut ws.gates[t * bh..(t + 1) * bh];
        step(&packed.w_hh_t, d.batch, pre_t, h, &mut ws.h_next, relu);
        carry_finished_rows(lengths, t, d.hidden, h, &mut ws.h_next);
        write_output(lengths, t, d.hidden, &ws.h_next, &mut y[t * bh..(t + 1) * bh]);
        h.copy_from_slice(&ws.h_next);
    }
}

/// What the backward of step t reads, for a block of R rows.
#[derive(Debug, Clone, Copy)]
struct StepGradInputs<'a> {
    /// `[R]` real length of each row.
    lengths: &'a [usize],
    /// `[R, H]` the activation `h_t`.
    act: &'a [f32],
    /// `[R, H]` dL/dy_t.
    dy: &'a [f32],
    /// `[R, H]` dL/dh_t from step t+1.
    dh: &'a [f32],
}

/// What the backward of step t writes, for a block of R rows.
#[derive(Debug)]
struct StepGrads<'a> {
    /// `[R, H]` dL/da_t, the pre-activation gradient.
    da: &'a mut [f32],
    /// `[R, H]` dL/dh_{t-1}.
    dh_prev: &'a mut [f32],
}

/// `dA_t` of one step, from `dh = dL/dh_t` without the output's `dy_t`; sets `dh_prev` to a
/// padded row's `dh` (passed straight through) or 0 (the product with `W_hh` adds the rest).
fn pre_activation_gradients(t: usize, hd: usize, inputs: StepGradInputs, grads: &mut StepGrads, relu: bool) {
    let StepGradInputs { lengths, act: act_t, dy: dy_t, dh } = inputs;
    let (da_t, dh_prev) = (&mut *grads.da, &mut *grads.dh_prev);
    for (row, &len) in lengths.iter().enumerate() {
        let state = row * hd..(row + 1) * hd;
        if t >= len {
            // Padded step: the state was copied, so its gradient passes straight through.
            da_t[state.clone()].fill(0.0);
            dh_prev[state.clone()].copy_from_slice(&dh[state]);
            continue;
        }
        for k in state {
            let a = act_t[k];
            let slope = if relu {
                if a > 0.0 {
                    1.0
                } else {
                    0.0
                }
            } else {
                1.0 - a * a
            };
            da_t[k] = (dh[k] + dy_t[k]) * slope;
            dh_prev[k] = 0.0;
        }
    }
}

/// Backward through the cached sequence.
pub(super) fn backward(
    w: &CellWeights,
    cache: &CellCache,
    up: CellUpstream,
    g: &mut CellGrads,
    down: CellDownstream,
    s: &mut BackwardScratch,
    relu: bool,
) {
    let d = cache.dims;
    let hd = d.hidden;
    let bh = d.batch * hd;
    // dA [T, B, H]: pre-activation gradients of every step.
    let da = resized(&mut s.dg_ih, d.rows() * hd);
    let (dh, dh_prev) = (&mut s.dh, &mut s.dh_prev);
    dh.clear();
    dh.extend_from_slice(up.dh_n);
    resized(dh_prev, bh);
    if let Some(per) = step_row_blocks(d.batch) {
        // Each block of rows runs every step in one parallel region.
        let grads_da = SharedRows::new(da);
        for_each_row_block_backward(d, per, dh, dh_prev, |rows, t, dh_t, dh_prev| {
            let (at, len) = (t * bh + rows.start * hd, rows.len() * hd);
            // SAFETY: this block's rows of step t of `da`: disjoint from every other block's.
            let da_t = unsafe { grads_da.slice(at, len) };
            let inputs = StepGradInputs {
                lengths: &cache.lengths[rows.clone()],
                act: &cache.gates[at..at + len],
                dy: &up.dy[at..at + len],
                dh: dh_t,
            };
            let mut grads = StepGrads { da: da_t, dh_prev };
            pre_activation_gradients(t, hd, inputs, &mut grads, relu);
            block_product(rows.len(), grads.da, &cache.w_hh, 1.0, grads.dh_prev);
        });
        down.dh0.copy_from_slice(dh);
        return finish_backward(w, cache, 1, da, da, g, down.dx);
    }
    for t in (0..d.steps).rev() {
        let inputs = StepGradInputs {
            lengths: &cache.lengths,
            act: &cache.gates[t * bh..(t + 1) * bh],
            dy: &up.dy[t * bh..(t + 1) * bh],
            dh,
        };
        let mut grads = StepGrads { da: &mut da[t * bh..(t + 1) * bh], dh_prev };
        pre_activation_gradients(t, hd, inputs, &mut grads, relu);
        backprop_to_previous_state(cache, grads.da, grads.dh_prev);
        std::mem::swap(dh, dh_prev);
    }
    down.dh0.copy_from_slice(dh);
    finish_backward(w, cache, 1, da, da, g, down.dx);
}
