//! Generation natively: a continuous-batching pool of sequences (`NativeGenerator`), a stateful
//! session for step-by-step use (`NativeSession`), and beam search.
//!
//! The pool: sequences from any number of callers (e.g. server requests) join and leave at any
//! time; one `step` call samples the next token of every live sequence and advances all of them
//! with ONE batched network step (their states gathered into `[L·D, B, H]`), so throughput grows
//! with the number of live sequences. Each sequence keeps its own sampler, seeded RNG and
//! context, so its text does not depend on what else is in the batch.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{AsyncTask, Float32ArraySlice, Int32Array};
use napi::Env;
use napi_derive::napi;

use rnn_core::layer::recurrent::StackState;
use rnn_core::model::inference::{gather_states, scatter_states, BeamModel, InferenceScratch};
use rnn_core::model::network::Network;
use rnn_core::rng::Rng;
use rnn_core::sample::{beam_search, sample_next, BeamConfig, SampleScratch, SamplerConfig};

use crate::errors::{JsKind, NodeError};
use crate::guard::{guard_js, Guarded, Work};
use crate::model::{read, seed_from, NativeModel, Shared};

/// One sequence being generated.
struct Sequence {
    id: u32,
    /// Prompt tokens not yet read (read at the next step).
    pending: Vec<i32>,
    state: StackState,
    /// `[V]` next-token logits.
    logits: Vec<f32>,
    sampler: SamplerConfig,
    rng: Rng,
    /// Prompt and generated tokens (repetition penalty).
    context: Vec<u32>,
    remaining: u32,
}

#[derive(Default)]
struct Pool {
    live: Vec<Sequence>,
    scratch: InferenceScratch,
    sample_scratch: SampleScratch,
    batched: StackState,
    /// `[B]` tokens of the batched step, `[B, V]` its logits.
    step_tokens: Vec<i32>,
    step_logits: Vec<f32>,
}

/// Sequences waiting to join and ids to drop, applied at the start of the next step so that
/// `add`/`remove` never wait for a running step.
#[derive(Default)]
struct Mailbox {
    joining: Vec<Sequence>,
    leaving: Vec<u32>,
    next_id: u32,
}

fn value_error(message: String) -> NodeError {
    NodeError::with_kind(JsKind::RangeError, "ERR_RNNKIT_RANGE", message)
}

fn check_prompt(net: &Network, prompt: &[i32]) -> Result<(), NodeError> {
    if prompt.is_empty() {
        return Err(value_error("prompt: expected at least one token, got none".into()));
    }
    let v = net.config.output_size;
    if let Some(i) = prompt.iter().position(|&t| t < 0 || t as usize >= v) {
        return Err(NodeError::with_kind(JsKind::RangeError, "ERR_RNNKIT_VOCAB", format!("prompt: token id {} at position {i} is outside the vocabulary [0, {v})", prompt[i])));
    }
    Ok(())
}

fn parse_sampler(json: &str) -> Result<SamplerConfig, NodeError> {
    let cfg: SamplerConfig = serde_json::from_str(json).map_err(|e| NodeError::with_kind(JsKind::TypeError, "ERR_RNNKIT_TYPE", format!("sampler: {e}")))?;
    cfg.validate()?;
    Ok(cfg)
}

/// A continuous-batching generation pool over one model.
#[napi]
pub struct NativeGenerator {
    shared: Shared,
    mailbox: Arc<Mutex<Mailbox>>,
    pool: Arc<Mutex<Pool>>,
}

#[napi]
impl NativeGenerator {
    /// An empty pool over `model`.
    #[napi(constructor)]
    pub fn new(model: &NativeModel) -> Self {
        NativeGenerator { shared: model.shared.clone(), mailbox: Default::default(), pool: Default::default() }
    }

