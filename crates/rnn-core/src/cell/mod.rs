//! One direction of one recurrent layer over a whole batched sequence.
//!
//! Tensors are time-major and row-major: `x` `[T, B, I]`, outputs `[T, B, H]`, states `[B, H]`,
//! weights as PyTorch stores them (`w_ih` `[G·H, I]`, `w_hh` `[G·H, H]`, biases `[G·H]`).
//!
//! Structure shared by the three cells (DESIGN.md "Numerics"):
//! - forward: the input projection of all T steps is one GEMM `[T·B, I] × [I, G·H]` (plus the
//!   biases) before the recurrence; each step adds one fused GEMM `h_{t-1} [B, H] × W_hhᵀ
//!   [H, G·H]` and applies the fused nonlinearities (`kernels::activations`);
//! - backward: only `dh_{t-1} = dG_t · W_hh` is sequential; `dW_ih`, `dW_hh` and `dX` are one
//!   GEMM each over all T·B rows after the recurrence, and the bias gradients column sums.
//! - the two sequential products use `W_hhᵀ` and `W_hh` packed once per pass
//!   ([`PackedB`], `kernels::packed`), not once per step: the training forward packs both into
//!   its cache; inference takes `W_hhᵀ` packed by the caller (once per model, see
//!   `RecurrentStack::pack_recurrence`).
//!
//! Variable lengths: row b is real for steps `t < lengths[b]`. At a padded step the state is
//! carried unchanged and the output is 0, so padding is always at the end of a row (the stack
//! reverses each row's real steps for the backward direction). Padded steps get no gradient
//! (their gate gradients are zero) and pass the state gradient through unchanged.
//!
//! Buffers are sized once per call; nothing is allocated inside the time loops. Backward's own
//! buffers live in the cache ([`BackwardScratch`]) and keep their capacity from one training
//! step to the next.

pub mod gru;
pub mod lstm;
pub mod rnn;

use crate::config::CellKind;
use crate::error::Result;
use crate::kernels::gemm::{matmul, GemmShape, Merge, Op};
use crate::kernels::packed::PackedB;
use crate::kernels::precision::{PackedOperand, Precision, WeightMatrix};

/// The sizes of one direction's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqDims {
    /// T, number of time steps.
    pub steps: usize,
    /// B, number of sequences in the batch.
    pub batch: usize,
    /// I, width of each input vector.
    pub input: usize,
    /// H, width of the hidden state.
    pub hidden: usize,
}

impl SeqDims {
    /// T·B, the number of (step, row) pairs.
    pub fn rows(&self) -> usize {
        self.steps * self.batch
    }
}

/// One direction's input sequence: `x` (training: the vectors `[T, B, I]`; inference: a
/// [`CellInput`]) and the real length of each row.
#[derive(Debug, Clone, Copy)]
pub struct CellSequence<'a, X> {
    pub dims: SeqDims,
    pub x: X,
    /// `[B]`
    pub lengths: &'a [usize],
}

/// The state a training forward starts from.
#[derive(Debug, Clone, Copy)]
pub struct InitialState<'a> {
    /// `[B, H]`
    pub h0: &'a [f32],
    /// `[B, H]`, required for the LSTM and ignored otherwise.
    pub c0: Option<&'a [f32]>,
}

/// The state an inference forward starts from and leaves its final state in.
#[derive(Debug)]
pub struct CarriedState<'a> {
    /// `[B, H]`
    pub h: &'a mut [f32],
    /// `[B, H]`, LSTM only.
    pub c: Option<&'a mut [f32]>,
}

/// The weights of one direction of one layer (PyTorch layout and gate order).
#[derive(Debug, Clone, Copy)]
pub struct CellWeights<'a> {
    /// `[G·H, I]`
    pub w_ih: &'a [f32],
    /// `[G·H, H]`
    pub w_hh: &'a [f32],
    /// `[G·H]`
    pub b_ih: &'a [f32],
    /// `[G·H]`
    pub b_hh: &'a [f32],
}

/// Gradient accumulators for [`CellWeights`]; backward adds into them.
#[derive(Debug)]
pub struct CellGrads<'a> {
    pub w_ih: &'a mut [f32],
    pub w_hh: &'a mut [f32],
    pub b_ih: &'a mut [f32],
    pub b_hh: &'a mut [f32],
}

