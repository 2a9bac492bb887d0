//! The network of every task: input (token embedding or dense vectors) → stacked, optionally
//! bidirectional recurrent layers → head. Per-step tasks (language model, tagging, per-step
//! regression) apply the head at every step; per-row tasks (classification, many-to-one
//! regression) pool the real steps of each row first.
//!
//! A speech model's dense input may join `k` consecutive frames into one step (frame stacking):
//! the batch's `[B, T, F]` frames become `[⌈T/k⌉, B, k·F]` recurrent input.
//!
//! Shapes (time-major inside, see lib.rs): x `[T, B, I]`, y `[T, B, F]` with F = D·H, per-step
//! outputs `[T·B, C]` (row `t·B + b`), per-row outputs `[B, C]`.

use crate::batch::{Batch, BatchInput};
use crate::config::{InputKind, ModelConfig, Task};
use crate::error::{check_finite, check_len, Error, Result};
use crate::kernels::precision::{Precision, WeightMatrix};
use crate::layer::dense::{Dense, DenseGrads};
use crate::layer::embedding::Embedding;
use crate::layer::pooling::TimePooling;
use crate::layer::recurrent::{PackedRecurrence, RecurrentStack, SeqBatch, StackCache, StackState};
use crate::params::Params;
use crate::rng::Rng;
use std::sync::{Arc, OnceLock};

/// A network with its parameters.
#[derive(Debug, Clone)]
pub struct Network {
    pub config: ModelConfig,
    /// Private so that every change goes through [`params_mut`](Self::params_mut), which drops
    /// `packed` (derived from these values).
    params: Params,
    stack: RecurrentStack,
    /// The weights packed for inference, made on first use after each change.
    packed: OnceLock<InferenceWeights>,
    /// The precision `packed` is made at.
    precision: Precision,
}

/// The weights of a network packed for inference ([`Network::inference_weights`]): every
/// generated token multiplies by all of them, so they are packed once, not once per token.
#[derive(Debug, Clone)]
pub struct InferenceWeights {
    /// The recurrent stack's weights.
    pub recurrence: PackedRecurrence,
    /// `head.weight`ᵀ `[F, C]`.
    pub head_t: WeightMatrix,
    /// `[V, G·H]` the first layer's input projection of every token's embedding (biases
    /// included), for token models whose table is at most twice the size of `W_ih` (V ≤ 2E):
    /// a token then costs a row lookup instead of a `[1, E]·[E, G·H]` product. None otherwise.
    pub token_gates: Option<Vec<f32>>,
}

/// What one forward pass keeps for its backward pass. Reusable across steps.
#[derive(Debug, Default)]
pub struct ForwardCache {
    /// `[B, T]` token ids (token inputs), kept for the embedding's backward.
    tokens: Vec<i32>,
    /// `[T, B, I]` recurrent input.
    x: Vec<f32>,
    stack: StackCache,
    /// `[T, B, F]` recurrent output.
    y: Vec<f32>,
    /// `[T, B, F]` backward's gradient w.r.t. `y` (kept for its capacity only).
    dy: Vec<f32>,
    /// `[B, F]` pooled output (per-row tasks).
    pooled: Vec<f32>,
    /// `[B, F]` step of each max (max pooling).
    argmax: Vec<usize>,
    lengths: Vec<usize>,
    rows: usize,
    steps: usize,
}

impl Network {
    /// A network with parameters `params` laid out for `config`.
    pub fn from_params(config: ModelConfig, params: Params) -> Result<Self> {
        config.validate()?;
        let layout = config.layout();
        if *params.layout != layout {
            return Err(Error::Config("params: the parameter layout does not match the configuration".into()));
        }
        let stack = RecurrentStack::new(&config);
        Ok(Network { config, params, stack, packed: OnceLock::new(), precision: Precision::F32 })
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The parameters, for changing them (optimizer steps, loading tensors). Invalidates the
    /// weights packed for inference.
    pub fn params_mut(&mut self) -> &mut Params {
        self.packed = OnceLock::new();
        &mut self.params
    }

    /// The precision of the weights at inference (generation; training is always f32).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Sets the precision of the weights at inference: the recurrent layers and the head are
    /// packed at it on the next use ([`Network::feed`]); the parameters stay f32. bf16 and int8
    /// are for language models, whose generation path uses them.
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        if precision != Precision::F32 && self.config.task != Task::LanguageModel {
            return Err(Error::Config(format!(
                "precision \"{}\": reduced precision is for generating with language models, this model's task is \"{}\"",
                precision.name(),
                self.config.task.name()
            )));
        }
        if precision != self.precision {
            self.precision = precision;
            self.packed = OnceLock::new();
        }
        Ok(())
    }