    /// Adds a sequence: `prompt` token ids (at least one), sampler options (JSON:
    /// `temperature`, `top_k`, `top_p`, `repetition_penalty`, `greedy`), seed and token budget.
    /// Returns its id; it produces tokens from the next `step`.
    #[napi]
    pub fn add(&self, env: Env, prompt: Int32Array, sampler_json: String, seed: f64, max_tokens: u32) -> napi::Result<u32> {
        guard_js(&env, || {
            let sampler = parse_sampler(&sampler_json)?;
            let seed = seed_from("seed", seed)?;
            let g = read(&self.shared)?;
            let net = &g.as_ref().expect("checked").network;
            check_prompt(net, &prompt)?;
            let mut mailbox = self.mailbox.lock().map_err(|_| NodeError::panic("generator lock poisoned"))?;
            let id = mailbox.next_id;
            mailbox.next_id = mailbox.next_id.wrapping_add(1);
            mailbox.joining.push(Sequence {
                id,
                pending: prompt.to_vec(),
                state: net.zero_state(1),
                logits: vec![0.0; net.config.output_size],
                sampler,
                rng: Rng::new(seed),
                context: prompt.iter().map(|&t| t as u32).collect(),
                remaining: max_tokens,
            });
            Ok(id)
        })
    }

    /// Drops a sequence (finished, stopped or cancelled by its caller).
    #[napi]
    pub fn remove(&self, env: Env, id: u32) -> napi::Result<()> {
        guard_js(&env, || {
            self.mailbox.lock().map_err(|_| NodeError::panic("generator lock poisoned"))?.leaving.push(id);
            Ok(())
        })
    }

    /// Runs up to `steps` steps for every live sequence off the JS thread; resolves with pairs
    /// `[id, token, id, token, …]` in step order. A sequence leaves the pool when its budget is
    /// spent.
    #[napi(ts_return_type = "Promise<Int32Array>")]
    pub fn step(&self, steps: u32) -> AsyncTask<Guarded<StepWork>> {
        AsyncTask::new(Guarded(StepWork {
            shared: self.shared.clone(),
            mailbox: self.mailbox.clone(),
            pool: self.pool.clone(),
            steps,
        }))
    }

    /// [`NativeGenerator::step`] on the calling thread.
    #[napi]
    pub fn step_sync(&self, env: Env, steps: u32) -> napi::Result<Int32Array> {
        guard_js(&env, || Ok(Int32Array::new(run_steps(&self.shared, &self.mailbox, &self.pool, steps)?)))
    }
}

/// `NativeGenerator.step`'s work.
pub struct StepWork {
    shared: Shared,
    mailbox: Arc<Mutex<Mailbox>>,
    pool: Arc<Mutex<Pool>>,
    steps: u32,
}

impl Work for StepWork {
    type Output = Vec<i32>;
    type JsValue = Int32Array;
    fn compute(&mut self) -> Result<Vec<i32>, NodeError> {
        run_steps(&self.shared, &self.mailbox, &self.pool, self.steps)
    }
    fn resolve(&mut self, _env: Env, output: Vec<i32>) -> napi::Result<Int32Array> {
        Ok(Int32Array::new(output))
    }
}

