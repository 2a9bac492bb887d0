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
    write_output, BackwardScratch, CellCache, CellDownstream, CellGrads, CellInput, CellUpstream, CellWeights,
    CellWorkspace, PackedCellWeights, SeqDims,
};
use super::{block_product, recurrent_product, step_row_blocks, RowBlocks};
use crate::kernels::activations;
use crate::kernels::packed::PackedB;

const GATES: usize = 4;

/// One step: `gates_t [B, 4H]` holds the input side (+ both biases) on entry, the activated
/// gates on exit; writes `h_t`, `c_t`, `tanh_c` `[B, H]` for every row (padding is fixed by the
/// caller). `row_blocks`: rows per block of one parallel region, or None for two phases (see
/// [`step_row_blocks`]).
#[allow(clippy::too_many_arguments)]
fn step(
    w_hh_t: &PackedB,
    batch: usize,
    hidden: usize,
    gates_t: &mut [f32],
    h_prev: &[f32],
    c_prev: &[f32],
    h_t: &mut [f32],
    c_t: &mut [f32],
    tanh_c: &mut [f32],
    row_blocks: Option<usize>,
) {
    let Some(per) = row_blocks else {
        // gates_t [B, 4H] += h_prev [B, H] · W_hhᵀ [H, 4H]
        recurrent_product(batch, h_prev, w_hh_t, 1.0, gates_t);
        activations::lstm_step(gates_t, c_prev, c_t, tanh_c, h_t, hidden);
        return;
    };
    // The same per row, one parallel region: each block of `per` rows does both phases.
    let (g_len, s_len) = (per * GATES * hidden, per * hidden);
    let mut blocks: RowBlocks<_> = gates_t
        .chunks_mut(g_len)
        .zip(h_prev.chunks(s_len))
        .zip(c_prev.chunks(s_len))
        .zip(h_t.chunks_mut(s_len))
        .zip(c_t.chunks_mut(s_len))
        .zip(tanh_c.chunks_mut(s_len))
        .collect();
    crate::parallel::for_each_mut(&mut blocks[..], |(((((gates, h_prev), c_prev), h_t), c_t), tanh_c)| {
        block_product(h_prev.len() / hidden, h_prev, w_hh_t, 1.0, gates);
        activations::lstm_rows(gates, c_prev, c_t, tanh_c, h_t, hidden);
    });
}

/// Training forward over `cache.x`; `cache` has been prepared (h0, c0 in slot 0).
pub(super) fn forward(w: &CellWeights, y: &mut [f32], cache: &mut CellCache) {
    let d = cache.dims;
    let (bh, bg) = (d.batch * d.hidden, d.batch * GATES * d.hidden);
    project_inputs(w, None, d, GATES, GATES, &cache.x, &mut cache.gates);
    for t in 0..d.steps {
        let gates_t = &mut cache.gates[t * bg..(t + 1) * bg];
        let (h_before, h_after) = cache.h.split_at_mut((t + 1) * bh);
        let (h_prev, h_t) = (&h_before[t * bh..], &mut h_after[..bh]);
        let (c_before, c_after) = cache.c.split_at_mut((t + 1) * bh);
        let (c_prev, c_t) = (&c_before[t * bh..], &mut c_after[..bh]);
        let tanh_c = &mut cache.aux[t * bh..(t + 1) * bh];
        step(&cache.w_hh_t, d.batch, d.hidden, gates_t, h_prev, c_prev, h_t, c_t, tanh_c, step_row_blocks(d.batch));
        carry_finished_rows(&cache.lengths, t, d.hidden, h_prev, h_t);
        carry_finished_rows(&cache.lengths, t, d.hidden, c_prev, c_t);
        write_output(&cache.lengths, t, d.hidden, h_t, &mut y[t * bh..(t + 1) * bh]);
    }
}

