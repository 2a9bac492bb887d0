//! The sequence-to-sequence network: source embedding → recurrent encoder (stacked, optionally
//! bidirectional, masked by source length) → bridge → recurrent decoder over the target shifted
//! right (teacher forcing) → attention over the encoder outputs → output layer.
//!
//! - Encoder outputs (the attention's keys) `[Ts, B, D·H]`, final state `[L·D, B, H]`.
//! - Bridge: the decoder (L layers, unidirectional, hidden H) starts from the encoder's final
//!   state. A unidirectional encoder's state is taken as it is; a bidirectional one's two
//!   directions of each layer, `[h_fwd; h_rev]` `[2H]`, go through `h0 = tanh(W_b [..] + b_b)`
//!   (`bridge.weight` `[H, 2H]`, one matrix for every layer) and, for an LSTM, `c0 = W_bc [..] +
//!   b_bc` (`bridge.cell.weight`).
//! - Decoder input at step t is the target token t−1 (`bos` at t = 0); its output `[Tt+1, B, H]`
//!   queries the attention, whose attentional vector `[Tt+1, B, H]` feeds `head` → logits
//!   `[(Tt+1)·B, V_target]` (row `t·B + b`). The targets are the target tokens then `eos`;
//!   positions past a row's end are ignored by the cross-entropy (mean over real target tokens).
//!
//! Tensor names (docs/FORMAT.md): `encoder.embed.weight`, `encoder.rnn.*`, `bridge.*`,
//! `decoder.embed.weight`, `decoder.rnn.*`, `attn.*`, `head.weight`, `head.bias`.

