//! `RecurrentStack`: L layers × D directions of one cell kind, PyTorch `nn.RNN/LSTM/GRU`
//! semantics with packed-sequence lengths.
//!
//! - Input `x` `[T, B, I]` time-major; output `y` `[T, B, D·H]`, the forward direction's half
//!   first. Final states `[L·D, B, H]` ordered layer 0 forward, layer 0 reverse, layer 1 forward…
//! - Variable lengths (`lengths[b]` real steps of row b, padding at the end): at padded steps the
//!   output is 0 and the state is not advanced, so `h_n` is the state after the last real step.
//!   The reverse direction processes each row's real steps in reverse (it starts at step
//!   `lengths[b] − 1`), as PyTorch does for a packed sequence. A length of 0 is allowed: the row
//!   outputs zeros and its state passes through unchanged (PyTorch refuses it; batching empty
//!   documents is simpler with it).
//! - Dropout (training only): inverted dropout on the output of every layer but the last, one
//!   mask `[T, B, D·H]` per layer drawn from [`Rng`] in (t, b, unit) order: dropped with
//!   probability p, kept values scaled by 1/(1−p).
//! - Parameters are read from (and gradients added into) flat [`Params`] buffers under the
//!   PyTorch names `rnn.weight_ih_l{k}[_reverse]`, `rnn.weight_hh_l{k}…`, `rnn.bias_ih_l{k}…`,
//!   `rnn.bias_hh_l{k}…`.
//!
//! This file is the training half (forward with cache, backward) and what both halves share
//! (state, shapes, parameter lookup, input checks); the cache-free inference half is in
//! [`super::recurrent_inference`].

use crate::cell::{
    self, CellCache, CellDownstream, CellGrads, CellInput, CellSequence, CellUpstream, CellWeights, InitialState,
    SeqDims,
};
use crate::config::{CellKind, ModelConfig};
use crate::error::{all_finite, check_finite, check_len, Error, Result};
use crate::params::Params;
use crate::rng::Rng;

// The inference half (cache-free forward, packed weights, workspace) lives in its own file; its
// types stay reachable under this module's path.
pub use super::recurrent_inference::{InferenceWorkspace, PackedRecurrence, TokenBatch};

/// The largest number of f32 values a forward may keep in its cache (16 GiB); larger batches
/// are refused before allocating.
const MAX_CACHE_VALUES: usize = 1 << 32;

/// A batch of sequences as the stack takes it: `x` `[T, B, I]` time-major, T = `steps`,
/// B = `batch`, and the real length of each row (`[B]`; None: all T).
#[derive(Debug, Clone, Copy)]
pub struct SeqBatch<'a> {
    pub x: &'a [f32],
    pub steps: usize,
    pub batch: usize,
    pub lengths: Option<&'a [usize]>,
}

/// A forward's first-layer input with the batch's shape (vectors, or token rows at inference).
#[derive(Debug, Clone, Copy)]
pub(super) struct StackInput<'a> {
    pub(super) x: CellInput<'a>,
    pub(super) steps: usize,
    pub(super) batch: usize,
    pub(super) lengths: Option<&'a [usize]>,
}

impl<'a> From<SeqBatch<'a>> for StackInput<'a> {
    fn from(seq: SeqBatch<'a>) -> Self {
        StackInput { x: CellInput::Vectors(seq.x), steps: seq.steps, batch: seq.batch, lengths: seq.lengths }
    }
}

/// Recurrent state of the whole stack.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StackState {
    /// `[L·D, B, H]`
    pub h: Vec<f32>,
    /// `[L·D, B, H]`, LSTM only.
    pub c: Option<Vec<f32>>,
}

impl StackState {
    /// The all-zero state of `stack` for a batch of `batch` rows (PyTorch's default).
    pub fn zeros(stack: &RecurrentStack, batch: usize) -> Self {
        let n = stack.layers * stack.directions * batch * stack.hidden;
        StackState { h: vec![0.0; n], c: stack.cell.has_cell_state().then(|| vec![0.0; n]) }
    }
}

/// What [`RecurrentStack::forward`] keeps for [`RecurrentStack::backward`]. Reusable: buffers
/// keep their capacity from one call to the next.
#[derive(Debug, Clone, Default)]
pub struct StackCache {
    steps: usize,
    batch: usize,
    /// `[B]` real lengths.
    lengths: Vec<usize>,
    /// One per (layer, direction), in `h_n` order.
    cells: Vec<CellCache>,
    /// `[L−1]` dropout masks `[T, B, D·H]` applied to the output of layers 0..L−1; empty when
    /// no dropout was applied.
    dropout_masks: Vec<Vec<f32>>,
    /// Reusable `[T, B, D·H]` buffers: two layers' outputs in the forward (the one below, read,
    /// and the one being written), their gradients in the backward.
    between: (Vec<f32>, Vec<f32>),
    /// Reusable `[T, B, H]` one direction's output / output gradient (bidirectional stacks).
    y_dir: Vec<f32>,
    /// Reusable `[T, B, in]` the reverse direction's input / input gradient (bidirectional).
    x_reversed: Vec<f32>,
}