fn run_steps(shared: &Shared, mailbox: &Mutex<Mailbox>, pool: &Mutex<Pool>, steps: u32) -> Result<Vec<i32>, NodeError> {
    let g = read(shared)?;
    let net = &g.as_ref().expect("checked").network;
    let mut pool = pool.lock().map_err(|_| NodeError::panic("generator lock poisoned"))?;
    let pool = &mut *pool;
    let mut out = Vec::new();
    for _ in 0..steps {
        {
            let mut mb = mailbox.lock().map_err(|_| NodeError::panic("generator lock poisoned"))?;
            let leaving = std::mem::take(&mut mb.leaving);
            pool.live.retain(|s| !leaving.contains(&s.id));
            pool.live.extend(mb.joining.drain(..).filter(|s| !leaving.contains(&s.id)));
        }
        pool.live.retain(|s| s.remaining > 0);
        if pool.live.is_empty() {
            break;
        }
        // New sequences read their prompts (each its own length, so one at a time).
        for s in pool.live.iter_mut().filter(|s| !s.pending.is_empty()) {
            let prompt = std::mem::take(&mut s.pending);
            net.feed(&prompt, 1, prompt.len(), &mut s.state, &mut pool.scratch, &mut s.logits)?;
        }
        // Sample every live sequence's next token from its own distribution.
        pool.step_tokens.clear();
        for s in pool.live.iter_mut() {
            let token = sample_next(&s.logits, &s.context, &s.sampler, &mut s.rng, &mut pool.sample_scratch)?;
            s.context.push(token);
            s.remaining -= 1;
            out.push(s.id as i32);
            out.push(token as i32);
            pool.step_tokens.push(token as i32);
        }
        // One batched step advances them all.
        let b = pool.live.len();
        let v = net.config.output_size;
        let hidden = net.config.hidden_size;
        gather_states(pool.live.iter().map(|s| &s.state), hidden, &mut pool.batched);
        pool.step_logits.resize(b * v, 0.0);
        net.feed(&pool.step_tokens, b, 1, &mut pool.batched, &mut pool.scratch, &mut pool.step_logits)?;
        scatter_states(&pool.batched, hidden, pool.live.iter_mut().map(|s| &mut s.state));
        for (s, logits) in pool.live.iter_mut().zip(pool.step_logits.chunks_exact(v)) {
            s.logits.copy_from_slice(logits);
        }
    }
    pool.live.retain(|s| s.remaining > 0);
    Ok(out)
}

/// A stateful session over `rows` independent streams, for step-by-step use: feed tokens, read
/// the next-token logits.
#[napi]
pub struct NativeSession {
    shared: Shared,
    rows: usize,
    state: StackState,
    scratch: InferenceScratch,
    /// `[rows, V]` logits after the last token read.
    logits: Vec<f32>,
    /// Tokens read so far per row (repetition penalty); empty until the first feed.
    context: Vec<Vec<u32>>,
    rng: Rng,
    sample_scratch: SampleScratch,
}

#[napi]
impl NativeSession {
    /// A session of `rows` streams (1 for a single text) starting from the zero state; `seed`
    /// seeds `next`'s sampling.
    #[napi(constructor)]
    pub fn new(env: Env, model: &NativeModel, rows: u32, seed: f64) -> napi::Result<Self> {
        guard_js(&env, || {
            if rows == 0 {
                return Err(value_error("rows: expected an integer >= 1, got 0".into()));
            }
            let g = read(&model.shared)?;
            let net = &g.as_ref().expect("checked").network;
            Ok(NativeSession {
                shared: model.shared.clone(),
                rows: rows as usize,
                state: net.zero_state(rows as usize),
                scratch: InferenceScratch::default(),
                logits: vec![0.0; rows as usize * net.config.output_size],
                context: vec![Vec::new(); rows as usize],
                rng: Rng::new(seed_from("seed", seed)?),
                sample_scratch: SampleScratch::default(),
            })
        })
    }