use crate::batch::IGNORE_INDEX;
use crate::beam::{beam_search, BeamConfig, StepModel};
use crate::config::{CellKind, MAX_DIM, MAX_PARAMS};
use crate::error::{check_finite, check_len, Error, Result};
use crate::io::{load_with_layout, save_with_layout, ModelParts, SaveOptions};
use crate::kernels::packed::PackedB;
use crate::kernels::precision::Precision;
use crate::layer::attention::{Attention, AttentionCache, AttentionKind, Memory};
use crate::layer::dense::{Dense, DenseGrads};
use crate::layer::embedding::Embedding;
use crate::layer::recurrent::{InferenceWorkspace, PackedRecurrence, RecurrentStack, SeqBatch, StackCache, StackState};
use crate::loss::{cross_entropy, CrossEntropyOptions, LossSum};
use crate::model::inference::{gather_states, scatter_states};
use crate::model::scheduled_sampling::sample_inputs;
pub use crate::model::scheduled_sampling::DecoderInputs;
use crate::pairs::PairBatch;
use crate::params::{ParamLayout, Params};
use crate::rng::Rng;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The architecture of a sequence-to-sequence model (its JSON form is the file's `config`).
#[derive(Debug, Clone, PartialEq)]
pub struct Seq2SeqConfig {
    pub cell: CellKind,
    pub source_vocab: usize,
    pub target_vocab: usize,
    /// E, the width of both embeddings.
    pub embed_dim: usize,
    /// H, the hidden width of encoder and decoder.
    pub hidden_size: usize,
    /// L, the layers of encoder and decoder.
    pub num_layers: usize,
    pub bidirectional: bool,
    pub attention: AttentionKind,
    /// A, the additive score's hidden width (ignored by dot and general).
    pub attention_size: usize,
    /// Target ids that start and end an output.
    pub bos: u32,
    pub eos: u32,
}

impl Seq2SeqConfig {
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// The defaults of a new model for these vocabularies and special ids: a one-layer
    /// bidirectional GRU of 128 units, embeddings of 64, Luong `general` attention (the
    /// additive score's width, when chosen, the hidden size) — what the numbers task measured
    /// best among the sizes that train in minutes on two cores.
    pub fn defaults(source_vocab: usize, target_vocab: usize, bos: u32, eos: u32) -> Self {
        Seq2SeqConfig {
            cell: CellKind::Gru,
            source_vocab,
            target_vocab,
            embed_dim: 64,
            hidden_size: 128,
            num_layers: 1,
            bidirectional: true,
            attention: AttentionKind::General,
            attention_size: 128,
            bos,
            eos,
        }
    }

    fn attention_layer(&self) -> Attention {
        Attention {
            kind: self.attention,
            query: self.hidden_size,
            key: self.directions() * self.hidden_size,
            units: self.attention_size,
        }
    }

    /// Checks every size and combination, naming the offending field.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("source_vocab", self.source_vocab),
            ("target_vocab", self.target_vocab),
            ("embed_dim", self.embed_dim),
            ("hidden_size", self.hidden_size),
        ] {
            if v == 0 || v > MAX_DIM {
                return Err(Error::Range(format!("{name}: expected an integer in 1..={MAX_DIM}, got {v}")));
            }
        }
        if self.num_layers == 0 || self.num_layers > 64 {
            return Err(Error::Range(format!("num_layers: expected an integer in 1..=64, got {}", self.num_layers)));
        }
        for (name, id) in [("bos", self.bos), ("eos", self.eos)] {
            if id as usize >= self.target_vocab {
                return Err(Error::Range(format!(
                    "{name}: token id {id} is outside the target vocabulary [0, {})",
                    self.target_vocab
                )));
            }
        }
        if self.attention == AttentionKind::Additive && (self.attention_size == 0 || self.attention_size > MAX_DIM) {
            return Err(Error::Range(format!(
                "attention_size: expected an integer in 1..={MAX_DIM}, got {}",
                self.attention_size
            )));
        }
        self.attention_layer().validate()?;
        let total: usize = self.param_entries().iter().map(|(_, s)| s.iter().product::<usize>()).sum();
        if total > MAX_PARAMS {
            return Err(Error::Range(format!("model size: {total} parameters exceed the limit of {MAX_PARAMS}")));
        }
        Ok(())
    }

    fn encoder(&self) -> RecurrentStack {
        RecurrentStack::named(
            "encoder.rnn",
            self.cell,
            self.embed_dim,
            self.hidden_size,
            self.num_layers,
            self.directions(),
            0.0,
        )
    }

    fn decoder(&self) -> RecurrentStack {
        RecurrentStack::named("decoder.rnn", self.cell, self.embed_dim, self.hidden_size, self.num_layers, 1, 0.0)
    }

    /// The parameter names and shapes, in file order.
    pub fn param_entries(&self) -> Vec<(String, Vec<usize>)> {
        let (e, h) = (self.embed_dim, self.hidden_size);
        let mut v = vec![("encoder.embed.weight".to_string(), vec![self.source_vocab, e])];
        v.extend(self.encoder().param_entries());
        if self.bidirectional {
            v.push(("bridge.weight".into(), vec![h, 2 * h]));
            v.push(("bridge.bias".into(), vec![h]));
            if self.cell.has_cell_state() {
                v.push(("bridge.cell.weight".into(), vec![h, 2 * h]));
                v.push(("bridge.cell.bias".into(), vec![h]));
            }
        }
        v.push(("decoder.embed.weight".to_string(), vec![self.target_vocab, e]));
        v.extend(self.decoder().param_entries());
        v.extend(self.attention_layer().param_entries());
        v.push(("head.weight".into(), vec![self.target_vocab, h]));
        v.push(("head.bias".into(), vec![self.target_vocab]));
        v
    }

    pub fn layout(&self) -> ParamLayout {
        ParamLayout::new(self.param_entries())
    }

    /// The JSON form (`task: "seq2seq"`).
    pub fn to_json(&self) -> Value {
        json!({
            "task": "seq2seq",
            "cell": self.cell.cell_name(),
            "nonlinearity": self.cell.nonlinearity(),
            "source_vocab_size": self.source_vocab,
            "target_vocab_size": self.target_vocab,
            "embed_dim": self.embed_dim,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "attention": self.attention.name(),
            "attention_size": self.attention_size,
            "bos_id": self.bos,
            "eos_id": self.eos,
        })
    }

    /// Reads the JSON form, naming a missing or mistyped field.
    pub fn from_json(v: &Value) -> Result<Self> {
        let obj = v.as_object().ok_or_else(|| Error::Format("config: expected a JSON object".into()))?;
        if obj.get("task").and_then(Value::as_str) != Some("seq2seq") {
            return Err(Error::Format(format!(
                "config.task: expected \"seq2seq\", got {}",
                obj.get("task").unwrap_or(&Value::Null)
            )));
        }
        let uint = |k: &str| -> Result<usize> {
            obj.get(k).and_then(Value::as_u64).map(|n| n as usize).ok_or_else(|| {
                Error::Format(format!(
                    "config.{k}: expected a non-negative integer, got {}",
                    obj.get(k).unwrap_or(&Value::Null)
                ))
            })
        };
        let string = |k: &str| -> Result<&str> {
            obj.get(k).and_then(Value::as_str).ok_or_else(|| {
                Error::Format(format!("config.{k}: expected a string, got {}", obj.get(k).unwrap_or(&Value::Null)))
            })
        };
        let id = |k: &str| -> Result<u32> {
            u32::try_from(uint(k)?).map_err(|_| Error::Format(format!("config.{k}: expected a token id")))
        };
        let cfg = Seq2SeqConfig {
            cell: CellKind::parse(string("cell")?, obj.get("nonlinearity").and_then(Value::as_str))?,
            source_vocab: uint("source_vocab_size")?,
            target_vocab: uint("target_vocab_size")?,
            embed_dim: uint("embed_dim")?,
            hidden_size: uint("hidden_size")?,
            num_layers: uint("num_layers")?,
            bidirectional: obj.get("bidirectional").and_then(Value::as_bool).unwrap_or(false),
            attention: AttentionKind::parse(string("attention")?)?,
            attention_size: uint("attention_size")?,
            bos: id("bos_id")?,
            eos: id("eos_id")?,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// A sequence-to-sequence network with its parameters.
#[derive(Debug, Clone)]
pub struct Seq2Seq {
    pub config: Seq2SeqConfig,
    params: Params,
    encoder: RecurrentStack,
    decoder: RecurrentStack,
    attention: Attention,
}

/// What a training forward keeps for the backward. Reusable from one batch to the next.
#[derive(Debug, Default)]
pub struct Seq2SeqCache {
    /// `[Ts, B, E]`, `[Tt+1, B, E]` the embedded source and decoder input.
    source_x: Vec<f32>,
    decoder_ids: Vec<i32>,
    decoder_x: Vec<f32>,
    encoder: StackCache,
    decoder: StackCache,
    memory: Memory,
    /// `[L·B, 2H]` the bridge's input (bidirectional), h then (LSTM) c.
    bridge_h: Vec<f32>,
    bridge_c: Vec<f32>,
    /// `[L, B, H]` the decoder's initial state (the bridge's output).
    initial: StackState,
    attention: AttentionCache,
    /// `[(Tt+1)·B]` time-major targets (IGNORE_INDEX past each row's end).
    targets: Vec<i32>,
    /// `[(Tt+1)·B, V]` logits, and the gradient of the mean loss w.r.t. them.
    logits: Vec<f32>,
    dlogits: Vec<f32>,
}

impl Seq2SeqCache {
    /// The logits of the last forward, time-major `[(Tt+1)·B, V]`.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// The ids the decoder read in the last forward, batch-first `[B, Tt+1]` (bos first).
    pub fn decoder_inputs(&self) -> &[i32] {
        &self.decoder_ids
    }
}

impl Seq2Seq {
    /// Refuses a reduced precision: sequence-to-sequence models decode with f32 weights (bf16 and
    /// int8 are for language models' generation).
    pub fn check_precision(precision: Precision) -> Result<()> {
        match precision {
            Precision::F32 => Ok(()),
            other => Err(Error::Config(format!(
                "precision \"{}\": sequence-to-sequence models decode in f32; reduced precision is for language models",
                other.name()
            ))),
        }
    }

    pub fn from_params(config: Seq2SeqConfig, params: Params) -> Result<Self> {
        config.validate()?;
        if *params.layout != config.layout() {
            return Err(Error::Config("params: the parameter layout does not match the configuration".into()));
        }
        Ok(Seq2Seq {
            encoder: config.encoder(),
            decoder: config.decoder(),
            attention: config.attention_layer(),
            config,
            params,
        })
    }

    /// A network with PyTorch's default initialisation: embeddings N(0, 1), recurrent tensors
    /// U(±1/√H), every other weight and bias U(±1/√fan_in) (`nn.Linear`); `attn.v` U(±1/√A).
    pub fn init(config: Seq2SeqConfig, rng: &mut Rng) -> Result<Self> {
        config.validate()?;
        let layout = Arc::new(config.layout());
        let mut p = Params::zeros(layout.clone());
        let h = config.hidden_size as f32;
        let mut fan_in = 0usize;
        for spec in layout.specs() {
            let w = p.view_mut(&spec.name);
            if spec.name.ends_with("embed.weight") {
                w.iter_mut().for_each(|v| *v = rng.normal());
                continue;
            }
            // A bias takes the bound of the weight before it (nn.Linear).
            if spec.shape.len() == 2 {
                fan_in = spec.shape[1];
            } else if spec.name == "attn.v" {
                fan_in = spec.shape[0];
            }
            let bound = if spec.name.contains(".rnn.") { 1.0 / h.sqrt() } else { 1.0 / (fan_in as f32).sqrt() };
            w.iter_mut().for_each(|v| *v = rng.uniform_range(-bound, bound));
        }
        Self::from_params(config, p)
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Writes the model file (safetensors, atomically): the tensors under the names of this
    /// file's header, `config` = [`Seq2SeqConfig::to_json`], and `opts`' metadata (the bindings
    /// put the two tokenizers in `source_tokenizer` and `target_tokenizer`; docs/FORMAT.md).
    pub fn save(&self, path: &Path, opts: &SaveOptions) -> Result<()> {
        save_with_layout(path, &self.config.to_json(), &self.config.layout(), &self.params, opts)
    }

    /// Reads a model file written by [`save`](Self::save) (every tensor's dtype, shape and
    /// finiteness checked); the other parts of the file (metadata, extra tensors) beside it.
    pub fn load(path: &Path) -> Result<(Self, ModelParts)> {
        let (config, parts) = load_with_layout(path, |v| Ok(Seq2SeqConfig::from_json(v)?.layout()))?;
        let config = Seq2SeqConfig::from_json(&config)?;
        let net = Self::from_params(config, parts.params.clone())?;
        Ok((net, parts))
    }

    pub fn params_mut(&mut self) -> &mut Params {
        &mut self.params
    }

    fn source_embedding(&self) -> Embedding {
        Embedding { vocab: self.config.source_vocab, dim: self.config.embed_dim }
    }

    fn target_embedding(&self) -> Embedding {
        Embedding { vocab: self.config.target_vocab, dim: self.config.embed_dim }
    }

    fn head(&self) -> Dense {
        Dense { inputs: self.config.hidden_size, outputs: self.config.target_vocab }
    }

    /// The decoder's initial state from the encoder's final one; keeps the bridge's input in
    /// `bh`/`bc` for the backward.
    fn bridge(&self, enc: &StackState, b: usize, bh: &mut Vec<f32>, bc: &mut Vec<f32>) -> Result<StackState> {
        if !self.config.bidirectional {
            return Ok(enc.clone());
        }
        let (l, h) = (self.config.num_layers, self.config.hidden_size);
        let run = |src: &[f32], buf: &mut Vec<f32>, w: &str, bias: &str, tanh: bool| -> Result<Vec<f32>> {
            // [L·D, B, H] → rows (layer, b) of [h_fwd; h_rev].
            buf.resize(l * b * 2 * h, 0.0);
            for layer in 0..l {
                for r in 0..b {
                    for dir in 0..2 {
                        let from = ((layer * 2 + dir) * b + r) * h;
                        let to = ((layer * b + r) * 2 + dir) * h;
                        buf[to..to + h].copy_from_slice(&src[from..from + h]);
                    }
                }
            }
            let mut out = vec![0.0; l * b * h];
            Dense { inputs: 2 * h, outputs: h }.forward(
                buf,
                l * b,
                self.params.view(w),
                Some(self.params.view(bias)),
                &mut out,
                false,
            )?;
            if tanh {
                out.iter_mut().for_each(|v| *v = v.tanh());
            }
            Ok(out)
        };
        let hs = run(&enc.h, bh, "bridge.weight", "bridge.bias", true)?;
        let cs = match &enc.c {
            Some(c) => Some(run(c, bc, "bridge.cell.weight", "bridge.cell.bias", false)?),
            None => None,
        };
        Ok(StackState { h: hs, c: cs })
    }

    /// The bridge's backward: the gradient w.r.t. the encoder's final state from that w.r.t. the
    /// decoder's initial state.
    fn bridge_backward(&self, cache: &Seq2SeqCache, d: &StackState, b: usize, g: &mut Params) -> Result<StackState> {
        if !self.config.bidirectional {
            return Ok(d.clone());
        }
        let (l, h) = (self.config.num_layers, self.config.hidden_size);
        let run = |dout: &[f32],
                   out: Option<&[f32]>,
                   input: &[f32],
                   w: &str,
                   bias: &str,
                   g: &mut Params|
         -> Result<Vec<f32>> {
            // Through tanh when `out` (the activation) is given.
            let dpre: Vec<f32> = match out {
                Some(y) => dout.iter().zip(y).map(|(d, y)| d * (1.0 - y * y)).collect(),
                None => dout.to_vec(),
            };
            let mut dw = vec![0.0; h * 2 * h];
            let mut db = vec![0.0; h];
            let mut din = vec![0.0; l * b * 2 * h];
            Dense { inputs: 2 * h, outputs: h }.backward(
                input,
                l * b,
                self.params.view(w),
                &dpre,
                DenseGrads { dw: &mut dw, db: Some(&mut db), dx: Some(&mut din) },
            )?;
            g.view_mut(w).iter_mut().zip(&dw).for_each(|(g, d)| *g += d);
            g.view_mut(bias).iter_mut().zip(&db).for_each(|(g, d)| *g += d);
            // Rows (layer, b) of [fwd; rev] → [L·D, B, H].
            let mut dst = vec![0.0; l * 2 * b * h];
            for layer in 0..l {
                for r in 0..b {
                    for dir in 0..2 {
                        let to = ((layer * 2 + dir) * b + r) * h;
                        let from = ((layer * b + r) * 2 + dir) * h;
                        dst[to..to + h].copy_from_slice(&din[from..from + h]);
                    }
                }
            }
            Ok(dst)
        };
        let dh = run(&d.h, Some(&cache.initial.h), &cache.bridge_h, "bridge.weight", "bridge.bias", g)?;
        let dc = match &d.c {
            Some(dc) => Some(run(dc, None, &cache.bridge_c, "bridge.cell.weight", "bridge.cell.bias", g)?),
            None => None,
        };
        Ok(StackState { h: dh, c: dc })
    }

    /// Teacher-forced forward of `batch`: fills `cache` (logits, attention weights, the
    /// time-major targets, what the backward reads).
    pub(crate) fn forward(&self, batch: &PairBatch, cache: &mut Seq2SeqCache) -> Result<()> {
        self.forward_with(batch, DecoderInputs::Target, cache)
    }

    /// The training forward of `batch` with the decoder reading `inputs` (the target, scheduled
    /// samples, or given ids): fills `cache` as [`forward`](Self::forward) does; the ids read are
    /// [`Seq2SeqCache::decoder_inputs`].
    pub fn forward_with(&self, batch: &PairBatch, inputs: DecoderInputs, cache: &mut Seq2SeqCache) -> Result<()> {
        batch.check(self.config.source_vocab, self.config.target_vocab)?;
        let (b, ts, tt) = (batch.rows, batch.source_steps, batch.target_steps + 1);
        let e = self.config.embed_dim;
        cache.source_x.resize(ts * b * e, 0.0);
        self.source_embedding().forward(
            self.params.view("encoder.embed.weight"),
            &batch.source,
            b,
            ts,
            &mut cache.source_x,
        )?;
        let mut keys = std::mem::take(&mut cache.memory.keys);
        let enc_state = self.encoder.forward_into(
            &self.params,
            SeqBatch { x: &cache.source_x, steps: ts, batch: b, lengths: Some(&batch.source_lengths) },
            None,
            None,
            &mut cache.encoder,
            &mut keys,
        )?;
        cache.memory = self.attention.memory(&self.params, keys, ts, b, &batch.source_lengths)?;
        cache.initial = self.bridge(&enc_state, b, &mut cache.bridge_h, &mut cache.bridge_c)?;
        // Decoder input [B, Tt+1] (bos, then the target; padding repeats eos, never read), and
        // the time-major targets (the target, then eos).
        cache.decoder_ids.clear();
        cache.targets.clear();
        cache.targets.resize(tt * b, IGNORE_INDEX);
        for r in 0..b {
            let len = batch.target_lengths[r];
            let row = &batch.target[r * batch.target_steps..(r + 1) * batch.target_steps];
            cache.decoder_ids.push(self.config.bos as i32);
            for s in 1..tt {
                cache.decoder_ids.push(if s <= len { row[s - 1] } else { self.config.eos as i32 });
            }
            for (s, &y) in row[..len].iter().enumerate() {
                cache.targets[s * b + r] = y;
            }
            cache.targets[len * b + r] = self.config.eos as i32;
        }
        match inputs {
            DecoderInputs::Target => {}
            DecoderInputs::Given(ids) => {
                check_len("decoder inputs", ids.len(), b * tt)?;
                let v = self.config.target_vocab;
                if let Some(i) = ids.iter().position(|&id| id < 0 || id as usize >= v) {
                    return Err(Error::Range(format!(
                        "decoder inputs: id {} is outside the target vocabulary [0, {v})",
                        ids[i]
                    )));
                }
                cache.decoder_ids.copy_from_slice(ids);
            }
            DecoderInputs::Sampled { probability, rng } => {
                let (memory, initial) = (&cache.memory, &cache.initial);
                let lengths = &batch.target_lengths;
                sample_inputs(self, memory, initial, lengths, &mut cache.decoder_ids, probability, rng)?;
            }
        }
        let dec_lengths: Vec<usize> = batch.target_lengths.iter().map(|l| l + 1).collect();
        cache.decoder_x.resize(tt * b * e, 0.0);
        self.target_embedding().forward(
            self.params.view("decoder.embed.weight"),
            &cache.decoder_ids,
            b,
            tt,
            &mut cache.decoder_x,
        )?;
        let mut queries = Vec::new();
        self.decoder.forward_into(
            &self.params,
            SeqBatch { x: &cache.decoder_x, steps: tt, batch: b, lengths: Some(&dec_lengths) },
            Some(&cache.initial),
            None,
            &mut cache.decoder,
            &mut queries,
        )?;
        self.attention.forward(&self.params, &cache.memory, &queries, tt, None, &mut cache.attention)?;
        let v = self.config.target_vocab;
        cache.logits.resize(tt * b * v, 0.0);
        self.head().forward(
            cache.attention.output(),
            tt * b,
            self.params.view("head.weight"),
            Some(self.params.view("head.bias")),
            &mut cache.logits,
            false,
        )?;
        Ok(())
    }

    /// The teacher-forced logits of `batch`, time-major `[(Tt+1)·B, V]` (row `t·B + b`).
    pub fn logits(&self, batch: &PairBatch) -> Result<Vec<f32>> {
        let mut cache = Seq2SeqCache::default();
        self.forward(batch, &mut cache)?;
        Ok(cache.logits)
    }

    /// The teacher-forced logits of `batch` (time-major, as [`logits`](Self::logits)) and their
    /// cross-entropy (sum form), without gradients.
    pub fn logits_and_loss(&self, batch: &PairBatch) -> Result<(Vec<f32>, LossSum)> {
        let mut cache = Seq2SeqCache::default();
        self.forward(batch, &mut cache)?;
        let v = self.config.target_vocab;
        let loss = cross_entropy(&cache.logits, v, &cache.targets, &CrossEntropyOptions::default(), None)?;
        Ok((cache.logits, loss))
    }

    /// The mean cross-entropy of `batch` (sum form) without gradients.
    pub fn loss(&self, batch: &PairBatch) -> Result<LossSum> {
        let mut cache = Seq2SeqCache::default();
        self.forward(batch, &mut cache)?;
        cross_entropy(&cache.logits, self.config.target_vocab, &cache.targets, &CrossEntropyOptions::default(), None)
    }

    /// One training pass: the loss of `batch` and the gradient of its mean added into `grads`.
    pub fn forward_backward(&self, batch: &PairBatch, cache: &mut Seq2SeqCache, grads: &mut Params) -> Result<LossSum> {
        self.forward_backward_with(batch, DecoderInputs::Target, cache, grads)
    }

    /// [`forward_backward`](Self::forward_backward) with the decoder reading `inputs`; the ids
    /// read are constants of the gradient (no gradient flows through a sampled prediction).
    pub fn forward_backward_with(
        &self,
        batch: &PairBatch,
        inputs: DecoderInputs,
        cache: &mut Seq2SeqCache,
        grads: &mut Params,
    ) -> Result<LossSum> {
        self.forward_with(batch, inputs, cache)?;
        let sum = self.output_gradient(cache)?;
        self.backward(batch, cache, grads)?;
        Ok(sum)
    }

    /// The mean cross-entropy of `batch` (sum form) with the decoder reading `inputs`, without
    /// gradients.
    pub fn loss_with(&self, batch: &PairBatch, inputs: DecoderInputs) -> Result<LossSum> {
        let mut cache = Seq2SeqCache::default();
        self.forward_with(batch, inputs, &mut cache)?;
        cross_entropy(&cache.logits, self.config.target_vocab, &cache.targets, &CrossEntropyOptions::default(), None)
    }

    /// The masked cross-entropy of the last forward's logits (sum form), its gradient w.r.t. the
    /// logits left in the cache for [`backward`](Self::backward).
    pub(crate) fn output_gradient(&self, cache: &mut Seq2SeqCache) -> Result<LossSum> {
        let v = self.config.target_vocab;
        cache.dlogits.clear();
        cache.dlogits.resize(cache.logits.len(), 0.0);
        cross_entropy(&cache.logits, v, &cache.targets, &CrossEntropyOptions::default(), Some(&mut cache.dlogits))
    }

    /// Backward of the last forward of `batch` from the logits' gradient in the cache: every
    /// parameter's gradient added into `grads`.
    pub(crate) fn backward(&self, batch: &PairBatch, cache: &mut Seq2SeqCache, grads: &mut Params) -> Result<()> {
        let (b, ts, tt) = (batch.rows, batch.source_steps, batch.target_steps + 1);
        let h = self.config.hidden_size;
        let mut dout = vec![0.0; tt * b * h];
        {
            let w = grads.layout.require("head.weight")?.clone();
            let bias = grads.layout.require("head.bias")?.clone();
            let (left, right) = grads.data.split_at_mut(bias.offset);
            self.head().backward(
                cache.attention.output(),
                tt * b,
                self.params.view("head.weight"),
                &cache.dlogits,
                DenseGrads {
                    dw: &mut left[w.offset..w.offset + w.len],
                    db: Some(&mut right[..bias.len]),
                    dx: Some(&mut dout),
                },
            )?;
        }
        let mut dkeys = vec![0.0; ts * b * self.attention.key];
        let dq = self.attention.backward(&self.params, &cache.memory, &cache.attention, &dout, grads, &mut dkeys)?;
        let (dx_dec, dinitial) = self.decoder.backward(&self.params, &mut cache.decoder, &dq, None, grads)?;
        self.target_embedding().backward(grads.view_mut("decoder.embed.weight"), &cache.decoder_ids, b, tt, &dx_dec)?;
        let denc = self.bridge_backward(cache, &dinitial, b, grads)?;
        let (dx_enc, _) = self.encoder.backward(&self.params, &mut cache.encoder, &dkeys, Some(&denc), grads)?;
        self.source_embedding().backward(grads.view_mut("encoder.embed.weight"), &batch.source, b, ts, &dx_enc)?;
        Ok(())
    }

    /// The attention weights of a teacher-forced pass of `batch`: per row, `[Tt_r + 1, Ts_r]`
    /// (one row per output token, the final eos included; one column per source token).
    pub fn attention_weights(&self, batch: &PairBatch) -> Result<Vec<Vec<f32>>> {
        let mut cache = Seq2SeqCache::default();
        self.forward(batch, &mut cache)?;
        let (b, ts) = (batch.rows, batch.source_steps);
        Ok((0..b)
            .map(|r| {
                let (lt, ls) = (batch.target_lengths[r] + 1, batch.source_lengths[r]);
                (0..lt)
                    .flat_map(|t| cache.attention.weights[(t * b + r) * ts..(t * b + r) * ts + ls].to_vec())
                    .collect()
            })
            .collect())
    }

    /// Encodes the sources of `batch` (its targets are not read): the attention memory and the
    /// decoder's initial state.
    pub(crate) fn encode(
        &self,
        source: &[i32],
        rows: usize,
        steps: usize,
        lengths: &[usize],
    ) -> Result<(Memory, StackState)> {
        let e = self.config.embed_dim;
        let mut x = vec![0.0; steps * rows * e];
        self.source_embedding().forward(self.params.view("encoder.embed.weight"), source, rows, steps, &mut x)?;
        let mut state = StackState::zeros(&self.encoder, rows);
        let mut ws = InferenceWorkspace::default();
        let keys = self
            .encoder
            .forward_inference(
                &self.params,
                None,
                SeqBatch { x: &x, steps, batch: rows, lengths: Some(lengths) },
                &mut state,
                &mut ws,
            )?
            .to_vec();
        let memory = self.attention.memory(&self.params, keys, steps, rows, lengths)?;
        let initial = self.bridge(&state, rows, &mut Vec::new(), &mut Vec::new())?;
        Ok((memory, initial))
    }

    /// One decoder step for `tokens` `[n]` (row r attends memory row `rows[r]`): advances `state`
    /// `[L, n, H]` and writes the logits `[n, V]`.
    pub(crate) fn decode_step(
        &self,
        memory: &Memory,
        rows: &[usize],
        tokens: &[u32],
        state: &mut StackState,
        scratch: &mut DecodeScratch,
        logits: &mut [f32],
    ) -> Result<()> {
        let n = tokens.len();
        let e = self.config.embed_dim;
        scratch.ids.clear();
        scratch.ids.extend(tokens.iter().map(|&t| t as i32));
        scratch.x.resize(n * e, 0.0);
        self.target_embedding().forward(
            self.params.view("decoder.embed.weight"),
            &scratch.ids,
            n,
            1,
            &mut scratch.x,
        )?;
        let q = self.decoder.forward_inference(
            &self.params,
            Some(&scratch.recurrence),
            SeqBatch { x: &scratch.x, steps: 1, batch: n, lengths: None },
            state,
            &mut scratch.ws,
        )?;
        self.attention.forward(&self.params, memory, q, 1, Some(rows), &mut scratch.attention)?;
        self.head().forward_packed(
            scratch.attention.output(),
            n,
            &scratch.head,
            Some(self.params.view("head.bias")),
            logits,
            false,
        )?;
        check_finite("logits", logits)
    }

    /// Decodes every source (`[B, Ts]` batch-first ids, padded; `lengths` real lengths) greedily
    /// and batched: each row stops at `eos` (not returned) or after `max_tokens(length)` tokens.
    /// A finished row leaves the batch: each step runs only the rows still decoding.
    pub fn greedy(
        &self,
        source: &[i32],
        rows: usize,
        steps: usize,
        lengths: &[usize],
        max_tokens: &dyn Fn(usize) -> usize,
    ) -> Result<Vec<Vec<u32>>> {
        let (memory, mut state) = self.encode(source, rows, steps, lengths)?;
        let (v, h) = (self.config.target_vocab, self.config.hidden_size);
        let limits: Vec<usize> = lengths.iter().map(|&l| max_tokens(l)).collect();
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); rows];
        // The rows still decoding (their memory rows), their last tokens and, in `state`, their
        // decoder states `[L, active, H]` in this order.
        let mut active: Vec<usize> = (0..rows).collect();
        let mut tokens = vec![self.config.bos; rows];
        let mut keep = vec![true; rows];
        let mut logits = vec![0.0; rows * v];
        let mut scratch = DecodeScratch::new(self)?;
        if limits.contains(&0) {
            keep.iter_mut().zip(&limits).for_each(|(k, &l)| *k = l > 0);
            retain_rows(&mut active, &mut tokens, &mut state, h, &keep);
        }
        while !active.is_empty() {
            let n = active.len();
            self.decode_step(&memory, &active, &tokens, &mut state, &mut scratch, &mut logits[..n * v])?;
            keep.truncate(n);
            for (i, &r) in active.iter().enumerate() {
                let row = &logits[i * v..(i + 1) * v];
                // First maximum: ties go to the lower id.
                let best = row.iter().enumerate().fold(0, |best, (j, &x)| if x > row[best] { j } else { best }) as u32;
                tokens[i] = best;
                keep[i] = best != self.config.eos && {
                    out[r].push(best);
                    out[r].len() < limits[r]
                };
            }
            if keep.iter().any(|&k| !k) {
                retain_rows(&mut active, &mut tokens, &mut state, h, &keep);
            }
        }
        Ok(out)
    }

    /// Beam search for each source row (`lengths.len()` rows of `steps` ids; one search per row,
    /// its live hypotheses batched); returns the best hypothesis of each without its `eos`.
    /// `cfg.max_tokens` is replaced per row by `max_tokens(length) + 1` (room for the eos) and
    /// `cfg.stop_tokens` by `[eos]`. `cancel` is checked before every step of every search.
    pub fn beam(
        &self,
        source: &[i32],
        steps: usize,
        lengths: &[usize],
        max_tokens: &dyn Fn(usize) -> usize,
        cfg: &BeamConfig,
        cancel: &AtomicBool,
    ) -> Result<Vec<Vec<u32>>> {
        cfg.validate()?;
        let rows = lengths.len();
        let (memory, initial) = self.encode(source, rows, steps, lengths)?;
        let h = self.config.hidden_size;
        let v = self.config.target_vocab;
        let mut out = Vec::with_capacity(rows);
        let mut scratch = DecodeScratch::new(self)?;
        for (r, &length) in lengths.iter().enumerate() {
            let limit = max_tokens(length);
            if limit == 0 {
                out.push(Vec::new());
                continue;
            }
            let mut state = state_row(&initial, h, r, rows);
            let mut model = BeamDecoder {
                net: self,
                memory: &memory,
                row: r,
                scratch: &mut scratch,
                batched: StackState::default(),
            };
            let mut first = vec![0.0; v];
            model.step(std::slice::from_mut(&mut state), &[self.config.bos], &mut first)?;
            let row_cfg = BeamConfig { max_tokens: limit + 1, stop_tokens: vec![self.config.eos], ..cfg.clone() };
            let best = beam_search(&mut model, state, &first, &row_cfg, cancel)?;
            let mut tokens = best.into_iter().next().map(|(t, _, _)| t).unwrap_or_default();
            if tokens.last() == Some(&self.config.eos) {
                tokens.pop();
            }
            tokens.truncate(limit);
            out.push(tokens);
        }
        Ok(out)
    }
}

/// Keeps the rows `i` with `keep[i]` of the decoding batch: of `active`, `tokens` and the state
/// `[L, n, H]` (n = `active.len()`), in order.
fn retain_rows(active: &mut Vec<usize>, tokens: &mut Vec<u32>, state: &mut StackState, h: usize, keep: &[bool]) {
    let n = active.len();
    let mut i = 0;
    active.retain(|_| (keep[i], i += 1).0);
    let mut i = 0;
    tokens.retain(|_| (keep[i], i += 1).0);
    let compact = |v: &mut Vec<f32>| {
        let mut to = 0;
        for block in 0..v.len() / (n * h) {
            for (r, _) in keep.iter().enumerate().filter(|(_, &k)| k) {
                let from = (block * n + r) * h;
                v.copy_within(from..from + h, to);
                to += h;
            }
        }
        v.truncate(to);
    };
    compact(&mut state.h);
    if let Some(c) = &mut state.c {
        compact(c);
    }
}

/// Row `r` of a batched state `[L, B, H]` as a state of one row `[L, 1, H]`.
fn state_row(s: &StackState, h: usize, r: usize, b: usize) -> StackState {
    let take = |v: &[f32]| -> Vec<f32> {
        v.chunks_exact(b * h).flat_map(|block| block[r * h..(r + 1) * h].to_vec()).collect()
    };
    StackState { h: take(&s.h), c: s.c.as_deref().map(take) }
}

/// What every decoder step of one decode reuses: the decoder's, the head's and the attention's
/// combine weights packed once (a step multiplies a few rows by them, so packing them at every
/// step would cost about as much as the step), and the step's buffers.
#[derive(Debug)]
pub(crate) struct DecodeScratch {
    recurrence: PackedRecurrence,
    /// `head.weight`ᵀ packed `[H, V]`.
    head: PackedB,
    ids: Vec<i32>,
    x: Vec<f32>,
    ws: InferenceWorkspace,
    attention: AttentionCache,
}

impl DecodeScratch {
    pub(crate) fn new(net: &Seq2Seq) -> Result<Self> {
        let mut attention = AttentionCache::default();
        attention.pack_combine(&net.attention, &net.params)?;
        Ok(DecodeScratch {
            recurrence: net.decoder.pack_recurrence(&net.params, Precision::F32)?,
            head: net.head().pack(net.params.view("head.weight"))?,
            ids: Vec::new(),
            x: Vec::new(),
            ws: InferenceWorkspace::default(),
            attention,
        })
    }
}

/// Beam search's view of the decoder for one source row: every hypothesis carries its own
/// decoder state; one batched step advances all live ones against the same memory row.
struct BeamDecoder<'a> {
    net: &'a Seq2Seq,
    memory: &'a Memory,
    row: usize,
    scratch: &'a mut DecodeScratch,
    batched: StackState,
}

impl StepModel for BeamDecoder<'_> {
    type State = StackState;

    fn step(&mut self, states: &mut [StackState], tokens: &[u32], logits_out: &mut [f32]) -> Result<()> {
        let h = self.net.config.hidden_size;
        gather_states(states.iter(), h, &mut self.batched);
        let rows = vec![self.row; states.len()];
        self.net.decode_step(self.memory, &rows, tokens, &mut self.batched, self.scratch, logits_out)?;
        scatter_states(&self.batched, h, states.iter_mut());
        Ok(())
    }

    fn vocab_size(&self) -> usize {
        self.net.config.target_vocab
    }
}
