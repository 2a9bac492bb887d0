//! Inference for language models: feeding tokens with carried state (prompts, generation steps)
//! without caching anything for a backward pass, and batching the states of independent
//! sequences so that one batched step serves all of them (beam search, continuous batching).
//!
//! A single sequence's state is a [`StackState`] with B = 1: h `[L·D, 1, H]` (and c).

use crate::beam::StepModel;
use crate::config::{InputKind, Task};
use crate::error::{check_len, Error, Result};
use crate::layer::dense::Dense;
use crate::layer::embedding::Embedding;
use crate::layer::recurrent::{InferenceWorkspace, SeqBatch, StackState, TokenBatch};
use crate::model::network::Network;

/// Reusable buffers of [`Network::feed`].
#[derive(Debug, Default)]
pub struct InferenceScratch {
    stack: InferenceWorkspace,
    /// `[T, B, E]` embedded tokens.
    x: Vec<f32>,
    /// `[B]` ids of one step (beam search).
    ids: Vec<i32>,
    /// `[T·B]` the fed ids, time-major (rows of the per-token table).
    table_rows: Vec<u32>,
}

impl Network {
    /// Reads `tokens` (`[B, T]` batch-first, every row `T` real steps) starting from `state`,
    /// leaves the final state in `state` and writes the next-token logits after the last step to
    /// `logits` `[B, V]`. Language models only.
    pub fn feed(
        &self,
        tokens: &[i32],
        rows: usize,
        steps: usize,
        state: &mut StackState,
        scratch: &mut InferenceScratch,
        logits: &mut [f32],
    ) -> Result<()> {
        let (vocab_size, embed_dim) = self.embed_for_inference(tokens, rows, steps, scratch)?;
        check_len("logits", logits.len(), rows * vocab_size)?;
        let packed = self.inference_weights()?;
        let y = match &packed.token_gates {
            Some(table) => {
                // The embedding above validated every id (0 ≤ id < V); the first layer reads its
                // rows of the table time-major.
                scratch.table_rows.clear();
                scratch
                    .table_rows
                    .extend((0..steps).flat_map(|s| (0..rows).map(move |r| tokens[r * steps + s] as u32)));
                self.stack().forward_inference_tokens(
                    self.params(),
                    &packed.recurrence,
                    TokenBatch { table, ids: &scratch.table_rows, steps, batch: rows },
                    state,
                    &mut scratch.stack,
                )?
            }
            None => self.stack().forward_inference(
                self.params(),
                Some(&packed.recurrence),
                SeqBatch { x: &scratch.x, steps, batch: rows, lengths: None },
                state,
                &mut scratch.stack,
            )?,
        };
        let f = self.stack().output_size();
        // Only the last step's outputs are needed: [B, F] rows at t = T − 1.
        let last = &y[(steps - 1) * rows * f..steps * rows * f];
        Dense { inputs: f, outputs: vocab_size }.forward_packed(
            last,
            rows,
            &packed.head_t,
            Some(self.params().view("head.bias")),
            logits,
            false,
        )?;
        if self.config.skip {
            let x_last = &scratch.x[(steps - 1) * rows * embed_dim..];
            Dense { inputs: embed_dim, outputs: vocab_size }.forward(
                x_last,
                rows,
                self.params().view("skip.weight"),
                None,
                logits,
                true,
            )?;
        }
        Ok(())
    }