/// What the training forward keeps for backward.
#[derive(Debug, Clone, Default)]
pub struct CellCache {
    pub(crate) dims: SeqDims,
    /// `[B]` real length of each row.
    pub(crate) lengths: Vec<usize>,
    /// `[T, B, I]` the input (the backward direction's is already reversed per row).
    pub(crate) x: Vec<f32>,
    /// `[T, B, G·H]` activated gates: RNN `h`; LSTM `i, f, g, o`; GRU `r, z, n`.
    pub(crate) gates: Vec<f32>,
    /// `[T+1, B, H]` the state before step 0 (h0) and after every step (carried at padding).
    pub(crate) h: Vec<f32>,
    /// `[T+1, B, H]` LSTM memory, like `h`; empty for the other cells.
    pub(crate) c: Vec<f32>,
    /// `[T, B, H]` LSTM `tanh(c_t)`; GRU hidden-side n pre-activation `W_hn h_{t-1} + b_hn`.
    pub(crate) aux: Vec<f32>,
    /// `[B, 3H]` GRU per-step scratch `h_{t-1} W_hhᵀ`.
    pub(crate) hh: Vec<f32>,
    /// `W_hhᵀ` `[H, G·H]` packed for the forward steps.
    pub(crate) w_hh_t: PackedB,
    /// `W_hh` `[G·H, H]` packed for the backward steps.
    pub(crate) w_hh: PackedB,
    /// Backward's buffers, reused by every backward through this cache.
    pub(crate) scratch: BackwardScratch,
}

/// The buffers of one backward pass, kept from one training step to the next: allocating them
/// afresh (megabytes: `[T·B, G·H]` twice for a GRU) cost page faults and zeroing on every step,
/// about a tenth of a TRAIN-GRU-S step.
#[derive(Debug, Clone, Default)]
pub(crate) struct BackwardScratch {
    /// `[T, B, G·H]` gate pre-activation gradients of every step (input side; both sides except
    /// for GRU).
    dg_ih: Vec<f32>,
    /// `[T, B, G·H]` GRU hidden-side gate gradients (its n block differs); unused otherwise.
    dg_hh: Vec<f32>,
    /// `[B, H]` dL/dh reaching the current step, and the one being built for the step before.
    dh: Vec<f32>,
    dh_prev: Vec<f32>,
    /// `[B, H]` LSTM dL/dc reaching the current step.
    dc: Vec<f32>,
}

/// `buf` resized to `len` values, contents unspecified (every user overwrites all of them).
fn resized(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    buf.resize(len, 0.0);
    &mut buf[..len]
}

impl CellCache {
    /// `[B, H]` the state after the last step.
    pub fn final_h(&self) -> &[f32] {
        let bh = self.dims.batch * self.dims.hidden;
        &self.h[self.dims.steps * bh..]
    }

    /// `[B, H]` the LSTM memory after the last step.
    pub fn final_c(&self) -> Option<&[f32]> {
        let bh = self.dims.batch * self.dims.hidden;
        (!self.c.is_empty()).then(|| &self.c[self.dims.steps * bh..])
    }

    /// Sizes every buffer for `seq.dims` (reusing capacity), stores the inputs and packs `W_hh`.
    fn prepare(&mut self, kind: CellKind, w: &CellWeights, seq: CellSequence<&[f32]>, initial: InitialState) {
        let (CellSequence { dims, x, lengths }, InitialState { h0, c0 }) = (seq, initial);
        let (gh, bh) = (kind.gates() * dims.hidden, dims.batch * dims.hidden);
        pack_hh_transposed(w.w_hh, dims.hidden, &mut self.w_hh_t);
        self.w_hh.repack(gh, dims.hidden, w.w_hh, dims.hidden, 1);
        self.dims = dims;
        self.lengths.clear();
        self.lengths.extend_from_slice(lengths);
        self.x.clear();
        self.x.extend_from_slice(x);
        self.gates.resize(dims.rows() * gh, 0.0);
        self.h.resize((dims.steps + 1) * bh, 0.0);
        self.h[..bh].copy_from_slice(h0);
        match (kind, c0) {
            (CellKind::Lstm, Some(c0)) => {
                self.c.resize((dims.steps + 1) * bh, 0.0);
                self.c[..bh].copy_from_slice(c0);
            }
            _ => self.c.clear(),
        }
        let aux_len = if kind == CellKind::Lstm || kind == CellKind::Gru { dims.rows() * dims.hidden } else { 0 };
        self.aux.resize(aux_len, 0.0);
        self.hh.resize(if kind == CellKind::Gru { dims.batch * gh } else { 0 }, 0.0);
    }
}

