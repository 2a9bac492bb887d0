//! GRU, one direction (PyTorch definition, gate rows `r, z, n`, reset applied after the hidden
//! matmul):
//!
//! ```text
//! r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)       z = σ(x W_izᵀ + b_iz + h W_hzᵀ + b_hz)
//! hn = h W_hnᵀ + b_hn                            (kept: the n block differs per side)
//! n = tanh(x W_inᵀ + b_in + r ⊙ hn)
//! h' = (1 − z) ⊙ n + z ⊙ h
//! ```
//!
//! Backward, with `dh' = dL/dh'`:
//!
//! ```text
//! dn = dh' ⊙ (1 − z)     dz = dh' ⊙ (h − n)
//! da_n = dn ⊙ (1 − n²)                        (pre-activation of n, input side)
//! dhn  = da_n ⊙ r                              (hidden-side n block)
//! da_r = da_n ⊙ hn ⊙ r(1 − r)    da_z = dz ⊙ z(1 − z)
//! dG_ih = [da_r, da_z, da_n]     dG_hh = [da_r, da_z, dhn]
//! dh = dh' ⊙ z + dG_hh W_hh
//! ```

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

const GATES: usize = 3;
/// The r and z blocks take `b_hh` before the nonlinearity; the n block's goes inside `r ⊙ hn`.
pub(super) const BLOCKS_WITH_FOLDED_HH_BIAS: usize = 2;

/// The buffers of one forward step, for a block of R rows.
#[derive(Debug)]
struct StepTensors<'a> {
    /// `[R, 3H]` the input side on entry, `r, z, n` on exit.
    gates: &'a mut [f32],
    /// `[R, 3H]` scratch: `h_{t-1} W_hhᵀ`.
    hh: &'a mut [f32],
    /// `[R, H]` h_{t-1}.
    h_prev: &'a [f32],
    /// `[R, H]` h_t, written for every row.
    h: &'a mut [f32],
    /// `[R, H]` the hidden-side n pre-activation, written for every row.
    hn: &'a mut [f32],
}

impl<'a> StepTensors<'a> {
    /// Blocks of `per` rows (the last one shorter).
    fn blocks(self, per: usize, hidden: usize) -> impl Iterator<Item = Self> {
        let (g_len, s_len) = (per * GATES * hidden, per * hidden);
        let gate_rows = self.gates.chunks_mut(g_len).zip(self.hh.chunks_mut(g_len));
        let state_rows = self.h_prev.chunks(s_len).zip(self.h.chunks_mut(s_len)).zip(self.hn.chunks_mut(s_len));
        gate_rows.zip(state_rows).map(|((gates, hh), ((h_prev, h), hn))| StepTensors { gates, hh, h_prev, h, hn })
    }
}

/// One step over `s` (B rows).
fn step(w: &CellWeights, w_hh_t: &impl PackedOperand, batch: usize, hidden: usize, s: StepTensors) {
    let b_hn = &w.b_hh[2 * hidden..];
    let Some(per) = step_row_blocks(batch) else {
        let StepTensors { gates, hh, h_prev, h, hn } = s;
        // hh [B, 3H] = h_prev [B, H] · W_hhᵀ [H, 3H]
        recurrent_product(batch, h_prev, w_hh_t, 0.0, hh);
        activations::gru_step(gates, hh, b_hn, hn, h_prev, h, hidden);
        return;
    };
    // The same per row, one parallel region: each block of `per` rows does both phases.
    let mut blocks: RowBlocks<_> = s.blocks(per, hidden).collect();
    crate::parallel::for_each_mut(&mut blocks[..], |s| {
        block_product(s.h_prev.len() / hidden, s.h_prev, w_hh_t, 0.0, s.hh);
        activations::gru_rows(s.gates, s.hh, b_hn, s.hn, s.h_prev, s.h, hidden);
    });
}

