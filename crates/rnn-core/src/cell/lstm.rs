//! LSTM, one direction (PyTorch definition, gate rows `i, f, g, o`):
//!
//! ```text
//! [a_i, a_f, a_g, a_o] = x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh      [B, 4H]
//! i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o)
//! c_t = f ⊙ c_{t-1} + i ⊙ g
//! h_t = o ⊙ tanh(c_t)
//! ```
//!
//! Backward (as torch-rnn's LSTM.lua), with `dh = dL/dh_t` (from y_t and from step t+1) and `dc`
//! the gradient reaching c_t from step t+1:
//!
//! ```text
//! dc  += dh ⊙ o ⊙ (1 − tanh²c_t)          (c_t also feeds h_t)
//! da_i = dc ⊙ g ⊙ i(1−i)       da_f = dc ⊙ c_{t-1} ⊙ f(1−f)
//! da_g = dc ⊙ i ⊙ (1−g²)        da_o = dh ⊙ tanh c_t ⊙ o(1−o)
//! dc_{t-1} = dc ⊙ f            dh_{t-1} = dG_t W_hh           (dG_t = [da_i, da_f, da_g, da_o])
//! ```

use super::{
    backprop_to_previous_state, carry_finished_rows, finish_backward, inference_gates, project_inputs, resized,
    write_output, BackwardScratch, CellCache, CellDownstream, CellGrads, CellInput, CellSequence, CellUpstream,
    CellWeights, CellWorkspace, PackedCellWeights,
};
use super::{
    block_product, for_each_row_block, for_each_row_block_backward, recurrent_product, step_row_blocks, SharedRows,
};
use crate::kernels::activations;
use crate::kernels::precision::PackedOperand;

const GATES: usize = 4;

/// The buffers of one forward step, for a block of R rows; h, c and tanh_c are written for
/// every row (padding is fixed by the caller).
#[derive(Debug)]
struct StepTensors<'a> {
    /// `[R, 4H]` the input side (+ both biases) on entry, the activated gates on exit.
    gates: &'a mut [f32],
    /// `[R, H]` h_{t-1}.
    h_prev: &'a [f32],
    /// `[R, H]` c_{t-1}.
    c_prev: &'a [f32],
    /// `[R, H]` h_t.
    h: &'a mut [f32],
    /// `[R, H]` c_t.
    c: &'a mut [f32],
    /// `[R, H]` tanh(c_t).
    tanh_c: &'a mut [f32],
}

/// One step over `s` (B rows) in two phases: the product split by columns, then the gates
/// split by rows (a training forward with enough rows runs its row blocks through every step
/// instead, see [`forward`]).
fn step(w_hh_t: &impl PackedOperand, batch: usize, hidden: usize, s: StepTensors) {
    let StepTensors { gates, h_prev, c_prev, h, c, tanh_c } = s;
    // gates [B, 4H] += h_prev [B, H] · W_hhᵀ [H, 4H]
    recurrent_product(batch, h_prev, w_hh_t, 1.0, gates);
    activations::lstm_step(gates, c_prev, c, tanh_c, h, hidden);
}

/// Training forward over `cache.x`; `cache` has been prepared (h0, c0 in slot 0).
pub(super) fn forward(w: &CellWeights, y: &mut [f32], cache: &mut CellCache) {
    let d = cache.dims;
    let (bh, bg) = (d.batch * d.hidden, d.batch * GATES * d.hidden);
    project_inputs(w, None, d, GATES, GATES, &cache.x, &mut cache.gates);
    if let Some(per) = step_row_blocks(d.batch) {
        // Each block of rows runs every step in one parallel region (the same operations per
        // row as `step`'s one region per step).
        let (hd, lengths, w_hh_t) = (d.hidden, &cache.lengths, &cache.w_hh_t);
        let (gates, h, c) =
            (SharedRows::new(&mut cache.gates), SharedRows::new(&mut cache.h), SharedRows::new(&mut cache.c));
        let (tanh_c, out) = (SharedRows::new(&mut cache.aux), SharedRows::new(y));
        return for_each_row_block(d.batch, per, |rows| {
            let (len, gate_len, lengths) = (rows.len() * hd, rows.len() * GATES * hd, &lengths[rows.clone()]);
            for t in 0..d.steps {
                let (at, gates_at) = (t * bh + rows.start * hd, t * bg + rows.start * GATES * hd);
                // SAFETY: this block's rows of step t (gates, tanh c, y), t (h_prev, c_prev) and
                // t + 1 (h_t, c_t): disjoint from each other and from every other block's.
                let (gates_t, h_prev, c_prev, h_t, c_t, tanh_t, y_t) = unsafe {
                    let (h_prev, c_prev) = (&*h.slice(at, len), &*c.slice(at, len));
                    let (h_t, c_t) = (h.slice(at + bh, len), c.slice(at + bh, len));
                    (
                        gates.slice(gates_at, gate_len),
                        h_prev,
                        c_prev,
                        h_t,
                        c_t,
                        tanh_c.slice(at, len),
                        out.slice(at, len),
                    )
                };
                block_product(rows.len(), h_prev, w_hh_t, 1.0, gates_t);
                activations::lstm_rows(gates_t, c_prev, c_t, tanh_t, h_t, hd);
                carry_finished_rows(lengths, t, hd, h_prev, h_t);
                carry_finished_rows(lengths, t, hd, c_prev, c_t);
                write_output(lengths, t, hd, h_t, y_t);
            }
        });
    }
    for t in 0..d.steps {
        let gates = &mut cache.gates[t * bg..(t + 1) * bg];
        let (h_before, h_after) = cache.h.split_at_mut((t + 1) * bh);
        let (h_prev, h_t) = (&h_before[t * bh..], &mut h_after[..bh]);
        let (c_before, c_after) = cache.c.split_at_mut((t + 1) * bh);
        let (c_prev, c_t) = (&c_before[t * bh..], &mut c_after[..bh]);
        let tanh_c = &mut cache.aux[t * bh..(t + 1) * bh];
        let s = StepTensors { gates, h_prev, c_prev, h: h_t, c: c_t, tanh_c };
        step(&cache.w_hh_t, d.batch, d.hidden, s);
        carry_finished_rows(&cache.lengths, t, d.hidden, h_prev, h_t);
        carry_finished_rows(&cache.lengths, t, d.hidden, c_prev, c_t);
        write_output(&cache.lengths, t, d.hidden, h_t, &mut y[t * bh..(t + 1) * bh]);
    }
}