/// One direction's weights packed for the inference path, at a [`Precision`]: `W_ihᵀ`
/// `[I, G·H]` for the input projection and `W_hhᵀ` `[H, G·H]` for the steps. Packed once per set
/// of weights, then every generated token reuses them.
#[derive(Debug, Clone, Default)]
pub struct PackedCellWeights {
    w_ih_t: WeightMatrix,
    w_hh_t: WeightMatrix,
}

impl PackedCellWeights {
    /// Packs `w` (input width `input`, hidden width `hidden`) into `self` at `precision`
    /// (f32 reuses the buffers).
    pub fn repack(&mut self, w: &CellWeights, input: usize, hidden: usize, precision: Precision) -> Result<()> {
        let gh = w.w_ih.len() / input;
        match (precision, &mut self.w_ih_t, &mut self.w_hh_t) {
            (Precision::F32, WeightMatrix::F32(ih), WeightMatrix::F32(hh)) => {
                ih.repack(input, gh, w.w_ih, 1, input);
                pack_hh_transposed(w.w_hh, hidden, hh);
            }
            _ => {
                self.w_ih_t = WeightMatrix::new(precision, input, gh, w.w_ih, 1, input)?;
                self.w_hh_t = WeightMatrix::new(precision, hidden, gh, w.w_hh, 1, hidden)?;
            }
        }
        Ok(())
    }

    /// Bytes of packed weights.
    pub fn bytes(&self) -> usize {
        self.w_ih_t.bytes() + self.w_hh_t.bytes()
    }
}

/// Reusable buffers of the cache-free inference path (sized by the longest chunk seen).
#[derive(Debug, Clone, Default)]
pub struct CellWorkspace {
    /// `[T, B, G·H]` gate pre-activations / activations of the current chunk.
    gates: Vec<f32>,
    /// `[B, H]` next state.
    h_next: Vec<f32>,
    /// `[B, H]` next LSTM memory.
    c_next: Vec<f32>,
    /// `[B, H]` LSTM `tanh(c)` or GRU `hn` of the current step (not kept).
    aux: Vec<f32>,
    /// `[B, 3H]` GRU `h W_hhᵀ`.
    hh: Vec<f32>,
}

impl CellWorkspace {
    fn prepare(&mut self, kind: CellKind, dims: SeqDims) {
        let (gh, bh) = (kind.gates() * dims.hidden, dims.batch * dims.hidden);
        self.gates.resize(dims.rows() * gh, 0.0);
        self.h_next.resize(bh, 0.0);
        self.c_next.resize(bh, 0.0);
        self.aux.resize(bh, 0.0);
        self.hh.resize(dims.batch * gh, 0.0);
    }
}

/// The gradient arriving at one direction: w.r.t. its outputs and its final state.
#[derive(Debug, Clone, Copy)]
pub struct CellUpstream<'a> {
    /// `[T, B, H]` dL/dy (values at padded steps are ignored: those outputs are constant 0).
    pub dy: &'a [f32],
    /// `[B, H]` dL/dh_T.
    pub dh_n: &'a [f32],
    /// `[B, H]` dL/dc_T (LSTM only).
    pub dc_n: Option<&'a [f32]>,
}

/// Where backward writes the gradients w.r.t. the inputs (overwritten, not added).
#[derive(Debug)]
pub struct CellDownstream<'a> {
    /// `[T, B, I]`
    pub dx: &'a mut [f32],
    /// `[B, H]`
    pub dh0: &'a mut [f32],
    /// `[B, H]` (LSTM only)
    pub dc0: Option<&'a mut [f32]>,
}