/// Training forward over `cache.x`; `cache` has been prepared (h0 in slot 0).
pub(super) fn forward(w: &CellWeights, y: &mut [f32], cache: &mut CellCache) {
    let d = cache.dims;
    let (bh, bg) = (d.batch * d.hidden, d.batch * GATES * d.hidden);
    project_inputs(w, None, d, GATES, BLOCKS_WITH_FOLDED_HH_BIAS, &cache.x, &mut cache.gates);
    if let Some(per) = step_row_blocks(d.batch) {
        // Each block of rows runs every step in one parallel region (the same operations per
        // row as `step`'s one region per step).
        let (hd, lengths, w_hh_t, b_hn) = (d.hidden, &cache.lengths, &cache.w_hh_t, &w.b_hh[2 * d.hidden..]);
        let (gates, hh, h) =
            (SharedRows::new(&mut cache.gates), SharedRows::new(&mut cache.hh), SharedRows::new(&mut cache.h));
        let (hn, out) = (SharedRows::new(&mut cache.aux), SharedRows::new(y));
        return for_each_row_block(d.batch, per, |rows| {
            let (len, gate_len, lengths) = (rows.len() * hd, rows.len() * GATES * hd, &lengths[rows.clone()]);
            for t in 0..d.steps {
                let (at, gates_at) = (t * bh + rows.start * hd, t * bg + rows.start * GATES * hd);
                // SAFETY: this block's rows of step t (gates, hn, y), t (h_prev), t + 1 (h_t) and
                // of the step's `hh` scratch: disjoint from each other and from every other
                // block's.
                let (gates_t, hh_t, h_prev, h_t, hn_t, y_t) = unsafe {
                    let (gates_t, hh_t) =
                        (gates.slice(gates_at, gate_len), hh.slice(rows.start * GATES * hd, gate_len));
                    (gates_t, hh_t, &*h.slice(at, len), h.slice(at + bh, len), hn.slice(at, len), out.slice(at, len))
                };
                block_product(rows.len(), h_prev, w_hh_t, 0.0, hh_t);
                activations::gru_rows(gates_t, hh_t, b_hn, hn_t, h_prev, h_t, hd);
                carry_finished_rows(lengths, t, hd, h_prev, h_t);
                write_output(lengths, t, hd, h_t, y_t);
            }
        });
    }
    for t in 0..d.steps {
        let gates = &mut cache.gates[t * bg..(t + 1) * bg];
        let (h_before, h_after) = cache.h.split_at_mut((t + 1) * bh);
        let (h_prev, h_t) = (&h_before[t * bh..], &mut h_after[..bh]);
        let hn = &mut cache.aux[t * bh..(t + 1) * bh];
        step(w, &cache.w_hh_t, d.batch, d.hidden, StepTensors { gates, hh: &mut cache.hh, h_prev, h: h_t, hn });
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
) {
    let CellSequence { dims: d, x, lengths } = seq;
    let (bh, bg) = (d.batch * d.hidden, d.batch * GATES * d.hidden);
    inference_gates(w, packed, d, GATES, BLOCKS_WITH_FOLDED_HH_BIAS, x, &mut ws.gates);
    for t in 0..d.steps {
        let gates = &mut ws.gates[t * bg..(t + 1) * bg];
        let s = StepTensors { gates, hh: &mut ws.hh, h_prev: h, h: &mut ws.h_next, hn: &mut ws.aux };
        step(w, &packed.w_hh_t, d.batch, d.hidden, s);
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
    /// `[R, 3H]` the activated gates `r, z, n`.
    gates: &'a [f32],
    /// `[R, H]` h_{t-1}.
    h_prev: &'a [f32],
    /// `[R, H]` the hidden-side n pre-activation.
    hn: &'a [f32],
    /// `[R, H]` dL/dy_t.
    dy: &'a [f32],
    /// `[R, H]` dL/dh_t from step t+1.
    dh: &'a [f32],
}

/// What the backward of step t writes, for a block of R rows.
#[derive(Debug)]
struct StepGrads<'a> {
    /// `[R, 3H]` input-side gate gradients.
    dgi: &'a mut [f32],
    /// `[R, 3H]` recurrent-side gate gradients (the n block is scaled by r).
    dgh: &'a mut [f32],
    /// `[R, H]` dL/dh_{t-1}.
    dh_prev: &'a mut [f32],
}

/// The gate gradients of one step, from `dh = dL/dh_t` without the output's `dy_t`; sets
/// `dh_prev` to what passes straight through (`z ⊙ dh`, or a padded row's `dh`); the product
/// with `W_hh` adds the rest.
fn gate_gradients(t: usize, hd: usize, inputs: StepGradInputs, grads: &mut StepGrads) {
    let StepGradInputs { lengths, gates: gates_t, h_prev, hn, dy: dy_t, dh } = inputs;
    let (dgi_t, dgh_t, dh_prev) = (&mut *grads.dgi, &mut *grads.dgh, &mut *grads.dh_prev);
    let gh = GATES * hd;
    for (row, &len) in lengths.iter().enumerate() {
        let state = row * hd..(row + 1) * hd;
        let (dgi, dgh) = (&mut dgi_t[row * gh..(row + 1) * gh], &mut dgh_t[row * gh..(row + 1) * gh]);
        if t >= len {
            // Padded step: the state was copied, so its gradient passes straight through.
            dgi.fill(0.0);
            dgh.fill(0.0);
            dh_prev[state.clone()].copy_from_slice(&dh[state]);
            continue;
        }
        let gate = &gates_t[row * gh..(row + 1) * gh];
        for j in 0..hd {
            let k = row * hd + j;
            let (r, z, n) = (gate[j], gate[hd + j], gate[2 * hd + j]);
            let dh_k = dh[k] + dy_t[k];
            let da_n = dh_k * (1.0 - z) * (1.0 - n * n);
            let da_r = da_n * hn[k] * r * (1.0 - r);
            let da_z = dh_k * (h_prev[k] - n) * z * (1.0 - z);
            dgi[j] = da_r;
            dgi[hd + j] = da_z;
            dgi[2 * hd + j] = da_n;
            dgh[j] = da_r;
            dgh[hd + j] = da_z;
            dgh[2 * hd + j] = da_n * r;
            dh_prev[k] = dh_k * z;
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
    // [T, B, 3H] each: identical in the r and z blocks, different in the n block.
    let dg_ih = resized(&mut s.dg_ih, d.rows() * gh);
    let dg_hh = resized(&mut s.dg_hh, d.rows() * gh);
    let (dh, dh_prev) = (&mut s.dh, &mut s.dh_prev);
    dh.clear();
    dh.extend_from_slice(up.dh_n);
    resized(dh_prev, bh);
    if let Some(per) = step_row_blocks(d.batch) {
        // Each block of rows runs every step in one parallel region.
        let (dgi_rows, dgh_rows) = (SharedRows::new(dg_ih), SharedRows::new(dg_hh));
        for_each_row_block_backward(d, per, dh, dh_prev, |rows, t, dh_t, dh_prev| {
            let (at, len) = (t * bh + rows.start * hd, rows.len() * hd);
            let (gates_at, gate_len) = ((t * d.batch + rows.start) * gh, rows.len() * gh);
            // SAFETY: this block's rows of step t of both gate-gradient buffers: disjoint from
            // every other block's.
            let (dgi, dgh) = unsafe { (dgi_rows.slice(gates_at, gate_len), dgh_rows.slice(gates_at, gate_len)) };
            let inputs = StepGradInputs {
                lengths: &cache.lengths[rows.clone()],
                gates: &cache.gates[gates_at..gates_at + gate_len],
                h_prev: &cache.h[at..at + len],
                hn: &cache.aux[at..at + len],
                dy: &up.dy[at..at + len],
                dh: dh_t,
            };
            let mut grads = StepGrads { dgi, dgh, dh_prev };
            gate_gradients(t, hd, inputs, &mut grads);
            block_product(rows.len(), grads.dgh, &cache.w_hh, 1.0, grads.dh_prev);
        });
        down.dh0.copy_from_slice(dh);
        return finish_backward(w, cache, GATES, dg_ih, dg_hh, g, down.dx);
    }
    for t in (0..d.steps).rev() {
        let block = t * d.batch * gh..(t + 1) * d.batch * gh;
        let inputs = StepGradInputs {
            lengths: &cache.lengths,
            gates: &cache.gates[block.clone()],
            h_prev: &cache.h[t * bh..(t + 1) * bh],
            hn: &cache.aux[t * bh..(t + 1) * bh],
            dy: &up.dy[t * bh..(t + 1) * bh],
            dh,
        };
        let mut grads = StepGrads { dgi: &mut dg_ih[block.clone()], dgh: &mut dg_hh[block], dh_prev };
        gate_gradients(t, hd, inputs, &mut grads);
        backprop_to_previous_state(cache, grads.dgh, grads.dh_prev);
        std::mem::swap(dh, dh_prev);
    }
    down.dh0.copy_from_slice(dh);
    finish_backward(w, cache, GATES, dg_ih, dg_hh, g, down.dx);
}