    /// Every step's logits `[T·B, V]` (row `t·B + b`, as [`Network::forward`] lays them out) for
    /// `tokens` `[B, T]` batch-first, row b real for `lengths[b]` steps (None: all T; padded
    /// steps keep the state and give the head's bias), from `state`, left at the final state: the
    /// inference path at the network's [precision](Network::precision), for evaluating a model
    /// as it generates. Language models only.
    pub fn feed_every_step(
        &self,
        tokens: &[i32],
        rows: usize,
        steps: usize,
        lengths: Option<&[usize]>,
        state: &mut StackState,
        scratch: &mut InferenceScratch,
    ) -> Result<Vec<f32>> {
        let (vocab_size, embed_dim) = self.embed_for_inference(tokens, rows, steps, scratch)?;
        let packed = self.inference_weights()?;
        let y = self.stack().forward_inference(
            self.params(),
            Some(&packed.recurrence),
            SeqBatch { x: &scratch.x, steps, batch: rows, lengths },
            state,
            &mut scratch.stack,
        )?;
        let f = self.stack().output_size();
        let mut logits = vec![0.0; steps * rows * vocab_size];
        Dense { inputs: f, outputs: vocab_size }.forward_packed(
            y,
            steps * rows,
            &packed.head_t,
            Some(self.params().view("head.bias")),
            &mut logits,
            false,
        )?;
        if self.config.skip {
            Dense { inputs: embed_dim, outputs: vocab_size }.forward(
                &scratch.x,
                steps * rows,
                self.params().view("skip.weight"),
                None,
                &mut logits,
                true,
            )?;
        }
        Ok(logits)
    }

    /// Checks that this is a language model and `tokens` `[B, T]` a batch of at least one step,
    /// embeds them into `scratch.x` `[T, B, E]`, and returns (V, E).
    fn embed_for_inference(
        &self,
        tokens: &[i32],
        rows: usize,
        steps: usize,
        scratch: &mut InferenceScratch,
    ) -> Result<(usize, usize)> {
        let InputKind::Tokens { vocab_size, embed_dim } = self.config.input else {
            return Err(Error::Config("feed: only token models generate".into()));
        };
        if self.config.task != Task::LanguageModel {
            return Err(Error::Config(format!(
                "feed: only language models generate, this model's task is \"{}\"",
                self.config.task.name()
            )));
        }
        if rows == 0 || steps == 0 {
            return Err(Error::Range(format!("feed: expected at least one row and one step, got {rows} × {steps}")));
        }
        scratch.x.resize(steps * rows * embed_dim, 0.0);
        Embedding { vocab: vocab_size, dim: embed_dim }.forward(
            self.params().view("embed.weight"),
            tokens,
            rows,
            steps,
            &mut scratch.x,
        )?;
        Ok((vocab_size, embed_dim))
    }

    /// The zero state of one sequence.
    pub fn zero_state(&self, rows: usize) -> StackState {
        StackState::zeros(self.stack(), rows)
    }
}

/// Stacks single-sequence states (B = 1 each, `[L·D, 1, H]`) into one batched state
/// `[L·D, B, H]` (row b = `states[b]`).
pub fn gather_states<'a>(states: impl ExactSizeIterator<Item = &'a StackState>, hidden: usize, out: &mut StackState) {
    let b = states.len();
    for (row, s) in states.enumerate() {
        if row == 0 {
            out.h.resize(s.h.len() * b, 0.0);
            out.c = s.c.as_ref().map(|c| {
                let mut buf = out.c.take().unwrap_or_default();
                buf.resize(c.len() * b, 0.0);
                buf
            });
        }
        for (src, dst) in pairs(&s.h, hidden, row, b) {
            out.h[dst].copy_from_slice(&s.h[src]);
        }
        if let (Some(c), Some(oc)) = (&s.c, out.c.as_mut()) {
            for (src, dst) in pairs(c, hidden, row, b) {
                oc[dst].copy_from_slice(&c[src]);
            }
        }
    }
}

/// Splits a batched state back into single-sequence states (the inverse of [`gather_states`]).
pub fn scatter_states<'a>(
    batched: &StackState,
    hidden: usize,
    states: impl ExactSizeIterator<Item = &'a mut StackState>,
) {
    let b = states.len();
    for (row, s) in states.enumerate() {
        for (src, dst) in pairs(&s.h, hidden, row, b) {
            s.h[src].copy_from_slice(&batched.h[dst]);
        }
        if let (Some(bc), Some(c)) = (&batched.c, s.c.as_mut()) {
            for (src, dst) in pairs(c, hidden, row, b) {
                c[src].copy_from_slice(&bc[dst]);
            }
        }
    }
}

