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
    write_output, BackwardScratch, CellCache, CellDownstream, CellGrads, CellInput, CellUpstream, CellWeights,
    CellWorkspace, PackedCellWeights, SeqDims,
};
use super::{block_product, recurrent_product, step_row_blocks, RowBlocks};
use crate::kernels::activations;
use crate::kernels::packed::PackedB;

const GATES: usize = 3;
/// The r and z blocks take `b_hh` before the nonlinearity; the n block's goes inside `r ⊙ hn`.
pub(super) const BLOCKS_WITH_FOLDED_HH_BIAS: usize = 2;

/// One step: `gates_t [B, 3H]` holds the input side on entry and `r, z, n` on exit; `hh`
/// `[B, 3H]` scratch; writes `hn` and `h_t` `[B, H]` for every row.
#[allow(clippy::too_many_arguments)]
fn step(
    w: &CellWeights,
    w_hh_t: &PackedB,
    batch: usize,
    hidden: usize,
    gates_t: &mut [f32],
    hh: &mut [f32],
    h_prev: &[f32],
    h_t: &mut [f32],
    hn: &mut [f32],
) {
    let b_hn = &w.b_hh[2 * hidden..];
    let Some(per) = step_row_blocks(batch) else {
        // hh [B, 3H] = h_prev [B, H] · W_hhᵀ [H, 3H]
        recurrent_product(batch, h_prev, w_hh_t, 0.0, hh);
        activations::gru_step(gates_t, hh, b_hn, hn, h_prev, h_t, hidden);
        return;
    };
    // The same per row, one parallel region: each block of `per` rows does both phases.
    let (g_len, s_len) = (per * GATES * hidden, per * hidden);
    let mut blocks: RowBlocks<_> = gates_t
        .chunks_mut(g_len)
        .zip(hh.chunks_mut(g_len))
        .zip(h_prev.chunks(s_len))
        .zip(h_t.chunks_mut(s_len))
        .zip(hn.chunks_mut(s_len))
        .collect();
    crate::parallel::for_each_mut(&mut blocks[..], |((((gates, hh), h_prev), h_t), hn)| {
        block_product(h_prev.len() / hidden, h_prev, w_hh_t, 0.0, hh);
        activations::gru_rows(gates, hh, b_hn, hn, h_prev, h_t, hidden);
    });
}

/// Training forward over `cache.x`; `cache` has been prepared (h0 in slot 0).
pub(super) fn forward(w: &CellWeights, y: &mut [f32], cache: &mut CellCache) {
    let d = cache.dims;
    let (bh, bg) = (d.batch * d.hidden, d.batch * GATES * d.hidden);
    project_inputs(w, None, d, GATES, BLOCKS_WITH_FOLDED_HH_BIAS, &cache.x, &mut cache.gates);
    for t in 0..d.steps {
        let gates_t = &mut cache.gates[t * bg..(t + 1) * bg];
        let (h_before, h_after) = cache.h.split_at_mut((t + 1) * bh);
        let (h_prev, h_t) = (&h_before[t * bh..], &mut h_after[..bh]);
        let hn = &mut cache.aux[t * bh..(t + 1) * bh];
        step(w, &cache.w_hh_t, d.batch, d.hidden, gates_t, &mut cache.hh, h_prev, h_t, hn);
        carry_finished_rows(&cache.lengths, t, d.hidden, h_prev, h_t);
        write_output(&cache.lengths, t, d.hidden, h_t, &mut y[t * bh..(t + 1) * bh]);
    }
}

/// Cache-free forward: state `h` `[B, H]` in and out.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_inference(
    w: &CellWeights,
    packed: &PackedCellWeights,
    d: SeqDims,
    x: CellInput,
    lengths: &[usize],
    h: &mut [f32],
    y: &mut [f32],
    ws: &mut CellWorkspace,
) {
    let (bh, bg) = (d.batch * d.hidden, d.batch * GATES * d.hidden);
    inference_gates(w, packed, d, GATES, BLOCKS_WITH_FOLDED_HH_BIAS, x, &mut ws.gates);
    for t in 0..d.steps {
        let gates_t = &mut ws.gates[t * bg..(t + 1) * bg];
        step(w, &packed.w_hh_t, d.batch, d.hidden, gates_t, &mut ws.hh, h, &mut ws.h_next, &mut ws.aux);
        carry_finished_rows(lengths, t, d.hidden, h, &mut ws.h_next);
        write_output(lengths, t, d.hidden, &ws.h_next, &mut y[t * bh..(t + 1) * bh]);
        h.copy_from_slice(&ws.h_next);
    }
}

/// The gate gradients of one step for rows whose real lengths are `lengths`: `dgi` `[R, 3H]`
/// (input side) and `dgh` `[R, 3H]` (recurrent side: the n block is scaled by r), from
/// `dh = dL/dh_t` without the output's `dy_t`; sets `dh_prev` to what passes straight through
/// (`z ⊙ dh`, or a padded row's `dh`); the product with `W_hh` adds the rest.
#[allow(clippy::too_many_arguments)]
fn gate_gradients(
    lengths: &[usize],
    t: usize,
    hd: usize,
    gates_t: &[f32],
    h_prev: &[f32],
    hn: &[f32],
    dy_t: &[f32],
    dh: &[f32],
    dgi_t: &mut [f32],
    dgh_t: &mut [f32],
    dh_prev: &mut [f32],
) {
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
    for t in (0..d.steps).rev() {
        let block = t * d.batch * gh..(t + 1) * d.batch * gh;
        let gates_t = &cache.gates[block.clone()];
        let (dgi_t, dgh_t) = (&mut dg_ih[block.clone()], &mut dg_hh[block]);
        let h_prev = &cache.h[t * bh..(t + 1) * bh];
        let hn = &cache.aux[t * bh..(t + 1) * bh];
        let dy_t = &up.dy[t * bh..(t + 1) * bh];
        let Some(per) = step_row_blocks(d.batch) else {
            gate_gradients(&cache.lengths, t, hd, gates_t, h_prev, hn, dy_t, dh, dgi_t, dgh_t, dh_prev);
            backprop_to_previous_state(cache, dgh_t, dh_prev);
            std::mem::swap(dh, dh_prev);
            continue;
        };
        // The same per row, one parallel region (as in the LSTM's backward).
        let (g_len, s_len) = (per * gh, per * hd);
        let mut blocks: RowBlocks<_> = cache
            .lengths
            .chunks(per)
            .zip(gates_t.chunks(g_len))
            .zip(h_prev.chunks(s_len))
            .zip(hn.chunks(s_len))
            .zip(dy_t.chunks(s_len))
            .zip(dh.chunks(s_len))
            .zip(dgi_t.chunks_mut(g_len))
            .zip(dgh_t.chunks_mut(g_len))
            .zip(dh_prev.chunks_mut(s_len))
            .collect();
        crate::parallel::for_each_mut(
            &mut blocks[..],
            |((((((((lengths, gates), h_prev), hn), dy), dh), dgi), dgh), dh_prev)| {
                gate_gradients(lengths, t, hd, gates, h_prev, hn, dy, dh, dgi, dgh, dh_prev);
                block_product(lengths.len(), dgh, &cache.w_hh, 1.0, dh_prev);
            },
        );
        drop(blocks); // SmallVec has a Drop impl: end its borrows before the swap.
        std::mem::swap(dh, dh_prev);
    }
    down.dh0.copy_from_slice(dh);
    finish_backward(w, cache, GATES, dg_ih, dg_hh, g, down.dx);
}