/// Cache-free forward: state `h`, `c` `[B, H]` in and out.
pub(super) fn forward_inference(
    w: &CellWeights,
    packed: &PackedCellWeights,
    seq: CellSequence<CellInput>,
    h: &mut [f32],
    c: &mut [f32],
    y: &mut [f32],
    ws: &mut CellWorkspace,
) {
    let CellSequence { dims: d, x, lengths } = seq;
    let (bh, bg) = (d.batch * d.hidden, d.batch * GATES * d.hidden);
    inference_gates(w, packed, d, GATES, GATES, x, &mut ws.gates);
    for t in 0..d.steps {
        let gates = &mut ws.gates[t * bg..(t + 1) * bg];
        let s = StepTensors { gates, h_prev: h, c_prev: c, h: &mut ws.h_next, c: &mut ws.c_next, tanh_c: &mut ws.aux };
        step(&packed.w_hh_t, d.batch, d.hidden, s);
        carry_finished_rows(lengths, t, d.hidden, h, &mut ws.h_next);
        carry_finished_rows(lengths, t, d.hidden, c, &mut ws.c_next);
        write_output(lengths, t, d.hidden, &ws.h_next, &mut y[t * bh..(t + 1) * bh]);
        h.copy_from_slice(&ws.h_next);
        c.copy_from_slice(&ws.c_next);
    }
}

/// What the backward of step t reads, for a block of R rows.
#[derive(Debug, Clone, Copy)]
struct StepGradInputs<'a> {
    /// `[R]` real length of each row.
    lengths: &'a [usize],
    /// `[R, 4H]` the activated gates `i, f, g, o`.
    gates: &'a [f32],
    /// `[R, H]` c_{t-1}.
    c_prev: &'a [f32],
    /// `[R, H]` tanh(c_t).
    tanh_c: &'a [f32],
    /// `[R, H]` dL/dy_t.
    dy: &'a [f32],
    /// `[R, H]` dL/dh_t from step t+1.
    dh: &'a [f32],
}

/// What the backward of step t updates, for a block of R rows.
#[derive(Debug)]
struct StepGrads<'a> {
    /// `[R, H]` dL/dc_t from step t+1 on entry, dL/dc_{t-1} on exit.
    dc: &'a mut [f32],
    /// `[R, 4H]` the gate gradients dG_t.
    dg: &'a mut [f32],
    /// `[R, H]` dL/dh_{t-1}.
    dh_prev: &'a mut [f32],
}