/// For each of the L·D blocks of a single state: its range there and row `row`'s range in the
/// batched `[L·D, B, H]` buffer.
fn pairs(
    single: &[f32],
    hidden: usize,
    row: usize,
    b: usize,
) -> impl Iterator<Item = (std::ops::Range<usize>, std::ops::Range<usize>)> {
    (0..single.len() / hidden)
        .map(move |k| (k * hidden..(k + 1) * hidden, (k * b + row) * hidden..(k * b + row + 1) * hidden))
}

/// Beam search over a language model: each hypothesis carries its own state; one batched
/// [`Network::feed`] call steps all live hypotheses.
pub struct BeamModel<'a> {
    pub net: &'a Network,
    pub scratch: InferenceScratch,
    batched: StackState,
}

impl<'a> BeamModel<'a> {
    pub fn new(net: &'a Network) -> Self {
        BeamModel { net, scratch: InferenceScratch::default(), batched: net.zero_state(1) }
    }
}

impl StepModel for BeamModel<'_> {
    type State = StackState;

    fn step(&mut self, states: &mut [StackState], tokens: &[u32], logits_out: &mut [f32]) -> Result<()> {
        let b = states.len();
        let hidden = self.net.config.hidden_size;
        gather_states(states.iter(), hidden, &mut self.batched);
        self.scratch.ids.clear();
        self.scratch.ids.extend(tokens.iter().map(|&t| t as i32));
        let ids = std::mem::take(&mut self.scratch.ids);
        let result = self.net.feed(&ids, b, 1, &mut self.batched, &mut self.scratch, logits_out);
        self.scratch.ids = ids;
        result?;
        scatter_states(&self.batched, hidden, states.iter_mut());
        Ok(())
    }

    fn vocab_size(&self) -> usize {
        self.net.config.output_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;
    use crate::init::{init_params, InitConfig};
    use crate::rng::Rng;
    use serde_json::json;

    fn logits(net: &Network, tokens: &[i32], rows: usize) -> Vec<u32> {
        let steps = tokens.len() / rows;
        let mut state = net.zero_state(rows);
        let mut out = vec![0.0; rows * 11];
        net.feed(tokens, rows, steps, &mut state, &mut InferenceScratch::default(), &mut out).unwrap();
        out.iter().map(|v| v.to_bits()).collect()
    }

    /// The first layer's per-token table gives the same logits and states, bit for bit, as
    /// projecting the embedded tokens at every step: every cell, batch 1 and 3, a chunk then a
    /// single step with the state carried.
    #[test]
    fn token_table_equals_projecting_the_embeddings() {
        for cell in ["lstm", "gru", "rnn", "rnn_relu"] {
            let cfg = ModelConfig::from_json(
                &json!({"cell": cell, "vocab_size": 11, "embed_dim": 6, "hidden_size": 7, "num_layers": 2}),
            )
            .unwrap();
            let params = init_params(&cfg, &InitConfig::default(), &mut Rng::new(5)).unwrap();
            let net = Network::from_params(cfg, params).unwrap();
            let packed = net.inference_weights().unwrap();
            assert!(packed.token_gates.is_some(), "{cell}: V = 11 ≤ 2E = 12 builds the table");
            for rows in [1, 3] {
                let (mut state, mut reference) = (net.zero_state(rows), net.zero_state(rows));
                let (mut scratch, mut ws) = (InferenceScratch::default(), InferenceWorkspace::default());
                for (chunk, steps) in [(0, 3), (1, 1)] {
                    let tokens: Vec<i32> = (0..rows * steps).map(|k| ((k * 7 + chunk * 3 + 1) % 11) as i32).collect();
                    let mut logits = vec![0.0; rows * 11];
                    net.feed(&tokens, rows, steps, &mut state, &mut scratch, &mut logits).unwrap();
                    let mut x = vec![0.0; steps * rows * 6];
                    Embedding { vocab: 11, dim: 6 }
                        .forward(net.params().view("embed.weight"), &tokens, rows, steps, &mut x)
                        .unwrap();
                    let y = net
                        .stack()
                        .forward_inference(
                            net.params(),
                            Some(&packed.recurrence),
                            SeqBatch { x: &x, steps, batch: rows, lengths: None },
                            &mut reference,
                            &mut ws,
                        )
                        .unwrap();
                    let mut want = vec![0.0; rows * 11];
                    let last = &y[(steps - 1) * rows * 7..];
                    Dense { inputs: 7, outputs: 11 }
                        .forward_packed(
                            last,
                            rows,
                            &packed.head_t,
                            Some(net.params().view("head.bias")),
                            &mut want,
                            false,
                        )
                        .unwrap();
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&logits), bits(&want), "{cell} rows {rows} chunk {chunk}: logits");
                    assert_eq!(bits(&state.h), bits(&reference.h), "{cell} rows {rows} chunk {chunk}: h");
                }
            }
        }
    }

    /// Feeding a chunk one token at a time gives the same bits as feeding it at once (a chunk's
    /// input side is one GEMM over all its steps; a generation step's, a GEMM of its own rows).
    /// Every cell, with and without the per-token table, batch 1 and 3.
    #[test]
    fn single_steps_equal_one_chunk() {
        for cell in ["lstm", "gru", "rnn"] {
            for embed_dim in [6, 4] {
                let cfg = ModelConfig::from_json(
                    &json!({"cell": cell, "vocab_size": 11, "embed_dim": embed_dim, "hidden_size": 7, "num_layers": 2}),
                )
                .unwrap();
                let net = Network::from_params(
                    cfg.clone(),
                    init_params(&cfg, &InitConfig::default(), &mut Rng::new(8)).unwrap(),
                )
                .unwrap();
                assert_eq!(net.inference_weights().unwrap().token_gates.is_some(), embed_dim == 6);
                for rows in [1, 3] {
                    let steps = 5;
                    let tokens: Vec<i32> = (0..rows * steps).map(|k| ((k * 5 + 2) % 11) as i32).collect();
                    let (mut chunk_state, mut chunk_logits) = (net.zero_state(rows), vec![0.0; rows * 11]);
                    net.feed(
                        &tokens,
                        rows,
                        steps,
                        &mut chunk_state,
                        &mut InferenceScratch::default(),
                        &mut chunk_logits,
                    )
                    .unwrap();
                    let (mut state, mut logits, mut scratch) =
                        (net.zero_state(rows), vec![0.0; rows * 11], InferenceScratch::default());
                    for s in 0..steps {
                        let column: Vec<i32> = (0..rows).map(|r| tokens[r * steps + s]).collect();
                        net.feed(&column, rows, 1, &mut state, &mut scratch, &mut logits).unwrap();
                    }
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&logits), bits(&chunk_logits), "{cell} E {embed_dim} rows {rows}: logits");
                    assert_eq!(bits(&state.h), bits(&chunk_state.h), "{cell} E {embed_dim} rows {rows}: h");
                }
            }
        }
    }

    /// bf16 and int8 weights: logits close to f32's (relative to the largest), the per-token
    /// table equal to projecting the embeddings, and every-step logits equal to feeding step by
    /// step; reduced precision is refused for other tasks and for training.
    #[test]
    fn reduced_precision_stays_close_to_f32() {
        use crate::kernels::precision::Precision;
        for cell in ["lstm", "gru", "rnn"] {
            for embed_dim in [6, 4] {
                let cfg = ModelConfig::from_json(
                    &json!({"cell": cell, "vocab_size": 11, "embed_dim": embed_dim, "hidden_size": 40, "num_layers": 2}),
                )
                .unwrap();
                let params = init_params(&cfg, &InitConfig::default(), &mut Rng::new(6)).unwrap();
                let f32_net = Network::from_params(cfg.clone(), params.clone()).unwrap();
                let tokens: Vec<i32> = (0..2 * 7).map(|k| (k * 5 + 3) % 11).collect();
                let want = logits(&f32_net, &tokens, 2);
                for (precision, tolerance) in [(Precision::Bf16, 0.01), (Precision::Int8, 0.03)] {
                    let mut net = Network::from_params(cfg.clone(), params.clone()).unwrap();
                    net.set_precision(precision).unwrap();
                    let got = logits(&net, &tokens, 2);
                    let scale = want.iter().map(|&b| f32::from_bits(b).abs()).fold(0.0, f32::max);
                    for (g, w) in got.iter().zip(&want) {
                        let (g, w) = (f32::from_bits(*g), f32::from_bits(*w));
                        assert!((g - w).abs() <= tolerance * scale, "{cell} E {embed_dim} {precision:?}: {g} vs {w}");
                    }
                    assert_ne!(got, want, "{cell} {precision:?}: the reduced precision was not used");
                    // Every step at once equals one step at a time.
                    let mut state = net.zero_state(2);
                    let all =
                        net.feed_every_step(&tokens, 2, 7, None, &mut state, &mut InferenceScratch::default()).unwrap();
                    let last: Vec<u32> = all[6 * 2 * 11..].iter().map(|v| v.to_bits()).collect();
                    if embed_dim == 4 {
                        assert_eq!(last, got, "{cell} {precision:?}: every-step logits");
                    }
                    assert!(net.inference_bytes() < f32_net.inference_bytes(), "{cell} {precision:?}: bytes");
                }
            }
        }
        let classify = ModelConfig::from_json(
            &json!({"task": "classify", "cell": "gru", "vocab_size": 11, "embed_dim": 4, "hidden_size": 8, "num_layers": 1, "output_size": 3}),
        )
        .unwrap();
        let mut net = Network::zeros(classify).unwrap();
        assert!(matches!(net.set_precision(Precision::Int8), Err(Error::Config(m)) if m.contains("classify")));
        net.set_precision(Precision::F32).unwrap();
    }

    /// A non-finite embedding reaches the per-token table: feeding is refused with the table
    /// named, and works again once the parameter is repaired.
    #[test]
    fn a_non_finite_token_table_is_an_error() {
        let cfg = ModelConfig::from_json(
            &json!({"cell": "gru", "vocab_size": 11, "embed_dim": 6, "hidden_size": 7, "num_layers": 1}),
        )
        .unwrap();
        let mut net =
            Network::from_params(cfg.clone(), init_params(&cfg, &InitConfig::default(), &mut Rng::new(4)).unwrap())
                .unwrap();
        net.params_mut().view_mut("embed.weight")[13] = f32::INFINITY;
        let (mut state, mut out) = (net.zero_state(1), vec![0.0; 11]);
        let err = net.feed(&[1], 1, 1, &mut state, &mut InferenceScratch::default(), &mut out).unwrap_err();
        assert!(matches!(&err, Error::NonFinite(m) if m.contains("token table")), "{err:?}");
        net.params_mut().view_mut("embed.weight")[13] = 0.25;
        net.feed(&[1], 1, 1, &mut state, &mut InferenceScratch::default(), &mut out).unwrap();
    }

    /// The packed inference weights are made from the current parameters: a change through
    /// `params_mut` is seen by the next feed, exactly as by a network built from the new values.
    #[test]
    fn feed_sees_every_change_of_the_parameters() {
        let cfg = ModelConfig::from_json(
            &json!({"cell": "lstm", "vocab_size": 11, "embed_dim": 5, "hidden_size": 7, "num_layers": 2}),
        )
        .unwrap();
        let params = init_params(&cfg, &InitConfig::default(), &mut Rng::new(3)).unwrap();
        let mut net = Network::from_params(cfg.clone(), params).unwrap();
        let tokens = [1, 4, 2, 9, 0, 3, 3, 10];
        let before = logits(&net, &tokens, 2);
        for name in ["rnn.weight_ih_l0", "rnn.weight_hh_l1", "head.weight"] {
            net.params_mut().view_mut(name).iter_mut().for_each(|v| *v *= 1.5);
            let after = logits(&net, &tokens, 2);
            let rebuilt = Network::from_params(cfg.clone(), net.params().clone()).unwrap();
            assert_ne!(after, before, "changing {name} changed nothing");
            assert_eq!(after, logits(&rebuilt, &tokens, 2), "stale packed weights after changing {name}");
        }
    }
}