/// The tensors of one (layer, direction), in PyTorch's names (`rnn.<kind>_l<layer>[_reverse]`).
const PARAM_KINDS: [&str; 4] = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"];

/// L layers × D directions of one recurrent cell.
#[derive(Debug, Clone, PartialEq)]
pub struct RecurrentStack {
    pub(super) cell: CellKind,
    pub(super) input_size: usize,
    pub(super) hidden: usize,
    pub(super) layers: usize,
    pub(super) directions: usize,
    dropout: f32,
    /// Per (layer, direction) (index `layer · D + dir`), the names of weight_ih, weight_hh,
    /// bias_ih and bias_hh: made once, so that looking up a layer's tensors, at every generated
    /// token, formats nothing.
    param_names: Vec<[String; 4]>,
}

impl RecurrentStack {
    /// The stack described by `cfg` (`cfg.validate()` is the caller's: every size is then ≥ 1),
    /// its tensors named `rnn.*`.
    pub fn new(cfg: &ModelConfig) -> Self {
        Self::named(
            "rnn",
            cfg.cell,
            cfg.rnn_input_size(),
            cfg.hidden_size,
            cfg.num_layers,
            cfg.directions(),
            cfg.dropout,
        )
    }

    /// A stack of the given sizes whose tensors are named `<prefix>.weight_ih_l{k}…` (a
    /// sequence-to-sequence model has two: `encoder.rnn` and `decoder.rnn`). Sizes are the
    /// caller's to validate (each ≥ 1).
    pub fn named(
        prefix: &str,
        cell: CellKind,
        input_size: usize,
        hidden: usize,
        layers: usize,
        directions: usize,
        dropout: f32,
    ) -> Self {
        RecurrentStack {
            cell,
            input_size,
            hidden,
            layers,
            directions,
            dropout,
            param_names: (0..layers * directions)
                .map(|idx| PARAM_KINDS.map(|kind| Self::param_name(prefix, kind, idx / directions, idx % directions)))
                .collect(),
        }
    }

    /// The parameter names and shapes of this stack, in file order.
    pub fn param_entries(&self) -> Vec<(String, Vec<usize>)> {
        let gh = self.cell.gates() * self.hidden;
        let mut v = Vec::new();
        for (idx, names) in self.param_names.iter().enumerate() {
            let shapes =
                [vec![gh, self.layer_input_size(idx / self.directions)], vec![gh, self.hidden], vec![gh], vec![gh]];
            v.extend(names.iter().cloned().zip(shapes));
        }
        v
    }

    /// I, the width of the input vectors.
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// D·H, the width of the output vectors.
    pub fn output_size(&self) -> usize {
        self.directions * self.hidden
    }

    /// Training (or evaluation) forward of `seq`. `state` the initial state (None: zeros);
    /// `dropout`: Some(rng) applies dropout between layers (training). Returns `y` `[T, B, D·H]`
    /// and the final state; fills `cache`.
    pub fn forward(
        &self,
        p: &Params,
        seq: SeqBatch,
        state: Option<&StackState>,
        dropout: Option<&mut Rng>,
        cache: &mut StackCache,
    ) -> Result<(Vec<f32>, StackState)> {
        let mut y = Vec::new();
        let final_state = self.forward_into(p, seq, state, dropout, cache, &mut y)?;
        Ok((y, final_state))
    }