    /// Bytes of the weights packed for inference (0 until first use).
    pub fn inference_bytes(&self) -> usize {
        self.packed
            .get()
            .map_or(0, |p| p.recurrence.bytes() + p.head_t.bytes() + p.token_gates.as_ref().map_or(0, |t| t.len() * 4))
    }

    /// The weights packed for inference, packed on first use after a change of the parameters.
    pub fn inference_weights(&self) -> Result<&InferenceWeights> {
        if let Some(p) = self.packed.get() {
            return Ok(p);
        }
        let recurrence = self.stack.pack_recurrence(&self.params, self.precision)?;
        // At int8 the head stays bf16: its errors land directly on the logits that greedy decoding
        // compares (on the pp_lstm fixture an int8 head changed 1 of 3 greedy continuations, a
        // bf16 one none), and it is a small share of the weights unless the vocabulary is large.
        let head_precision = if self.precision == Precision::Int8 { Precision::Bf16 } else { self.precision };
        let head_t = self.head().pack_at(self.params.view("head.weight"), head_precision)?;
        let token_gates = match self.config.input {
            InputKind::Tokens { vocab_size, embed_dim }
                if vocab_size <= 2 * embed_dim && self.config.directions() == 1 =>
            {
                let table = self.stack.project_first_layer(
                    &self.params,
                    &recurrence,
                    self.params.view("embed.weight"),
                    vocab_size,
                )?;
                // Checked once here: feeding then copies its rows without looking at them.
                check_finite("token table (the first layer's projection of every embedding)", &table)?;
                Some(table)
            }
            _ => None,
        };
        Ok(self.packed.get_or_init(|| InferenceWeights { recurrence, head_t, token_gates }))
    }

    /// A zero-initialised network (callers then run `init::initialize`).
    pub fn zeros(config: ModelConfig) -> Result<Self> {
        config.validate()?;
        let params = Params::zeros(Arc::new(config.layout()));
        Self::from_params(config, params)
    }

    /// The recurrent stack.
    pub fn stack(&self) -> &RecurrentStack {
        &self.stack
    }

    /// Whether the head runs at every step (else once per row on pooled outputs).
    pub fn per_step(&self) -> bool {
        match self.config.task {
            Task::LanguageModel | Task::Tag | Task::Speech => true,
            Task::Classify => false,
            Task::Regress => self.config.per_step,
        }
    }

    /// Feature frames joined into one recurrent step (a speech model's frame stacking; else 1).
    pub fn frame_stacking(&self) -> usize {
        self.config.speech.as_ref().map_or(1, |s| s.frame_stacking)
    }

    /// Recurrent steps (and per-step outputs) of a row of `frames` input steps: `⌈frames / k⌉`.
    pub fn output_steps(&self, frames: usize) -> usize {
        frames.div_ceil(self.frame_stacking())
    }

    /// Width of the recurrent output F = D·H.
    fn features(&self) -> usize {
        self.config.directions() * self.config.hidden_size
    }

    /// The head: `[F]` features → `[C]` outputs.
    fn head(&self) -> Dense {
        Dense { inputs: self.features(), outputs: self.config.output_size }
    }

    fn embedding(&self) -> Embedding {
        match self.config.input {
            InputKind::Tokens { vocab_size, embed_dim } => Embedding { vocab: vocab_size, dim: embed_dim },
            InputKind::Dense { input_size } => Embedding { vocab: 0, dim: input_size },
        }
    }

    fn pooling(&self) -> TimePooling {
        TimePooling { kind: self.config.pooling, hidden: self.config.hidden_size, directions: self.config.directions() }
    }