/// Cache-free forward: state `h`, `c` `[B, H]` in and out.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_inference(
    w: &CellWeights,
    packed: &PackedCellWeights,
    d: SeqDims,
    x: CellInput,
    lengths: &[usize],
    h: &mut [f32],
    c: &mut [f32],
    y: &mut [f32],
    ws: &mut CellWorkspace,
) {
    let (bh, bg) = (d.batch * d.hidden, d.batch * GATES * d.hidden);
    inference_gates(w, packed, d, GATES, GATES, x, &mut ws.gates);
    for t in 0..d.steps {
        let gates_t = &mut ws.gates[t * bg..(t + 1) * bg];
        step(&packed.w_hh_t, d.batch, d.hidden, gates_t, h, c, &mut ws.h_next, &mut ws.c_next, &mut ws.aux, None);
        carry_finished_rows(lengths, t, d.hidden, h, &mut ws.h_next);
        carry_finished_rows(lengths, t, d.hidden, c, &mut ws.c_next);
        write_output(lengths, t, d.hidden, &ws.h_next, &mut y[t * bh..(t + 1) * bh]);
        h.copy_from_slice(&ws.h_next);
        c.copy_from_slice(&ws.c_next);
    }
}

/// The gate gradients `dG_t` `[R, 4H]` of one step for rows whose real lengths are `lengths`
/// (see the module comment), from `dh = dL/dh_t` (without the output's `dy_t`) and `dc`; turns
/// `dc` into `dL/dc_{t-1}` and sets `dh_prev` to what passes straight through (a padded row's
/// `dh`; 0 otherwise, the product with `W_hh` adds the rest).
#[allow(clippy::too_many_arguments)]
fn gate_gradients(
    lengths: &[usize],
    t: usize,
    hd: usize,
    gates_t: &[f32],
    c_prev: &[f32],
    tanh_c: &[f32],
    dy_t: &[f32],
    dh: &[f32],
    dc: &mut [f32],
    dg_t: &mut [f32],
    dh_prev: &mut [f32],
) {
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
    for t in (0..d.steps).rev() {
        let gates_t = &cache.gates[t * d.batch * gh..(t + 1) * d.batch * gh];
        let dg_t = &mut dg[t * d.batch * gh..(t + 1) * d.batch * gh];
        let c_prev = &cache.c[t * bh..(t + 1) * bh];
        let tanh_c = &cache.aux[t * bh..(t + 1) * bh];
        let dy_t = &up.dy[t * bh..(t + 1) * bh];
        let Some(per) = step_row_blocks(d.batch) else {
            gate_gradients(&cache.lengths, t, hd, gates_t, c_prev, tanh_c, dy_t, dh, dc, dg_t, dh_prev);
            backprop_to_previous_state(cache, dg_t, dh_prev);
            std::mem::swap(dh, dh_prev);
            continue;
        };
        // The same per row, one parallel region: each block of `per` rows computes its gate
        // gradients, then multiplies the rows it just wrote (in its own cache) by all of W_hh.
        let (g_len, s_len) = (per * gh, per * hd);
        let mut blocks: RowBlocks<_> = cache
            .lengths
            .chunks(per)
            .zip(gates_t.chunks(g_len))
            .zip(c_prev.chunks(s_len))
            .zip(tanh_c.chunks(s_len))
            .zip(dy_t.chunks(s_len))
            .zip(dh.chunks(s_len))
            .zip(dc.chunks_mut(s_len))
            .zip(dg_t.chunks_mut(g_len))
            .zip(dh_prev.chunks_mut(s_len))
            .collect();
        crate::parallel::for_each_mut(
            &mut blocks[..],
            |((((((((lengths, gates), c_prev), tanh_c), dy), dh), dc), dg), dh_prev)| {
                gate_gradients(lengths, t, hd, gates, c_prev, tanh_c, dy, dh, dc, dg, dh_prev);
                block_product(lengths.len(), dg, &cache.w_hh, 1.0, dh_prev);
            },
        );
        drop(blocks); // SmallVec has a Drop impl: end its borrows before the swap.
        std::mem::swap(dh, dh_prev);
    }
    down.dh0.copy_from_slice(dh);
    if let Some(dc0) = down.dc0 {
        dc0.copy_from_slice(dc);
    }
    finish_backward(w, cache, GATES, dg, dg, g, down.dx);
}