    /// [`forward`](Self::forward) writing `y` `[T, B, D·H]` into the caller's buffer (resized,
    /// its capacity reused). With a reused `cache` and `y`, a training step allocates no
    /// sequence-sized buffer: fresh multi-megabyte buffers cost page faults on every step.
    pub fn forward_into(
        &self,
        p: &Params,
        seq: SeqBatch,
        state: Option<&StackState>,
        mut dropout: Option<&mut Rng>,
        cache: &mut StackCache,
        y: &mut Vec<f32>,
    ) -> Result<StackState> {
        self.check_inputs(seq.into(), state)?;
        let SeqBatch { x, steps: t, batch: b, lengths } = seq;
        let (hd, dirs, n_state) = (self.hidden, self.directions, b * self.hidden);
        let zeros = StackState::zeros(self, b);
        let initial = state.unwrap_or(&zeros);
        cache.steps = t;
        cache.batch = b;
        cache.lengths.clear();
        match lengths {
            Some(l) => cache.lengths.extend_from_slice(l),
            None => cache.lengths.resize(b, t),
        }
        cache.cells.resize_with(self.layers * dirs, CellCache::default);
        cache.dropout_masks.clear();
        let mut final_state = StackState::zeros(self, b);
        // The previous layer's output (this layer's input) and the one being written, [T, B, D·H].
        let (mut below, mut above) = std::mem::take(&mut cache.between);
        let mut y_dir = std::mem::take(&mut cache.y_dir);
        let mut x_reversed = std::mem::take(&mut cache.x_reversed);
        for layer in 0..self.layers {
            let in_size = self.layer_input_size(layer);
            if layer > 0 && self.dropout > 0.0 {
                if let Some(rng) = dropout.as_deref_mut() {
                    let mask = self.draw_dropout_mask(rng, below.len());
                    below.iter_mut().zip(&mask).for_each(|(v, m)| *v *= m);
                    cache.dropout_masks.push(mask);
                }
            }
            let layer_in: &[f32] = if layer == 0 { x } else { &below };
            let last = layer + 1 == self.layers;
            let layer_out: &mut Vec<f32> = if last { &mut *y } else { &mut above };
            layer_out.resize(t * b * dirs * hd, 0.0);
            let dims = SeqDims { steps: t, batch: b, input: in_size, hidden: hd };
            for dir in 0..dirs {
                let idx = layer * dirs + dir;
                let w = self.weights(p, layer, dir)?;
                let x_dir = if dir == 0 {
                    layer_in
                } else {
                    x_reversed.resize(layer_in.len(), 0.0);
                    reverse_real_steps(layer_in, &mut x_reversed, b, in_size, &cache.lengths);
                    &x_reversed
                };
                let state_range = idx * n_state..(idx + 1) * n_state;
                let start = InitialState {
                    h0: &initial.h[state_range.clone()],
                    c0: initial.c.as_ref().map(|c| &c[state_range.clone()]),
                };
                let seq_dir = CellSequence { dims, x: x_dir, lengths: &cache.lengths };
                let cell_cache = &mut cache.cells[idx];
                if dirs == 1 {
                    // One direction: its output is the layer's, written in place.
                    cell::forward(self.cell, &w, seq_dir, start, layer_out, cell_cache);
                } else {
                    y_dir.resize(t * n_state, 0.0);
                    cell::forward(self.cell, &w, seq_dir, start, &mut y_dir, cell_cache);
                    place_direction(&y_dir, layer_out, b, hd, dir, dirs, &cache.lengths);
                }
                final_state.h[state_range.clone()].copy_from_slice(cell_cache.final_h());
                if let (Some(c_n), Some(c_t)) = (final_state.c.as_mut(), cell_cache.final_c()) {
                    c_n[state_range].copy_from_slice(c_t);
                }
            }
            if !last {
                std::mem::swap(&mut below, &mut above);
            }
        }
        cache.between = (below, above);
        cache.y_dir = y_dir;
        cache.x_reversed = x_reversed;
        Ok(final_state)
    }