    /// Checks a batch's input against the model: kind, lengths, token range, finiteness.
    pub fn check_batch(&self, batch: &Batch) -> Result<()> {
        let (b, t) = (batch.rows, batch.steps);
        if b == 0 || t == 0 {
            return Err(Error::Range(format!("batch: expected at least one row and one step, got {b} × {t}")));
        }
        match (&batch.input, self.config.input) {
            (BatchInput::Tokens(ids), InputKind::Tokens { vocab_size, .. }) => {
                check_len("tokens", ids.len(), b * t)?;
                if let Some(i) = ids.iter().position(|&v| v < 0 || v as usize >= vocab_size) {
                    return Err(Error::Range(format!(
                        "tokens: id {} at row {}, step {} is outside the vocabulary [0, {vocab_size})",
                        ids[i],
                        i / t,
                        i % t
                    )));
                }
            }
            (BatchInput::Dense(v), InputKind::Dense { input_size }) => {
                check_len("inputs", v.len(), b * t * input_size)?;
                if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                    return Err(Error::NonFinite(format!(
                        "inputs: row {}, step {}, feature {} is {}; every value must be finite",
                        i / (t * input_size),
                        (i / input_size) % t,
                        i % input_size,
                        v[i]
                    )));
                }
            }
            (BatchInput::Tokens(_), InputKind::Dense { .. }) => {
                return Err(Error::Shape("inputs: this model takes dense vectors, got token ids".into()))
            }
            (BatchInput::Dense(_), InputKind::Tokens { .. }) => {
                return Err(Error::Shape("inputs: this model takes token ids, got dense vectors".into()))
            }
        }
        if let Some(l) = &batch.lengths {
            check_len("lengths", l.len(), b)?;
            if let Some(r) = l.iter().position(|&v| v == 0 || v > t) {
                return Err(Error::Range(format!("lengths: row {r} has length {}, expected 1..={t}", l[r])));
            }
        }
        Ok(())
    }

    /// Forward pass. Returns the head outputs (per-step `[T·B, C]` time-major, or per-row
    /// `[B, C]`) and the final recurrent state; fills `cache` for [`Network::backward`].
    pub fn forward(
        &self,
        batch: &Batch,
        state: Option<&StackState>,
        dropout: Option<&mut Rng>,
        cache: &mut ForwardCache,
    ) -> Result<(Vec<f32>, StackState)> {
        let mut outputs = Vec::new();
        let final_state = self.forward_into(batch, state, dropout, cache, &mut outputs)?;
        Ok((outputs, final_state))
    }

    /// [`forward`](Self::forward) writing the head outputs into the caller's buffer (resized, its
    /// capacity reused: a training loop allocates nothing sequence-sized per step).
    pub fn forward_into(
        &self,
        batch: &Batch,
        state: Option<&StackState>,
        dropout: Option<&mut Rng>,
        cache: &mut ForwardCache,
        outputs: &mut Vec<f32>,
    ) -> Result<StackState> {
        self.check_batch(batch)?;
        let (b, frames) = (batch.rows, batch.steps);
        // A speech model's frame stacking shortens every row: the recurrence runs t = ⌈T / k⌉
        // steps, a row of n real frames ⌈n / k⌉ of them.
        let k = self.frame_stacking();
        let t = self.output_steps(frames);
        let lengths: Option<Vec<usize>> = batch.lengths.as_ref().map(|l| l.iter().map(|&n| n.div_ceil(k)).collect());
        cache.rows = b;
        cache.steps = t;
        cache.lengths.clear();
        match &lengths {
            Some(l) => cache.lengths.extend_from_slice(l),
            None => cache.lengths.resize(b, t),
        }
        let i = self.config.rnn_input_size();
        cache.x.resize(t * b * i, 0.0);
        match &batch.input {
            BatchInput::Tokens(ids) => {
                cache.tokens.clear();
                cache.tokens.extend_from_slice(ids);
                self.embedding().forward(self.params.view("embed.weight"), ids, b, t, &mut cache.x)?;
            }
            BatchInput::Dense(v) => {
                // x[s, r] = frames s·k .. s·k + k of row r side by side ([k·F]); frames past the
                // row's real length (the tail of its last group) are zeros.
                let f = i / k;
                for r in 0..b {
                    let real = batch.lengths.as_ref().map_or(frames, |l| l[r]);
                    for s in 0..t {
                        let dst = &mut cache.x[(s * b + r) * i..(s * b + r + 1) * i];
                        let (lo, hi) = (s * k, (s * k + k).min(real.max(s * k)));
                        let n = (hi - lo) * f;
                        dst[..n].copy_from_slice(&v[(r * frames + lo) * f..(r * frames + hi) * f]);
                        dst[n..].fill(0.0);
                    }
                }
            }
        }
        let lengths = lengths.as_deref();
        let final_state = self.stack.forward_into(
            &self.params,
            SeqBatch { x: &cache.x, steps: t, batch: b, lengths },
            state,
            dropout,
            &mut cache.stack,
            &mut cache.y,
        )?;
        let f = self.features();
        let c = self.config.output_size;
        let head_w = self.params.view("head.weight");
        let head_b = self.params.view("head.bias");
        if self.per_step() {
            outputs.resize(t * b * c, 0.0);
            Dense { inputs: f, outputs: c }.forward(&cache.y, t * b, head_w, Some(head_b), outputs, false)?;
            if self.config.skip {
                // Elman's input-to-output term: logits += x·W_xoᵀ.
                Dense { inputs: i, outputs: c }.forward(
                    &cache.x,
                    t * b,
                    self.params.view("skip.weight"),
                    None,
                    outputs,
                    true,
                )?;
            }
        } else {
            cache.pooled.resize(b * f, 0.0);
            self.pooling().forward(&cache.y, t, b, &cache.lengths, &mut cache.pooled, &mut cache.argmax);
            outputs.resize(b * c, 0.0);
            Dense { inputs: f, outputs: c }.forward(&cache.pooled, b, head_w, Some(head_b), outputs, false)?;
        }
        Ok(final_state)
    }

    /// Backward through the forward pass in `cache` (whose reusable backward buffers it uses):
    /// adds every parameter gradient into `grads`.
    /// `doutputs` has the shape of the outputs; `dstate` is the gradient w.r.t. the final state.
    /// Returns the gradient w.r.t. the initial state.
    pub fn backward(
        &self,
        cache: &mut ForwardCache,
        doutputs: &[f32],
        dstate: Option<&StackState>,
        grads: &mut Params,
    ) -> Result<StackState> {
        let (b, t) = (cache.rows, cache.steps);
        let (f, c, i) = (self.features(), self.config.output_size, self.config.rnn_input_size());
        // dL/dy [T, B, F], accumulated into (the head adds, pooling adds): cleared, capacity reused.
        let mut dy = std::mem::take(&mut cache.dy);
        dy.clear();
        dy.resize(t * b * f, 0.0);
        let head_w = self.params.view("head.weight");
        if self.per_step() {
            check_len("doutputs", doutputs.len(), t * b * c)?;
            let (dw, db) = grads_head(grads);
            Dense { inputs: f, outputs: c }.backward(
                &cache.y,
                t * b,
                head_w,
                doutputs,
                DenseGrads { dw, db: Some(db), dx: Some(&mut dy) },
            )?;
        } else {
            check_len("doutputs", doutputs.len(), b * c)?;
            let mut dpooled = vec![0.0; b * f];
            let (dw, db) = grads_head(grads);
            Dense { inputs: f, outputs: c }.backward(
                &cache.pooled,
                b,
                head_w,
                doutputs,
                DenseGrads { dw, db: Some(db), dx: Some(&mut dpooled) },
            )?;
            self.pooling().backward(&dpooled, t, b, &cache.lengths, &cache.argmax, &mut dy);
        }
        let stack_result = self.stack.backward(&self.params, &mut cache.stack, &dy, dstate, grads);
        cache.dy = dy;
        let (dx, dstate0) = stack_result?;
        if let InputKind::Tokens { .. } = self.config.input {
            let mut dx = dx;
            if self.config.skip {
                // logits += x·W_xoᵀ: dW_xo += doutᵀ·x and dx += dout·W_xo.
                let skip_w = self.params.view("skip.weight");
                let dskip = grads.view_mut("skip.weight");
                Dense { inputs: i, outputs: c }.backward(
                    &cache.x,
                    t * b,
                    skip_w,
                    doutputs,
                    DenseGrads { dw: dskip, db: None, dx: Some(&mut dx) },
                )?;
            }
            self.embedding().backward(grads.view_mut("embed.weight"), &cache.tokens, b, t, &dx)?;
        }
        Ok(dstate0)
    }
}

/// The head's weight and bias gradients, borrowed together from one buffer.
fn grads_head(grads: &mut Params) -> (&mut [f32], &mut [f32]) {
    let w = grads.layout.require("head.weight").expect("every network has a head").clone();
    let bias = grads.layout.require("head.bias").expect("every network has a head").clone();
    debug_assert_eq!(w.offset + w.len, bias.offset, "head.bias follows head.weight in the layout");
    let (left, right) = grads.data.split_at_mut(bias.offset);
    (&mut left[w.offset..w.offset + w.len], &mut right[..bias.len])
}