/// The gate gradients `dG_t` of one step (see the module comment), from `dh = dL/dh_t`
/// (without the output's `dy_t`) and `dc`; turns `dc` into `dL/dc_{t-1}` and sets `dh_prev` to
/// what passes straight through (a padded row's `dh`; 0 otherwise, the product with `W_hh` adds
/// the rest).
fn gate_gradients(t: usize, hd: usize, inputs: StepGradInputs, grads: &mut StepGrads) {
    let StepGradInputs { lengths, gates: gates_t, c_prev, tanh_c, dy: dy_t, dh } = inputs;
    let (dc, dg_t, dh_prev) = (&mut *grads.dc, &mut *grads.dg, &mut *grads.dh_prev);
    let gh = GATES * hd;
    for (row, &len) in lengths.iter().enumerate() {
        let state = row * hd..(row + 1) * hd;
        let dg_row = &mut dg_t[row * gh..(row + 1) * gh];
        if t >= len {
            // Padded step: the state was copied, so its gradient passes straight through.
            dg_row.fill(0.0);
            dh_prev[state.clone()].copy_from_slice(&dh[state]);
            continue;
        }
        let gate = &gates_t[row * gh..(row + 1) * gh];
        for j in 0..hd {
            let k = row * hd + j;
            let (i, f, gg, o) = (gate[j], gate[hd + j], gate[2 * hd + j], gate[3 * hd + j]);
            let dh_k = dh[k] + dy_t[k];
            let tc = tanh_c[k];
            let dc_k = dc[k] + dh_k * o * (1.0 - tc * tc);
            dg_row[j] = dc_k * gg * i * (1.0 - i);
            dg_row[hd + j] = dc_k * c_prev[k] * f * (1.0 - f);
            dg_row[2 * hd + j] = dc_k * i * (1.0 - gg * gg);
            dg_row[3 * hd + j] = dh_k * tc * o * (1.0 - o);
            dc[k] = dc_k * f;
            dh_prev[k] = 0.0;
        }
    }
}

/// Backward through the cached sequence (see the module comment for the formulas).
pub(super) fn backward(
    w: &CellWeights,
    cache: &CellCache,
    up: CellUpstream,
    g: &mut CellGrads,
    down: CellDownstream,
    s: &mut BackwardScratch,
) {
    let d = cache.dims;
    let hd = d.hidden;
    let (bh, gh) = (d.batch * hd, GATES * hd);
    // dG [T, B, 4H]: pre-activation gradients of every step, kept for the weight GEMMs.
    let dg = resized(&mut s.dg_ih, d.rows() * gh);
    // dL/dh_t and dL/dc_t flowing backwards, [B, H] each.
    let (dh, dh_prev, dc) = (&mut s.dh, &mut s.dh_prev, &mut s.dc);
    dh.clear();
    dh.extend_from_slice(up.dh_n);
    resized(dh_prev, bh);
    dc.clear();
    match up.dc_n {
        Some(dc_n) => dc.extend_from_slice(dc_n),
        None => dc.resize(bh, 0.0),
    }
    if let Some(per) = step_row_blocks(d.batch) {
        // Each block of rows runs every step in one parallel region, its dL/dc updated in place.
        let (dc_rows, dg_rows) = (SharedRows::new(dc), SharedRows::new(dg));
        for_each_row_block_backward(d, per, dh, dh_prev, |rows, t, dh_t, dh_prev| {
            let (at, len) = (t * bh + rows.start * hd, rows.len() * hd);
            let (gates_at, gate_len) = ((t * d.batch + rows.start) * gh, rows.len() * gh);
            // SAFETY: this block's rows of dL/dc and of step t of `dg`: disjoint from every
            // other block's.
            let (dc, dg_t) = unsafe { (dc_rows.slice(rows.start * hd, len), dg_rows.slice(gates_at, gate_len)) };
            let inputs = StepGradInputs {
                lengths: &cache.lengths[rows.clone()],
                gates: &cache.gates[gates_at..gates_at + gate_len],
                c_prev: &cache.c[at..at + len],
                tanh_c: &cache.aux[at..at + len],
                dy: &up.dy[at..at + len],
                dh: dh_t,
            };
            let mut grads = StepGrads { dc, dg: dg_t, dh_prev };
            gate_gradients(t, hd, inputs, &mut grads);
            block_product(rows.len(), grads.dg, &cache.w_hh, 1.0, grads.dh_prev);
        });
    } else {
        for t in (0..d.steps).rev() {
            let gate_rows = t * d.batch * gh..(t + 1) * d.batch * gh;
            let inputs = StepGradInputs {
                lengths: &cache.lengths,
                gates: &cache.gates[gate_rows.clone()],
                c_prev: &cache.c[t * bh..(t + 1) * bh],
                tanh_c: &cache.aux[t * bh..(t + 1) * bh],
                dy: &up.dy[t * bh..(t + 1) * bh],
                dh,
            };
            let mut grads = StepGrads { dc, dg: &mut dg[gate_rows], dh_prev };
            gate_gradients(t, hd, inputs, &mut grads);
            backprop_to_previous_state(cache, grads.dg, grads.dh_prev);
            std::mem::swap(dh, dh_prev);
        }
    }
    down.dh0.copy_from_slice(dh);
    if let Some(dc0) = down.dc0 {
        dc0.copy_from_slice(dc);
    }
    finish_backward(w, cache, GATES, dg, dg, g, down.dx);
}