    /// Backward through the last [`forward`](Self::forward) stored in `cache`. `dy` `[T, B, D·H]`;
    /// `dstate` the gradient w.r.t. the final state (None: zeros). Adds every parameter gradient
    /// into `g`; returns `dx` `[T, B, I]` and the gradient w.r.t. the initial state. Uses the
    /// cache's reusable buffers for everything but `dx`.
    pub fn backward(
        &self,
        p: &Params,
        cache: &mut StackCache,
        dy: &[f32],
        dstate: Option<&StackState>,
        g: &mut Params,
    ) -> Result<(Vec<f32>, StackState)> {
        let (t, b, hd, dirs) = (cache.steps, cache.batch, self.hidden, self.directions);
        if cache.cells.len() != self.layers * dirs || t == 0 {
            return Err(Error::Config("backward: the cache does not hold a forward pass of this stack".into()));
        }
        check_len("dy", dy.len(), t * b * dirs * hd)?;
        if let Some(s) = dstate {
            self.check_state("dstate", s, b)?;
        }
        let n_state = b * hd;
        let mut d_initial = StackState::zeros(self, b);
        let zero_state = vec![0.0; n_state];
        // dL/d(output of the layer above) and dL/d(its input), [T, B, D·H], reused.
        let (mut d_above, mut d_below) = std::mem::take(&mut cache.between);
        let mut dy_dir = std::mem::take(&mut cache.y_dir);
        let mut dx_dir = std::mem::take(&mut cache.x_reversed);
        let mut dx = Vec::new();
        for layer in (0..self.layers).rev() {
            let in_size = self.layer_input_size(layer);
            let d_out: &[f32] = if layer + 1 == self.layers { dy } else { &d_above };
            // The gradient w.r.t. this layer's input: the result (dx) for layer 0.
            let d_in: &mut Vec<f32> = if layer == 0 { &mut dx } else { &mut d_below };
            d_in.resize(t * b * in_size, 0.0);
            for dir in 0..dirs {
                let idx = layer * dirs + dir;
                let w = self.weights(p, layer, dir)?;
                let mut grads = self.grads(g, layer, dir)?;
                let dy_cell: &[f32] = if dirs == 1 {
                    d_out
                } else {
                    dy_dir.resize(t * n_state, 0.0);
                    take_direction(d_out, &mut dy_dir, b, hd, dir, dirs, &cache.lengths);
                    &dy_dir
                };
                let state_range = idx * n_state..(idx + 1) * n_state;
                let up = CellUpstream {
                    dy: dy_cell,
                    dh_n: dstate.map_or(&zero_state[..], |s| &s.h[state_range.clone()]),
                    dc_n: dstate.and_then(|s| s.c.as_ref()).map(|c| &c[state_range.clone()]),
                };
                // The forward direction's dx is written straight into d_in (overwritten); the
                // reverse one's is in its own time order, added after un-reversing.
                let dx_cell: &mut [f32] = if dir == 0 {
                    d_in
                } else {
                    dx_dir.resize(t * b * in_size, 0.0);
                    &mut dx_dir
                };
                let down = CellDownstream {
                    dx: dx_cell,
                    dh0: &mut d_initial.h[state_range.clone()],
                    dc0: d_initial.c.as_mut().map(|c| &mut c[state_range]),
                };
                cell::backward(self.cell, &w, &mut cache.cells[idx], up, &mut grads, down);
                if dir == 1 {
                    add_unreversed(&dx_dir, d_in, b, in_size, &cache.lengths);
                }
            }
            if layer > 0 {
                if let Some(mask) = cache.dropout_masks.get(layer - 1) {
                    d_in.iter_mut().zip(mask).for_each(|(d, m)| *d *= m);
                }
                std::mem::swap(&mut d_above, &mut d_below);
            }
        }
        cache.between = (d_above, d_below);
        cache.y_dir = dy_dir;
        cache.x_reversed = dx_dir;
        Ok((dx, d_initial))
    }

    pub(super) fn layer_input_size(&self, layer: usize) -> usize {
        if layer == 0 {
            self.input_size
        } else {
            self.directions * self.hidden
        }
    }

    fn param_name(prefix: &str, kind: &str, layer: usize, dir: usize) -> String {
        format!("{prefix}.{kind}_l{layer}{}", if dir == 1 { "_reverse" } else { "" })
    }

    /// The four tensors of (layer, dir) as `(offset, len)` in a buffer, checked against the shapes
    /// this stack needs (order: [`PARAM_KINDS`]). Allocates nothing on success.
    fn param_ranges(&self, p: &Params, layer: usize, dir: usize) -> Result<[std::ops::Range<usize>; 4]> {
        let gh = self.cell.gates() * self.hidden;
        let wanted: [&[usize]; 4] = [&[gh, self.layer_input_size(layer)], &[gh, self.hidden], &[gh], &[gh]];
        let mut ranges: [std::ops::Range<usize>; 4] = Default::default();
        for ((range, shape), name) in
            ranges.iter_mut().zip(wanted).zip(&self.param_names[layer * self.directions + dir])
        {
            let spec = p.layout.require(name)?;
            if spec.shape != shape {
                return Err(Error::Shape(format!("{name}: expected shape {shape:?}, got {:?}", spec.shape)));
            }
            *range = spec.offset..spec.offset + spec.len;
        }
        if p.data.len() != p.layout.total() {
            return Err(Error::Shape(format!(
                "parameters: expected {} values, got {}",
                p.layout.total(),
                p.data.len()
            )));
        }
        Ok(ranges)
    }