    /// Reads `tokens` `[rows, steps]` (batch-first) and returns the logits after the last step
    /// `[rows, V]`.
    #[napi]
    pub fn feed<'env>(&mut self, env: &'env Env, tokens: Int32Array, steps: u32) -> napi::Result<Float32ArraySlice<'env>> {
        guard_js(env, || {
            let g = read(&self.shared)?;
            let net = &g.as_ref().expect("checked").network;
            let steps = steps as usize;
            rnn_core::error::check_len("tokens", tokens.len(), self.rows * steps)?;
            net.feed(&tokens, self.rows, steps, &mut self.state, &mut self.scratch, &mut self.logits)?;
            for (row, context) in self.context.iter_mut().enumerate() {
                context.extend(tokens[row * steps..(row + 1) * steps].iter().map(|&t| t as u32));
            }
            Ok(())
        })?;
        // Copied into a buffer V8 allocates: per call (one token of generation) that is cheaper
        // than handing V8 an external buffer, which needs a finalizer and a global handle.
        Float32ArraySlice::copy_from(env, &self.logits)
    }

    /// Samples the next token of every row from the current logits (sampler JSON as for
    /// `NativeGenerator.add`), reads it, and returns the tokens `[rows]`.
    #[napi]
    pub fn next(&mut self, env: Env, sampler_json: String) -> napi::Result<Int32Array> {
        guard_js(&env, || {
            let sampler = parse_sampler(&sampler_json)?;
            if self.context.iter().any(Vec::is_empty) {
                return Err(value_error("next: feed at least one token first".into()));
            }
            let g = read(&self.shared)?;
            let net = &g.as_ref().expect("checked").network;
            let v = net.config.output_size;
            let mut tokens = Vec::with_capacity(self.rows);
            for (row, context) in self.context.iter_mut().enumerate() {
                let logits = &self.logits[row * v..(row + 1) * v];
                let token = sample_next(logits, context, &sampler, &mut self.rng, &mut self.sample_scratch)?;
                context.push(token);
                tokens.push(token as i32);
            }
            net.feed(&tokens, self.rows, 1, &mut self.state, &mut self.scratch, &mut self.logits)?;
            Ok(Int32Array::new(tokens))
        })
    }

    /// Back to the zero state.
    #[napi]
    pub fn reset(&mut self, env: Env) -> napi::Result<()> {
        guard_js(&env, || {
            let g = read(&self.shared)?;
            self.state = g.as_ref().expect("checked").network.zero_state(self.rows);
            self.context.iter_mut().for_each(Vec::clear);
            Ok(())
        })
    }
}

/// One beam-search hypothesis.
#[napi(object)]
pub struct Hypothesis {
    /// Generated token ids (prompt excluded).
    pub tokens: Vec<i32>,
    /// Length-normalised score.
    pub score: f64,
    /// Total log-probability.
    pub logprob: f64,
}

/// Beam search from a prompt, off the JS thread: hypotheses best first.
#[napi(ts_return_type = "Promise<Hypothesis[]>")]
pub fn beam_search_native(model: &NativeModel, prompt: Int32Array, beams: u32, max_tokens: u32, length_penalty: f64, stop_tokens: Vec<u32>) -> AsyncTask<Guarded<BeamWork>> {
    AsyncTask::new(Guarded(BeamWork {
        shared: model.shared.clone(),
        prompt: prompt.to_vec(),
        config: BeamConfig { beams: beams as usize, max_tokens: max_tokens as usize, length_penalty, stop_tokens },
    }))
}

/// `beamSearchNative`'s work.
pub struct BeamWork {
    shared: Shared,
    prompt: Vec<i32>,
    config: BeamConfig,
}

impl Work for BeamWork {
    type Output = Vec<(Vec<u32>, f64, f64)>;
    type JsValue = Vec<Hypothesis>;
    fn compute(&mut self) -> Result<Self::Output, NodeError> {
        self.config.validate()?;
        let g = read(&self.shared)?;
        let net = &g.as_ref().expect("checked").network;
        check_prompt(net, &self.prompt)?;
        let mut state = net.zero_state(1);
        let mut scratch = InferenceScratch::default();
        let mut logits = vec![0.0; net.config.output_size];
        net.feed(&self.prompt, 1, self.prompt.len(), &mut state, &mut scratch, &mut logits)?;
        let mut model = BeamModel::new(net);
        Ok(beam_search(&mut model, state, &logits, &self.config)?)
    }
    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Vec<Hypothesis>> {
        Ok(output
            .into_iter()
            .map(|(tokens, score, logprob)| Hypothesis { tokens: tokens.into_iter().map(|t| t as i32).collect(), score, logprob })
            .collect())
    }
}