/// Training forward of one direction: writes `y` `[T, B, H]` (0 at padded steps) and fills
/// `cache`; the final state is `cache.final_h()` / `final_c()`. Shapes are the caller's
/// responsibility (the stack validates them).
pub fn forward(
    kind: CellKind,
    w: &CellWeights,
    seq: CellSequence<&[f32]>,
    initial: InitialState,
    y: &mut [f32],
    cache: &mut CellCache,
) {
    let dims = seq.dims;
    debug_assert_eq!(seq.x.len(), dims.rows() * dims.input);
    debug_assert_eq!(y.len(), dims.rows() * dims.hidden);
    debug_assert_eq!(seq.lengths.len(), dims.batch);
    debug_assert!(kind != CellKind::Lstm || initial.c0.is_some(), "internal: LSTM forward without c0");
    cache.prepare(kind, w, seq, initial);
    match kind {
        CellKind::RnnTanh => rnn::forward(w, y, cache, false),
        CellKind::RnnRelu => rnn::forward(w, y, cache, true),
        CellKind::Lstm => lstm::forward(w, y, cache),
        CellKind::Gru => gru::forward(w, y, cache),
    }
}

/// The input of a cache-free forward.
#[derive(Debug, Clone, Copy)]
pub enum CellInput<'a> {
    /// `[T, B, I]` input vectors, projected by `W_ihᵀ` (plus the biases) in one product.
    Vectors(&'a [f32]),
    /// That projection looked up in a table made by [`project_for_inference`]: step t of row b
    /// is `table` row `ids[t·B + b]` (`table` `[V, G·H]`, `ids` `[T·B]` time-major, each < V).
    /// A token model's first layer: a row copy per token instead of a product.
    TokenRows { table: &'a [f32], ids: &'a [u32] },
}

/// Gate blocks that take `b_hh` before the nonlinearity: all but the GRU's n block.
fn blocks_with_folded_hh_bias(kind: CellKind) -> usize {
    match kind {
        CellKind::Gru => gru::BLOCKS_WITH_FOLDED_HH_BIAS,
        other => other.gates(),
    }
}

/// `out [R, G·H]` = the input side of the gates for `x [R, I]` (`W_ihᵀ` product plus the biases),
/// with the same operations as the inference path applies to each row: a row's result is the
/// same bits whether it is computed here (a per-token table) or during a forward. I and H are
/// those `packed` was packed for.
pub fn project_for_inference(kind: CellKind, w: &CellWeights, packed: &PackedCellWeights, x: &[f32], out: &mut [f32]) {
    let (input, hidden) = (packed.w_ih_t.k(), packed.w_ih_t.n() / kind.gates());
    let dims = SeqDims { steps: 1, batch: x.len() / input, input, hidden };
    project_inputs(w, Some(&packed.w_ih_t), dims, kind.gates(), blocks_with_folded_hh_bias(kind), x, out);
}

/// The input side of every step of an inference chunk into `out` `[T·B, G·H]`.
fn inference_gates(
    w: &CellWeights,
    packed: &PackedCellWeights,
    dims: SeqDims,
    gates: usize,
    hh_bias_blocks: usize,
    input: CellInput,
    out: &mut [f32],
) {
    match input {
        CellInput::Vectors(x) => project_inputs(w, Some(&packed.w_ih_t), dims, gates, hh_bias_blocks, x, out),
        CellInput::TokenRows { table, ids } => {
            let width = gates * dims.hidden;
            for (row, &id) in out.chunks_exact_mut(width).zip(ids) {
                row.copy_from_slice(&table[id as usize * width..][..width]);
            }
        }
    }
}

/// Inference forward without a cache: runs `seq` from `state`, leaves the final state there
/// and writes `y` `[T, B, H]`. `packed` holds `w` packed by [`PackedCellWeights::repack`]. Same
/// values as [`forward`].
pub fn forward_inference(
    kind: CellKind,
    w: &CellWeights,
    packed: &PackedCellWeights,
    seq: CellSequence<CellInput>,
    state: CarriedState,
    y: &mut [f32],
    ws: &mut CellWorkspace,
) {
    let dims = seq.dims;
    match seq.x {
        CellInput::Vectors(v) => debug_assert_eq!(v.len(), dims.rows() * dims.input),
        CellInput::TokenRows { ids, .. } => debug_assert_eq!(ids.len(), dims.rows()),
    }
    debug_assert_eq!(y.len(), dims.rows() * dims.hidden);
    debug_assert_eq!((packed.w_hh_t.k(), packed.w_hh_t.n()), (dims.hidden, kind.gates() * dims.hidden));
    debug_assert_eq!((packed.w_ih_t.k(), packed.w_ih_t.n()), (dims.input, kind.gates() * dims.hidden));
    ws.prepare(kind, dims);
    let CarriedState { h, c } = state;
    match (kind, c) {
        (CellKind::RnnTanh, _) => rnn::forward_inference(w, packed, seq, h, y, ws, false),
        (CellKind::RnnRelu, _) => rnn::forward_inference(w, packed, seq, h, y, ws, true),
        (CellKind::Lstm, Some(c)) => lstm::forward_inference(w, packed, seq, h, c, y, ws),
        (CellKind::Lstm, None) => unreachable!("internal: LSTM inference without a memory state"),
        (CellKind::Gru, _) => gru::forward_inference(w, packed, seq, h, y, ws),
    }
}