    pub(super) fn weights<'p>(&self, p: &'p Params, layer: usize, dir: usize) -> Result<CellWeights<'p>> {
        let [w_ih, w_hh, b_ih, b_hh] = self.param_ranges(p, layer, dir)?;
        Ok(CellWeights { w_ih: &p.data[w_ih], w_hh: &p.data[w_hh], b_ih: &p.data[b_ih], b_hh: &p.data[b_hh] })
    }

    fn grads<'g>(&self, g: &'g mut Params, layer: usize, dir: usize) -> Result<CellGrads<'g>> {
        let ranges = self.param_ranges(g, layer, dir)?;
        let [w_ih, w_hh, b_ih, b_hh] = g
            .data
            .get_disjoint_mut(ranges)
            .map_err(|_| Error::Config(format!("gradients: the tensors of layer {layer} overlap in the layout")))?;
        Ok(CellGrads { w_ih, w_hh, b_ih, b_hh })
    }

    fn check_state(&self, name: &str, s: &StackState, b: usize) -> Result<()> {
        let n = self.layers * self.directions * b * self.hidden;
        let valid = |v: &[f32]| v.len() == n && all_finite(v);
        if valid(&s.h) && s.c.as_deref().is_none_or(valid) && s.c.is_some() == self.cell.has_cell_state() {
            // The common case (a state this stack made), checked without building error names.
            return Ok(());
        }
        check_len(&format!("{name}.h"), s.h.len(), n)?;
        check_finite(&format!("{name}.h"), &s.h)?;
        match (&s.c, self.cell.has_cell_state()) {
            (Some(c), true) => {
                check_len(&format!("{name}.c"), c.len(), n)?;
                check_finite(&format!("{name}.c"), c)
            }
            (None, true) => Err(Error::Shape(format!("{name}.c: an LSTM state needs the memory c, got none"))),
            (Some(_), false) => Err(Error::Shape(format!("{name}.c: only an LSTM state has a memory c"))),
            (None, false) => Ok(()),
        }
    }

    /// Validates every user-controlled input of a forward before anything is allocated.
    pub(super) fn check_inputs(&self, input: StackInput, state: Option<&StackState>) -> Result<()> {
        let StackInput { x: input, steps: t, batch: b, lengths } = input;
        if self.input_size == 0 || self.hidden == 0 || self.layers == 0 {
            return Err(Error::Config(
                "recurrent stack: every size must be at least 1 (validate the ModelConfig)".into(),
            ));
        }
        if t == 0 || b == 0 {
            return Err(Error::Range(format!(
                "sequence: expected at least one step and one row, got {t} steps and {b} rows"
            )));
        }
        let widest = self.input_size.max(self.cell.gates() * self.hidden + 3 * self.hidden);
        let cache_values = t
            .checked_mul(b)
            .and_then(|n| n.checked_mul(widest))
            .and_then(|n| n.checked_mul(self.layers * self.directions));
        if cache_values.is_none_or(|n| n > MAX_CACHE_VALUES) {
            return Err(Error::Range(format!(
                "sequence: {t} steps × {b} rows is too large for this model; use shorter chunks"
            )));
        }
        match input {
            CellInput::Vectors(x) => {
                check_len("x", x.len(), t * b * self.input_size)?;
                check_finite("x", x)?;
            }
            CellInput::TokenRows { table, ids } => {
                if self.directions != 1 {
                    return Err(Error::Config("token rows input: only unidirectional stacks".into()));
                }
                let width = self.cell.gates() * self.hidden;
                if table.is_empty() || table.len() % width != 0 {
                    return Err(Error::Shape(format!("table: expected [V, {width}] values, got {}", table.len())));
                }
                check_len("ids", ids.len(), t * b)?;
                let vocab = table.len() / width;
                if let Some((k, &id)) = ids.iter().enumerate().find(|(_, &id)| id as usize >= vocab) {
                    return Err(Error::Range(format!("ids[{k}]: expected a row of the {vocab}-row table, got {id}")));
                }
            }
        }
        if let Some(l) = lengths {
            check_len("lengths", l.len(), b)?;
            if let Some((row, &len)) = l.iter().enumerate().find(|(_, &len)| len > t) {
                return Err(Error::Range(format!(
                    "lengths[{row}]: expected at most the {t} steps of the batch, got {len}"
                )));
            }
        }
        if let Some(s) = state {
            self.check_state("state", s, b)?;
        }
        Ok(())
    }

    fn draw_dropout_mask(&self, rng: &mut Rng, n: usize) -> Vec<f32> {
        let keep_scale = 1.0 / (1.0 - self.dropout);
        (0..n).map(|_| if rng.uniform() < self.dropout { 0.0 } else { keep_scale }).collect()
    }
}

/// The reverse direction's view of a sequence: `dst[s, b] = src[len_b − 1 − s, b]` for the real
/// steps `s < len_b`, `dst[s, b] = src[s, b]` for padding. The map is its own inverse.
/// `src`, `dst` `[T, B, width]`.
pub(super) fn reverse_real_steps(src: &[f32], dst: &mut [f32], b: usize, width: usize, lengths: &[usize]) {
    let t = src.len() / (b * width);
    for s in 0..t {
        for (row, &len) in lengths.iter().enumerate() {
            let from = if s < len { len - 1 - s } else { s };
            let (d, f) = ((s * b + row) * width, (from * b + row) * width);
            dst[d..d + width].copy_from_slice(&src[f..f + width]);
        }
    }
}

/// `d_in += unreverse(dx_rev)`, both `[T, B, width]`.
fn add_unreversed(dx_rev: &[f32], d_in: &mut [f32], b: usize, width: usize, lengths: &[usize]) {
    let t = d_in.len() / (b * width);
    for s in 0..t {
        for (row, &len) in lengths.iter().enumerate() {
            let from = if s < len { len - 1 - s } else { s };
            let (d, f) = ((s * b + row) * width, (from * b + row) * width);
            d_in[d..d + width].iter_mut().zip(&dx_rev[f..f + width]).for_each(|(a, v)| *a += v);
        }
    }
}