/// Backward of one direction through the sequence cached by [`forward`]: adds the parameter
/// gradients into `g` and writes the input and initial-state gradients into `down`. The cache
/// is only changed in its reusable backward buffers.
pub fn backward(
    kind: CellKind,
    w: &CellWeights,
    cache: &mut CellCache,
    up: CellUpstream,
    g: &mut CellGrads,
    down: CellDownstream,
) {
    let mut scratch = std::mem::take(&mut cache.scratch);
    match kind {
        CellKind::RnnTanh => rnn::backward(w, cache, up, g, down, &mut scratch, false),
        CellKind::RnnRelu => rnn::backward(w, cache, up, g, down, &mut scratch, true),
        CellKind::Lstm => lstm::backward(w, cache, up, g, down, &mut scratch),
        CellKind::Gru => gru::backward(w, cache, up, g, down, &mut scratch),
    }
    cache.scratch = scratch;
}

/// The input projection of all steps as one GEMM: `out [T·B, G·H] = x [T·B, I] · W_ihᵀ + b_ih`,
/// plus `b_hh` in the first `hh_bias_blocks` gate blocks (those where the hidden side is simply
/// added before the nonlinearity: all of them except GRU's n block). `w_ih_t`: `W_ihᵀ` already
/// packed (inference), else the product packs it.
fn project_inputs(
    w: &CellWeights,
    w_ih_t: Option<&WeightMatrix>,
    dims: SeqDims,
    gates: usize,
    hh_bias_blocks: usize,
    x: &[f32],
    out: &mut [f32],
) {
    let gh = gates * dims.hidden;
    let folded = hh_bias_blocks * dims.hidden;
    // The bias row once, then copied to every row.
    let (first, rest) = out.split_at_mut(gh);
    for (j, v) in first.iter_mut().enumerate() {
        *v = w.b_ih[j] + if j < folded { w.b_hh[j] } else { 0.0 };
    }
    for row in rest.chunks_exact_mut(gh) {
        row.copy_from_slice(first);
    }
    match w_ih_t {
        Some(packed) => recurrent_product(dims.rows(), x, packed, 1.0, out),
        None => {
            let shape = GemmShape { m: dims.rows(), n: gh, k: dims.input };
            matmul(Op::Plain, Op::Transposed, shape, x, w.w_ih, Merge::ACCUMULATE, out)
        }
    }
}

/// At step t, rows that are past their length keep their previous state: `cur[b] = prev[b]`.
fn carry_finished_rows(lengths: &[usize], t: usize, hidden: usize, prev: &[f32], cur: &mut [f32]) {
    for (b, &len) in lengths.iter().enumerate() {
        if t >= len {
            cur[b * hidden..(b + 1) * hidden].copy_from_slice(&prev[b * hidden..(b + 1) * hidden]);
        }
    }
}

/// The step's output `y_t [B, H]`: the new state for real rows, 0 for padded ones.
fn write_output(lengths: &[usize], t: usize, hidden: usize, h: &[f32], y: &mut [f32]) {
    for (b, &len) in lengths.iter().enumerate() {
        let dst = &mut y[b * hidden..(b + 1) * hidden];
        if t < len {
            dst.copy_from_slice(&h[b * hidden..(b + 1) * hidden]);
        } else {
            dst.fill(0.0);
        }
    }
}

/// After the backward recurrence, everything that is not sequential, given the gate
/// pre-activation gradients of all steps, `dg_ih` and `dg_hh` `[T·B, G·H]` (the same buffer
/// except for GRU):
/// - `dW_ih += dg_ihᵀ [G·H, T·B] · X [T·B, I]`,
/// - `dW_hh += dg_hhᵀ [G·H, T·B] · H_prev [T·B, H]` (`H_prev` = states before each step),
/// - `db_ih += Σ_rows dg_ih`, `db_hh += Σ_rows dg_hh`,
/// - `dX = dg_ih [T·B, G·H] · W_ih [G·H, I]`.
fn finish_backward(
    w: &CellWeights,
    cache: &CellCache,
    gates: usize,
    dg_ih: &[f32],
    dg_hh: &[f32],
    g: &mut CellGrads,
    dx: &mut [f32],
) {
    let dims = cache.dims;
    let (gh, rows) = (gates * dims.hidden, dims.rows());
    let h_prev = &cache.h[..rows * dims.hidden];
    let to_input = GemmShape { m: gh, n: dims.input, k: rows };
    matmul(Op::Transposed, Op::Plain, to_input, dg_ih, &cache.x, Merge::ACCUMULATE, g.w_ih);
    let to_hidden = GemmShape { m: gh, n: dims.hidden, k: rows };
    matmul(Op::Transposed, Op::Plain, to_hidden, dg_hh, h_prev, Merge::ACCUMULATE, g.w_hh);
    add_column_sums(g.b_ih, dg_ih);
    add_column_sums(g.b_hh, dg_hh);
    let dx_shape = GemmShape { m: rows, n: dims.input, k: gh };
    matmul(Op::Plain, Op::Plain, dx_shape, dg_ih, w.w_ih, Merge::OVERWRITE, dx);
}

/// `dst [C] += Σ_r src[r, :]` for `src` `[R, C]`.
fn add_column_sums(dst: &mut [f32], src: &[f32]) {
    for row in src.chunks_exact(dst.len()) {
        dst.iter_mut().zip(row).for_each(|(d, s)| *d += s);
    }
}

/// Packs `W_hhᵀ` `[H, G·H]` (the forward steps' B operand) from `w_hh` `[G·H, H]` into `out`.
pub fn pack_hh_transposed(w_hh: &[f32], hidden: usize, out: &mut PackedB) {
    out.repack(hidden, w_hh.len() / hidden, w_hh, 1, hidden);
}

/// `out [R, N] ← h [R, K] · W + beta · out` with `W` packed (`[K, N]`), on the engine's threads
/// (bit-identical at any thread count): the per-step products of a recurrence, and the input
/// projection at inference.
fn recurrent_product(batch: usize, h: &[f32], w: &impl PackedOperand, beta: f32, out: &mut [f32]) {
    packed_product(batch, h, w, beta, out, crate::parallel::threads());
}

/// The row blocks of one step, collected on the stack (up to 16 threads; more spill to the heap
/// once per step): the time loop allocates nothing.
type RowBlocks<T> = smallvec::SmallVec<[T; 16]>;

/// Rows per block when a step's product and nonlinearity run as one parallel region over row
/// blocks (each thread multiplies its rows by all of `W_hhᵀ`, then applies the gates to the rows
/// it just computed, in its own cache), or None to keep the two phases apart (product split by
/// columns, then the gates split by rows). The row split reads the weights once per thread, so
/// it pays only when each thread has enough rows to reuse every B panel: at least 2 tiles
/// (measured at 2 threads, batch 32 against the two-phase step: LSTM-S +1.5 %, GRU-S +5 %,
/// RNN-S +11 % training throughput).
/// LSTM inference keeps the two phases at every batch: there the input side of a step was just
/// made by a product split by the same columns (or gathered on the calling thread), and the
/// two-phase step measured faster (GEN b64 at 2 threads, 6 interleaved runs: +2.6 to +8 %; GRU
/// and Elman inference, neutral and −12 %, keep the row blocks).
/// Backward uses the same blocks in reverse order: each thread computes the gate gradients of
/// its rows, then multiplies them by all of `W_hh` (a column split would read every row of
/// `dG_t`, half of them just written in the other core's cache, and leave the gate gradients
/// on one thread).
/// In training, each block runs through the whole sequence in one parallel region
/// ([`for_each_row_block`]), forward and backward, rather than one region per step (2 threads:
/// TRAIN-RNN-S 245k → 263–276k tokens/s, TRAIN-LSTM-S 86–92k → 91–95k, TRAIN-GRU-S 108–113k → 109–128k).
fn step_row_blocks(batch: usize) -> Option<usize> {
    let threads = crate::parallel::threads();
    (threads > 1 && batch >= threads * 2 * crate::kernels::microkernel::MR).then(|| batch.div_ceil(threads))
}