/// Writes one direction's output `y_dir` `[T, B, H]` (own time order) into columns
/// `dir·H..(dir+1)·H` of `out` `[T, B, D·H]`, un-reversing the reverse direction.
pub(super) fn place_direction(
    y_dir: &[f32],
    out: &mut [f32],
    b: usize,
    hidden: usize,
    dir: usize,
    dirs: usize,
    lengths: &[usize],
) {
    let t = y_dir.len() / (b * hidden);
    for s in 0..t {
        for (row, &len) in lengths.iter().enumerate() {
            let from = if dir == 1 && s < len { len - 1 - s } else { s };
            let o = (s * b + row) * dirs * hidden + dir * hidden;
            let f = (from * b + row) * hidden;
            out[o..o + hidden].copy_from_slice(&y_dir[f..f + hidden]);
        }
    }
}

/// The inverse of [`place_direction`] for gradients: `dy_dir [T, B, H]` in the direction's own
/// time order from columns `dir·H..` of `d_out` `[T, B, D·H]`.
fn take_direction(
    d_out: &[f32],
    dy_dir: &mut [f32],
    b: usize,
    hidden: usize,
    dir: usize,
    dirs: usize,
    lengths: &[usize],
) {
    let t = dy_dir.len() / (b * hidden);
    for s in 0..t {
        for (row, &len) in lengths.iter().enumerate() {
            let from = if dir == 1 && s < len { len - 1 - s } else { s };
            let o = (from * b + row) * dirs * hidden + dir * hidden;
            let d = (s * b + row) * hidden;
            dy_dir[d..d + hidden].copy_from_slice(&d_out[o..o + hidden]);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::{InputKind, Pooling, Task};
    use std::sync::Arc;

    pub(in crate::layer) const CELLS: [CellKind; 4] =
        [CellKind::RnnTanh, CellKind::RnnRelu, CellKind::Lstm, CellKind::Gru];

    pub(in crate::layer) fn config(cell: CellKind, layers: usize, bidirectional: bool, dropout: f32) -> ModelConfig {
        ModelConfig {
            task: Task::Tag,
            cell,
            input: InputKind::Dense { input_size: 3 },
            hidden_size: 4,
            num_layers: layers,
            bidirectional,
            skip: false,
            dropout,
            output_size: 1,
            pooling: Pooling::Last,
            per_step: false,
            speech: None,
        }
    }

    /// A stack with random weights, an input `[T, B, 3]` and a random initial state.
    pub(in crate::layer) fn setup(
        cfg: &ModelConfig,
        t: usize,
        b: usize,
        seed: u64,
    ) -> (RecurrentStack, Params, Vec<f32>, StackState) {
        let stack = RecurrentStack::new(cfg);
        let mut rng = Rng::new(seed);
        let mut p = Params::zeros(Arc::new(cfg.layout()));
        p.data.iter_mut().for_each(|v| *v = rng.uniform_range(-0.5, 0.5));
        let x = (0..t * b * stack.input_size()).map(|_| rng.normal()).collect();
        let mut state = StackState::zeros(&stack, b);
        state.h.iter_mut().for_each(|v| *v = 0.5 * rng.normal());
        if let Some(c) = state.c.as_mut() {
            c.iter_mut().for_each(|v| *v = 0.5 * rng.normal());
        }
        (stack, p, x, state)
    }

    pub(in crate::layer) fn assert_close(what: &str, a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol, "{what}[{i}]: {x} vs {y}");
        }
    }

    #[test]
    fn reused_backward_buffers_carry_nothing_over() {
        for cell in CELLS {
            let cfg = config(cell, 2, true, 0.0);
            let backward = |cache: &mut StackCache, t: usize, b: usize, lengths: &[usize], seed: u64| {
                let (stack, p, x, state) = setup(&cfg, t, b, seed);
                let (y, fin) = stack
                    .forward(
                        &p,
                        SeqBatch { x: &x, steps: t, batch: b, lengths: Some(lengths) },
                        Some(&state),
                        None,
                        cache,
                    )
                    .unwrap();
                let dy: Vec<f32> = y.iter().enumerate().map(|(k, v)| v * 0.5 + (k as f32 * 0.37).sin()).collect();
                let dstate = StackState {
                    h: fin.h.iter().map(|v| 0.3 - v).collect(),
                    c: fin.c.as_ref().map(|c| c.iter().map(|v| v * 0.2).collect()),
                };
                let mut g = Params::zeros(p.layout.clone());
                let (dx, d0) = stack.backward(&p, cache, &dy, Some(&dstate), &mut g).unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                (bits(&g.data), bits(&dx), bits(&d0.h), d0.c.map(|c| bits(&c)))
            };
            let mut reused = StackCache::default();
            backward(&mut reused, 6, 4, &[6, 6, 6, 6], 21);
            let again = backward(&mut reused, 5, 3, &[5, 2, 4], 23);
            let fresh = backward(&mut StackCache::default(), 5, 3, &[5, 2, 4], 23);
            assert!(again == fresh, "{cell:?}: a reused cache changed the gradients");
        }
    }

    #[test]
    fn two_chunks_with_carried_state_equal_one_forward() {
        // What truncated BPTT relies on: [0, k) then [k, T) from the carried state == [0, T).
        for cell in CELLS {
            let cfg = config(cell, 3, false, 0.0);
            let (t, b, k) = (7, 2, 3);
            let (stack, p, x, state) = setup(&cfg, t, b, 13);
            let mut cache = StackCache::default();
            let (y, fin) = stack
                .forward(&p, SeqBatch { x: &x, steps: t, batch: b, lengths: None }, Some(&state), None, &mut cache)
                .unwrap();
            let split = k * b * stack.input_size();
            let (y1, mid) = stack
                .forward(
                    &p,
                    SeqBatch { x: &x[..split], steps: k, batch: b, lengths: None },
                    Some(&state),
                    None,
                    &mut cache,
                )
                .unwrap();
            let (y2, end) = stack
                .forward(
                    &p,
                    SeqBatch { x: &x[split..], steps: t - k, batch: b, lengths: None },
                    Some(&mid),
                    None,
                    &mut cache,
                )
                .unwrap();
            let joined: Vec<f32> = y1.into_iter().chain(y2).collect();
            assert_close(&format!("{cell:?} y"), &joined, &y, 1e-6);
            assert_close("h_n", &end.h, &fin.h, 1e-6);
            if let (Some(c1), Some(c2)) = (&end.c, &fin.c) {
                assert_close("c_n", c1, c2, 1e-6);
            }
        }
    }

    #[test]
    fn each_row_equals_running_it_alone_over_its_real_steps() {
        // Packed-sequence semantics, bidirectional: padding changes nothing for the real steps,
        // padded outputs are 0, h_n is the state after the last real step (the reverse
        // direction's after step 0).
        for cell in CELLS {
            let cfg = config(cell, 2, true, 0.0);
            let (t, b) = (5, 3);
            let (stack, p, x, state) = setup(&cfg, t, b, 17);
            let lengths = [3, 5, 1];
            let (y, fin) = stack
                .forward(
                    &p,
                    SeqBatch { x: &x, steps: t, batch: b, lengths: Some(&lengths) },
                    Some(&state),
                    None,
                    &mut StackCache::default(),
                )
                .unwrap();
            let (i, o, h) = (stack.input_size(), stack.output_size(), 4);
            for (row, &len) in lengths.iter().enumerate() {
                let x_row: Vec<f32> =
                    (0..len).flat_map(|s| x[(s * b + row) * i..(s * b + row + 1) * i].to_vec()).collect();
                let pick = |v: &Vec<f32>| -> Vec<f32> {
                    (0..4).flat_map(|k| v[(k * b + row) * h..(k * b + row + 1) * h].to_vec()).collect()
                };
                let state_row = StackState { h: pick(&state.h), c: state.c.as_ref().map(pick) };
                let (y_row, fin_row) = stack
                    .forward(
                        &p,
                        SeqBatch { x: &x_row, steps: len, batch: 1, lengths: None },
                        Some(&state_row),
                        None,
                        &mut StackCache::default(),
                    )
                    .unwrap();
                for s in 0..t {
                    let got = &y[(s * b + row) * o..(s * b + row + 1) * o];
                    if s < len {
                        assert_close(&format!("{cell:?} row {row} step {s}"), got, &y_row[s * o..(s + 1) * o], 1e-6);
                    } else {
                        assert!(got.iter().all(|&v| v == 0.0), "padded output must be 0");
                    }
                }
                assert_close("h_n", &pick(&fin.h), &fin_row.h, 1e-6);
                if let (Some(c), Some(c_row)) = (&fin.c, &fin_row.c) {
                    assert_close("c_n", &pick(c), c_row, 1e-6);
                }
            }
        }
    }

    #[test]
    fn dropout_is_reproducible_by_seed_and_off_without_a_generator() {
        let (t, b) = (6, 4);
        let with_dropout = config(CellKind::Lstm, 2, false, 0.5);
        let (stack, p, x, state) = setup(&with_dropout, t, b, 19);
        let mut cache = StackCache::default();
        let mut run = |rng: Option<&mut Rng>| {
            stack
                .forward(&p, SeqBatch { x: &x, steps: t, batch: b, lengths: None }, Some(&state), rng, &mut cache)
                .unwrap()
                .0
        };
        let (a, a_again, other, eval) =
            (run(Some(&mut Rng::new(1))), run(Some(&mut Rng::new(1))), run(Some(&mut Rng::new(2))), run(None));
        assert_eq!(a, a_again);
        assert_ne!(a, other);
        assert_ne!(a, eval);
        let no_dropout = RecurrentStack::new(&config(CellKind::Lstm, 2, false, 0.0));
        let plain = no_dropout
            .forward(
                &p,
                SeqBatch { x: &x, steps: t, batch: b, lengths: None },
                Some(&state),
                Some(&mut Rng::new(1)),
                &mut StackCache::default(),
            )
            .unwrap()
            .0;
        assert_eq!(eval, plain);
        // The mask drops about p of the values and scales the rest by 1/(1-p).
        let mask = stack.draw_dropout_mask(&mut Rng::new(3), 10_000);
        let dropped = mask.iter().filter(|&&m| m == 0.0).count();
        assert!((4_500..5_500).contains(&dropped), "dropped {dropped} of 10000");
        assert!(mask.iter().all(|&m| m == 0.0 || m == 2.0));
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let cfg = config(CellKind::Lstm, 2, true, 0.0);
        let (t, b) = (4, 2);
        let (stack, p, x, state) = setup(&cfg, t, b, 23);
        let mut cache = StackCache::default();
        let fwd = |x: &[f32], t: usize, lengths: Option<&[usize]>, state: Option<&StackState>, p: &Params| {
            stack
                .forward(p, SeqBatch { x, steps: t, batch: b, lengths }, state, None, &mut StackCache::default())
                .map(|_| ())
        };
        assert!(matches!(fwd(&x[1..], t, None, None, &p), Err(Error::Shape(_))));
        assert!(matches!(fwd(&[], 0, None, None, &p), Err(Error::Range(_))));
        assert!(matches!(fwd(&x, t, Some(&[4]), None, &p), Err(Error::Shape(_))));
        assert!(matches!(fwd(&x, t, Some(&[4, 5]), None, &p), Err(Error::Range(_))));
        assert!(fwd(&x, t, Some(&[0, 4]), None, &p).is_ok(), "a zero length is allowed");
        let mut nan_x = x.clone();
        nan_x[3] = f32::NAN;
        assert!(matches!(fwd(&nan_x, t, None, None, &p), Err(Error::NonFinite(_))));
        let no_c = StackState { h: state.h.clone(), c: None };
        assert!(matches!(fwd(&x, t, None, Some(&no_c), &p), Err(Error::Shape(_))));
        let short_h = StackState { h: state.h[1..].to_vec(), c: state.c.clone() };
        assert!(matches!(fwd(&x, t, None, Some(&short_h), &p), Err(Error::Shape(_))));
        assert!(matches!(fwd(&x, t, Some(&[1, 1]), None, &p), Ok(())));
        // Parameters of another model: a GRU's tensors have other shapes, a 1-layer model lacks
        // layer 1.
        let gru = Params::zeros(Arc::new(config(CellKind::Gru, 2, true, 0.0).layout()));
        assert!(matches!(fwd(&x, t, None, None, &gru), Err(Error::Shape(_))));
        let one_layer = Params::zeros(Arc::new(config(CellKind::Lstm, 1, true, 0.0).layout()));
        assert!(matches!(fwd(&x, t, None, None, &one_layer), Err(Error::Config(_))));
        // A state with c for a GRU.
        let gru_stack = RecurrentStack::new(&config(CellKind::Gru, 2, true, 0.0));
        let r = gru_stack.forward(
            &gru,
            SeqBatch { x: &x, steps: t, batch: b, lengths: None },
            Some(&state),
            None,
            &mut cache,
        );
        assert!(matches!(r, Err(Error::Shape(_))));
        // Backward without a forward, then with a wrong dy.
        let mut g = Params::zeros(p.layout.clone());
        let mut fresh = StackCache::default();
        assert!(matches!(stack.backward(&p, &mut fresh, &[], None, &mut g), Err(Error::Config(_))));
        let (y, _) =
            stack.forward(&p, SeqBatch { x: &x, steps: t, batch: b, lengths: None }, None, None, &mut cache).unwrap();
        assert!(matches!(stack.backward(&p, &mut cache, &y[1..], None, &mut g), Err(Error::Shape(_))));
        assert!(stack.backward(&p, &mut cache, &y, None, &mut g).is_ok());
        // A sequence too large to cache is refused before allocating.
        let huge = stack.forward(
            &p,
            SeqBatch { x: &x, steps: usize::MAX / 2, batch: b, lengths: None },
            None,
            None,
            &mut cache,
        );
        assert!(matches!(huge, Err(Error::Range(_))));
    }
}