/// A buffer (`[T, B, W]` or `[B, W]`, row-major) that the row blocks of one parallel region
/// ([`for_each_row_block`]) read and write at disjoint rows: each block owns its rows at every
/// step.
#[derive(Clone, Copy)]
struct SharedRows {
    ptr: *mut f32,
    len: usize,
}
// SAFETY: the blocks of `for_each_row_block` touch disjoint rows (see `slice`).
unsafe impl Send for SharedRows {}
unsafe impl Sync for SharedRows {}

impl SharedRows {
    fn new(buf: &mut [f32]) -> Self {
        SharedRows { ptr: buf.as_mut_ptr(), len: buf.len() }
    }

    /// `len` values from `start`.
    ///
    /// # Safety
    /// No other live reference may overlap them: they must be rows of the caller's block.
    unsafe fn slice<'a>(self, start: usize, len: usize) -> &'a mut [f32] {
        assert!(start + len <= self.len, "internal: rows past the end of a shared buffer");
        std::slice::from_raw_parts_mut(self.ptr.add(start), len)
    }
}

/// Runs `block(rows)` for the blocks of `per` rows of a batch, in one parallel region. A batch's
/// rows are independent through every step of a recurrence (only the weight gradients, made
/// after the time loop, mix them), so a block can run the whole sequence for its rows without
/// waiting for the others at each step.
fn for_each_row_block(batch: usize, per: usize, block: impl Fn(std::ops::Range<usize>) + Sync) {
    crate::parallel::for_each_index(batch.div_ceil(per), |i| block(i * per..((i + 1) * per).min(batch)));
}

/// Backward through every step of the row blocks of `per` rows, in one parallel region:
/// `step(rows, t, dh_t, dh_prev)`, t counting down, gets the block's rows of dL/dh_t (read) and
/// of the buffer that receives dL/dh_{t-1} (written); the two buffers (`[B, H]` each) trade
/// places at every step. On return `dh` holds dL/dh_0 of every row.
fn for_each_row_block_backward(
    d: SeqDims,
    per: usize,
    dh: &mut Vec<f32>,
    dh_prev: &mut Vec<f32>,
    step: impl Fn(std::ops::Range<usize>, usize, &[f32], &mut [f32]) + Sync,
) {
    let buffers = [SharedRows::new(dh), SharedRows::new(dh_prev)];
    for_each_row_block(d.batch, per, |rows| {
        let (first, len) = (rows.start * d.hidden, rows.len() * d.hidden);
        for (k, t) in (0..d.steps).rev().enumerate() {
            // SAFETY: this block's rows of both buffers, one read and the other written:
            // disjoint from each other and from every other block's.
            let (dh_t, dh_prev) =
                unsafe { (&*buffers[k % 2].slice(first, len), buffers[(k + 1) % 2].slice(first, len)) };
            step(rows.clone(), t, dh_t, dh_prev);
        }
    });
    // After step t, dL/dh is in `dh` when T − t is even.
    if d.steps % 2 == 1 {
        std::mem::swap(dh, dh_prev);
    }
}

/// [`recurrent_product`] on the calling thread (a block of rows inside a parallel region).
fn block_product(rows: usize, h: &[f32], w: &impl PackedOperand, beta: f32, out: &mut [f32]) {
    packed_product(rows, h, w, beta, out, 1);
}

/// `out [R, N] ← h [R, K] · W + beta · out` (`W` packed `[K, N]`, all row-major) on `threads`.
fn packed_product(rows: usize, h: &[f32], w: &impl PackedOperand, beta: f32, out: &mut [f32], threads: usize) {
    w.multiply(rows, h, beta, out, threads);
}

/// `dh_prev [B, H] += dg_hh_t [B, G·H] · W_hh [G·H, H]`: the only sequential GEMM of backward.
fn backprop_to_previous_state(cache: &CellCache, dg_hh_t: &[f32], dh_prev: &mut [f32]) {
    recurrent_product(cache.dims.batch, dg_hh_t, &cache.w_hh, 1.0, dh_prev);
}
