//! Generation natively: a continuous-batching pool of sequences (`NativeGenerator`), a stateful
//! session for step-by-step use (`NativeSession`), and beam search.
//!
//! The pool: sequences from any number of callers (e.g. server requests) join and leave at any
//! time; one `step` call samples the next token of every live sequence and advances all of them
//! with ONE batched network step (their states gathered into `[L·D, B, H]`), so throughput grows
//! with the number of live sequences. Each sequence keeps its own sampler, seeded RNG and
//! context, so its text does not depend on what else is in the batch.

//!
//! Options cross as typed objects read through [`Strict`] (unknown keys refused), never as JSON:
//! `resolveGenerateOptions` checks a caller's options once and fills in the defaults; the pool,
//! the session and beam search take the resolved parts and convert them without a string in
//! between, so nothing is serialised per generated token.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{AsyncTask, Either, Float32ArraySlice, Float64Array, Int32Array};
use napi::Env;
use napi_derive::napi;

use rnn_core::beam::{beam_search, BeamConfig};
use rnn_core::layer::recurrent::StackState;
use rnn_core::model::inference::{gather_states, scatter_states, BeamModel, InferenceScratch};
use rnn_core::model::network::Network;
use rnn_core::rng::Rng;
use rnn_core::sample::{append_logprobs, sample_next, LogprobScratch, SampleScratch, SamplerConfig};
use rnn_core::state_cache::{StateCache, CHECKPOINT_TOKENS};

use crate::errors::{JsKind, NodeError};
use crate::guard::{guard_js, Guarded, Work};
use crate::model::{read, seed_from, CancelToken, NativeModel, Shared};
use crate::options::Strict;
use crate::strict_object;

/// How one token is drawn (the TypeScript `SamplerOptions`). Every field is optional;
/// `resolveGenerateOptions` returns them all set.
#[napi(object)]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplerOptions {
    /// Softmax temperature, finite and >= 0; 0 means greedy. Default 1.
    pub temperature: Option<f64>,
    /// Keep only the k most likely tokens; 0 = off. Default 0.
    pub top_k: Option<f64>,
    /// Nucleus: keep the smallest set of most likely tokens reaching this mass, in (0, 1].
    /// Default 1 (off).
    pub top_p: Option<f64>,
    /// CTRL repetition penalty on tokens already in the context, > 0; 1 = off. Default 1.
    pub repetition_penalty: Option<f64>,
    /// Always take the most likely token. Default false.
    pub greedy: Option<bool>,
    /// OpenAI's presence penalty on tokens in the context, in [-2, 2]; 0 = off. Default 0.
    pub presence_penalty: Option<f64>,
    /// OpenAI's frequency penalty (per occurrence in the context), in [-2, 2]; 0 = off. Default 0.
    pub frequency_penalty: Option<f64>,
}
strict_object!(
    SamplerOptions,
    "options",
    ["temperature", "topK", "topP", "repetitionPenalty", "greedy", "presencePenalty", "frequencyPenalty"]
);

/// A caller's generation options (the TypeScript `GenerateOptions` without `signal`, which
/// TypeScript handles). Every field is optional.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct NativeGenerateOptions {
    /// Tokens to produce, an integer in [0, 1 000 000]. Default 200.
    pub max_tokens: Option<f64>,
    /// As `SamplerOptions.temperature`.
    pub temperature: Option<f64>,
    /// As `SamplerOptions.topK`.
    pub top_k: Option<f64>,
    /// As `SamplerOptions.topP`.
    pub top_p: Option<f64>,
    /// As `SamplerOptions.repetitionPenalty`.
    pub repetition_penalty: Option<f64>,
    /// Seed of the sampler, an integer in [0, 2^53 - 1]. Default: drawn at random.
    pub seed: Option<f64>,
    /// As `SamplerOptions.greedy`.
    pub greedy: Option<bool>,
    /// As `SamplerOptions.presencePenalty`.
    pub presence_penalty: Option<f64>,
    /// As `SamplerOptions.frequencyPenalty`.
    pub frequency_penalty: Option<f64>,
    /// Beam search with this many beams, in [1, 256] (1 = greedy decoding). Default: sampling.
    pub beams: Option<f64>,
    /// Beam search's GNMT length-penalty exponent, finite. Default 1.
    pub length_penalty: Option<f64>,
    /// Generation ends before the first occurrence of any of these non-empty strings.
    pub stop: Option<Either<String, Vec<String>>>,
    /// Report each generated token's log-probability with this many most likely alternatives,
    /// an integer in [0, 20]. Default: no log-probabilities.
    pub logprobs: Option<f64>,
}
strict_object!(
    NativeGenerateOptions,
    "options",
    [
        "maxTokens",
        "temperature",
        "topK",
        "topP",
        "repetitionPenalty",
        "presencePenalty",
        "frequencyPenalty",
        "seed",
        "greedy",
        "beams",
        "lengthPenalty",
        "stop",
        "logprobs"
    ],
    caller: ["signal"]
);

/// `NativeGenerateOptions` checked, with every default filled in.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct ResolvedGenerateOptions {
    /// Token budget.
    pub max_tokens: u32,
    /// The sampler, every field set (what `NativeGenerator.add` takes).
    pub sampler: SamplerOptions,
    /// Seed of the sampler (the given one, else a random integer in [0, 2^32)).
    pub seed: f64,
    /// Beam width when beam search was asked for, else 0.
    pub beams: u32,
    /// Beam search's length-penalty exponent.
    pub length_penalty: f64,
    /// Stop strings (possibly none).
    pub stop: Vec<String>,
    /// Alternatives listed with each token's log-probability (what `NativeGenerator.add` takes);
    /// absent when no log-probabilities were asked for.
    pub logprobs: Option<u32>,
}

/// Options of `beamSearchNative`: the engine's `BeamConfig` in JavaScript names.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct BeamOptions {
    /// Beam width, in [1, 256].
    pub beams: u32,
    /// Most tokens per hypothesis (stop token included), >= 1.
    pub max_tokens: u32,
    /// GNMT length-penalty exponent, finite (0 = raw log-probability).
    pub length_penalty: f64,
    /// Token ids that end a hypothesis (e.g. `<eos>`).
    pub stop_tokens: Vec<u32>,
}
strict_object!(BeamOptions, "options", ["beams", "maxTokens", "lengthPenalty", "stopTokens"]);

/// The largest accepted token budget of one generation.
const MAX_TOKENS: u64 = 1_000_000;

/// The engine's option names (as its errors start) and their JavaScript names.
const JS_NAMES: &[(&str, &str)] = &[
    ("temperature", "temperature"),
    ("top_k", "topK"),
    ("top_p", "topP"),
    ("repetition_penalty", "repetitionPenalty"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
    ("beams", "beams"),
    ("max_tokens", "maxTokens"),
    ("length_penalty", "lengthPenalty"),
];

/// An engine validation error renamed to the option the caller wrote: `top_p: ...` becomes
/// `options.topP: ...` (message and `param`), so the engine's check is the only one.
fn option_error(err: rnn_core::Error) -> NodeError {
    let mut e = NodeError::from(err);
    if let Some(core) = e.param.take() {
        let js = JS_NAMES.iter().find(|(c, _)| *c == core).map_or(core.as_str(), |(_, js)| js);
        let param = format!("options.{js}");
        if let Some(rest) = e.message.strip_prefix(core.as_str()) {
            e.message = format!("{param}{rest}");
        }
        e.param = Some(param);
    }
    e
}

/// `v` as an integer in `[min, max]`, or a RangeError naming `name` and the value.
fn integer(name: &str, v: f64, min: u64, max: u64) -> Result<u64, NodeError> {
    if !(v.is_finite() && v.fract() == 0.0 && v >= min as f64 && v <= max as f64) {
        return Err(value_error(format!("{name}: expected an integer in [{min}, {max}], got {v}")));
    }
    Ok(v as u64)
}

/// The engine's sampler from the caller's options, checked once by `SamplerConfig::validate`.
fn sampler_config(o: &SamplerOptions) -> Result<SamplerConfig, NodeError> {
    let cfg = SamplerConfig {
        temperature: o.temperature.unwrap_or(1.0) as f32,
        top_k: match o.top_k {
            Some(k) => integer("options.topK", k, 0, u32::MAX as u64)? as usize,
            None => 0,
        },
        top_p: o.top_p.unwrap_or(1.0) as f32,
        repetition_penalty: o.repetition_penalty.unwrap_or(1.0) as f32,
        greedy: o.greedy.unwrap_or(false),
        presence_penalty: o.presence_penalty.unwrap_or(0.0) as f32,
        frequency_penalty: o.frequency_penalty.unwrap_or(0.0) as f32,
    };
    cfg.validate().map_err(option_error)?;
    Ok(cfg)
}

/// A seed for callers that give none: different per call, from the standard library's
/// randomly keyed hasher (no dependency for one number), in [0, 2^32) like the seeds people type.
fn random_seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish() & 0xffff_ffff
}

/// Checks a caller's generation options and fills in the defaults: every check of every field
/// happens here (and in the engine's `SamplerConfig::validate`/`BeamConfig::validate` it
/// calls). Errors are TypeErrors/RangeErrors naming the option, e.g. `options.topP`; an
/// unknown key is refused with `ERR_RNNKIT_UNKNOWN_OPTION` and a did-you-mean.
#[napi]
pub fn resolve_generate_options(
    env: Env,
    #[napi(ts_arg_type = "NativeGenerateOptions")] options: Strict<NativeGenerateOptions>,
) -> napi::Result<ResolvedGenerateOptions> {
    guard_js(&env, || resolve(options.0))
}

fn resolve(o: NativeGenerateOptions) -> Result<ResolvedGenerateOptions, NodeError> {
    let max_tokens = match o.max_tokens {
        Some(n) => integer("options.maxTokens", n, 0, MAX_TOKENS)? as u32,
        None => 200,
    };
    let sampler = SamplerOptions {
        temperature: o.temperature,
        top_k: o.top_k,
        top_p: o.top_p,
        repetition_penalty: o.repetition_penalty,
        greedy: o.greedy,
        presence_penalty: o.presence_penalty,
        frequency_penalty: o.frequency_penalty,
    };
    let cfg = sampler_config(&sampler)?;
    let seed = match o.seed {
        Some(s) => seed_from("options.seed", s)?,
        None => random_seed(),
    };
    let length_penalty = o.length_penalty.unwrap_or(1.0);
    let beams = match o.beams {
        Some(b) => {
            let beams = integer("options.beams", b, 0, u32::MAX as u64)? as usize;
            BeamConfig { beams, max_tokens: max_tokens as usize, length_penalty, stop_tokens: Vec::new() }
                .validate()
                .map_err(option_error)?;
            beams as u32
        }
        None => 0,
    };
    let stop = match o.stop {
        None => Vec::new(),
        Some(Either::A(s)) => vec![s],
        Some(Either::B(v)) => v,
    };
    let logprobs = match o.logprobs {
        Some(n) => Some(integer("options.logprobs", n, 0, MAX_TOP_LOGPROBS as u64)? as u32),
        None => None,
    };
    if let Some(i) = stop.iter().position(String::is_empty) {
        return Err(NodeError::type_error(
            "ERR_RNNKIT_TYPE",
            format!("options.stop[{i}]: expected a non-empty string, got \"\""),
        ));
    }
    Ok(ResolvedGenerateOptions {
        max_tokens,
        sampler: SamplerOptions {
            temperature: Some(cfg.temperature as f64),
            top_k: Some(cfg.top_k as f64),
            top_p: Some(cfg.top_p as f64),
            repetition_penalty: Some(cfg.repetition_penalty as f64),
            greedy: Some(cfg.greedy),
            presence_penalty: Some(cfg.presence_penalty as f64),
            frequency_penalty: Some(cfg.frequency_penalty as f64),
        },
        seed: seed as f64,
        beams,
        length_penalty,
        stop,
        logprobs,
    })
}

/// One sequence being generated.
struct Sequence {
    id: u32,
    /// The prompt while it is being read (empty once read): `prompt_read` of its ids are read,
    /// the rest is read a few chunks per call (chunked prefill, [`Mailbox::prefill_chunk`]).
    pending: Vec<i32>,
    prompt_read: usize,
    state: StackState,
    /// `[V]` next-token logits.
    logits: Vec<f32>,
    sampler: SamplerConfig,
    rng: Rng,
    /// Prompt and generated tokens (repetition, presence and frequency penalties).
    context: Vec<u32>,
    remaining: u32,
    /// `Some(top)`: report each generated token's log-probability and the `top` most likely
    /// alternatives (OpenAI's `logprobs`).
    logprobs: Option<usize>,
}

/// Prompt ids read per call while other sequences generate, by default. On the 2-layer LSTM
/// (H=128) of the server benchmarks with one compute thread, 64 ids take 2–5 ms and a call of
/// batch-64 steps 4–20 ms. Of 0, 64, 128 and 256 ids per call (three interleaved runs), 64 and
/// 128 kept the gap p99 of 64 running streams lowest while 2,000-token prompts were read
/// (medians 48 and 46 ms, against 121 ms reading each prompt whole and 59 ms at 256), and 128
/// answered the long prompts sooner (125 against 162 ms) (`bench/serve.js --long-prompts
/// --variants '--prefill-chunk …'`, bench/RESULTS.md).
const DEFAULT_PREFILL_CHUNK: usize = 128;

/// The most alternatives a generated token's log-probabilities list (OpenAI's limit).
const MAX_TOP_LOGPROBS: u32 = 20;

/// What one `NativeGenerator.step` produced.
#[napi(object)]
pub struct StepOutput {
    /// Pairs `[id, token, id, token, …]` in step order.
    pub tokens: Int32Array,
    /// For each pair (in order) whose sequence asked for log-probabilities, its record
    /// `[n, logprob(token), id₁, lp₁, …, id_n, lp_n]` (`n`: `top` as given to `add`, at most
    /// the vocabulary size), concatenated.
    pub logprobs: Float64Array,
    /// Sequences that failed on their own (their logits not finite: a model fault) and left the
    /// pool; the others carry on.
    pub failed: Vec<SequenceFailure>,
    /// Milliseconds the engine computed (prompts read, tokens sampled, batched steps), without
    /// the wait for a thread and the return to JavaScript: what the scheduler sizes calls by.
    pub compute_ms: f64,
}

/// Counts of the prompt state cache (`rnn_core::state_cache`).
#[napi(object)]
pub struct StateCacheInfo {
    /// States held now.
    pub entries: f64,
    /// Bytes they take.
    pub bytes: f64,
    /// The bound on `bytes`; 0 = off.
    pub max_bytes: f64,
    /// Prompts (of at least one chunk) that restored a cached state.
    pub hits: f64,
    /// Prompts (of at least one chunk) that found none.
    pub misses: f64,
    /// Prompt tokens not read again thanks to hits.
    pub reused_tokens: f64,
    /// States dropped to stay within the bound.
    pub evictions: f64,
}

/// One sequence's failure inside a step.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct SequenceFailure {
    /// The sequence's id.
    pub id: u32,
    /// The engine's error code, e.g. `ERR_RNNKIT_NON_FINITE`.
    pub code: String,
    /// The engine's message.
    pub message: String,
}

/// What `run_steps` produced: token pairs, log-probability records, failures, compute time (ms).
type StepResult = (Vec<i32>, Vec<f64>, Vec<SequenceFailure>, f64);

fn step_output((tokens, logprobs, failed, compute_ms): StepResult) -> StepOutput {
    StepOutput { tokens: Int32Array::new(tokens), logprobs: Float64Array::new(logprobs), failed, compute_ms }
}

fn failure(id: u32, e: NodeError) -> SequenceFailure {
    SequenceFailure { id, code: e.code.to_string(), message: e.message }
}

#[derive(Default)]
struct Pool {
    live: Vec<Sequence>,
    scratch: InferenceScratch,
    sample_scratch: SampleScratch,
    logprob_scratch: LogprobScratch,
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
    /// Prompt ids read per `step` call in all while other sequences generate (a multiple of
    /// [`CHECKPOINT_TOKENS`]; 0: every prompt read whole in the step it joins). The generating
    /// sequences receive their tokens when the call returns, so a call's latency for them is
    /// its batched steps plus this many ids of prompt reading, instead of the whole of every new
    /// prompt (a per-step bound would let a call of many steps read a whole prompt anyway).
    prefill_chunk: usize,
}

fn value_error(message: String) -> NodeError {
    NodeError::with_kind(JsKind::RangeError, "ERR_RNNKIT_RANGE", message)
}

/// Checks a prompt's ids against the vocabulary. An empty prompt is allowed: generation then
/// starts from the model's start state (see [`start_logits`]).
fn check_prompt(net: &Network, prompt: &[i32]) -> Result<(), NodeError> {
    let v = net.config.output_size;
    if let Some(i) = prompt.iter().position(|&t| t < 0 || t as usize >= v) {
        return Err(NodeError::with_kind(
            JsKind::RangeError,
            "ERR_RNNKIT_VOCAB",
            format!("prompt: token id {} at position {i} is outside the vocabulary [0, {v})", prompt[i]),
        ));
    }
    Ok(())
}

/// The next-token logits of the zero state before any token is read, written to `logits` `[V]`:
/// what generation from an empty prompt samples its first token from.
///
/// An RNN's output depends on the token it reads, so "the zero state's prediction" is defined as
/// the head applied to a zero recurrent output, which is the head's bias (the skip connection,
/// when present, reads no token and adds nothing). The bias is what training learns as the
/// unconditional token frequencies, so the first token follows the corpus's unigram
/// distribution, and the state it is fed to is the zero state every training window starts from.
/// Tokenizers with `<bos>` do not come here: the TypeScript side feeds `<bos>` instead, which is
/// how those models saw the start of a text in training.
fn start_logits(net: &Network, logits: &mut [f32]) {
    logits.copy_from_slice(net.params().view("head.bias"));
}

/// Where a prompt leaves a fresh sequence: the zero state after reading `prompt`, and the
/// next-token logits; an empty prompt leaves the zero state and [`start_logits`].
fn prompt_state(
    net: &Network,
    prompt: &[i32],
    scratch: &mut InferenceScratch,
) -> Result<(StackState, Vec<f32>), NodeError> {
    let mut state = net.zero_state(1);
    let mut logits = vec![0.0; net.config.output_size];
    if prompt.is_empty() {
        start_logits(net, &mut logits);
    } else {
        net.feed(prompt, 1, prompt.len(), &mut state, scratch, &mut logits)?;
    }
    Ok((state, logits))
}

/// A continuous-batching generation pool over one model.
#[napi]
pub struct NativeGenerator {
    shared: Shared,
    mailbox: Arc<Mutex<Mailbox>>,
    pool: Arc<Mutex<Pool>>,
    /// Its own lock: statistics are read without waiting for a running step.
    cache: Arc<Mutex<StateCache>>,
}

#[napi]
impl NativeGenerator {
    /// An empty pool over `model`.
    #[napi(constructor)]
    pub fn new(model: &NativeModel) -> Self {
        NativeGenerator {
            shared: model.shared.clone(),
            mailbox: Arc::new(Mutex::new(Mailbox { prefill_chunk: DEFAULT_PREFILL_CHUNK, ..Default::default() })),
            pool: Default::default(),
            cache: Default::default(),
        }
    }

    /// Bounds the prompt state cache to `bytes` (an integer >= 0; 0, the default, turns it off
    /// and drops what it holds): prompts sharing a prefix with an earlier one restore the state
    /// after it instead of reading it again (`rnn_core::state_cache`).
    #[napi]
    pub fn set_state_cache_limit(&self, env: Env, bytes: f64) -> napi::Result<()> {
        guard_js(&env, || {
            let bytes = integer("bytes", bytes, 0, 1 << 53)? as usize;
            self.cache.lock().map_err(|_| NodeError::panic("state cache lock poisoned"))?.set_max_bytes(bytes);
            Ok(())
        })
    }

    /// Prompt ids read per `step` call in all while other sequences generate: a long prompt is
    /// read a few chunks per call, between the others' steps, so their tokens keep coming
    /// (chunked prefill). `tokens` is a multiple of 64 (the chunks of the state cache); 0 reads
    /// every prompt whole in the step it joins. A prompt read in parts ends in the same state,
    /// bit for bit, as one read at once. Default [`DEFAULT_PREFILL_CHUNK`].
    #[napi]
    pub fn set_prefill_chunk(&self, env: Env, tokens: f64) -> napi::Result<()> {
        guard_js(&env, || {
            let n = integer("tokens", tokens, 0, 1 << 30)? as usize;
            if !n.is_multiple_of(CHECKPOINT_TOKENS) {
                return Err(value_error(format!(
                    "tokens: expected 0 or a multiple of {CHECKPOINT_TOKENS} (the prompt chunk), got {n}"
                )));
            }
            self.mailbox.lock().map_err(|_| NodeError::panic("generator lock poisoned"))?.prefill_chunk = n;
            Ok(())
        })
    }

    /// Counts of the prompt state cache.
    #[napi]
    pub fn state_cache_stats(&self, env: Env) -> napi::Result<StateCacheInfo> {
        guard_js(&env, || {
            let s = self.cache.lock().map_err(|_| NodeError::panic("state cache lock poisoned"))?.stats();
            Ok(StateCacheInfo {
                entries: s.entries as f64,
                bytes: s.bytes as f64,
                max_bytes: s.max_bytes as f64,
                hits: s.hits as f64,
                misses: s.misses as f64,
                reused_tokens: s.reused_tokens as f64,
                evictions: s.evictions as f64,
            })
        })
    }

    /// Adds a sequence: `prompt` token ids (possibly none), its sampler (as
    /// `resolveGenerateOptions` returns it), seed and token budget, and optionally `logprobs`:
    /// the number of most likely alternatives (in [0, 20]) to report with each token's
    /// log-probability. Returns its id; it produces tokens from the next `step`.
    #[napi]
    pub fn add(
        &self,
        env: Env,
        prompt: Int32Array,
        #[napi(ts_arg_type = "SamplerOptions")] sampler: Strict<SamplerOptions>,
        seed: f64,
        max_tokens: u32,
        logprobs: Option<u32>,
    ) -> napi::Result<u32> {
        guard_js(&env, || {
            let sampler = sampler_config(&sampler.0)?;
            if let Some(top) = logprobs.filter(|&t| t > MAX_TOP_LOGPROBS) {
                return Err(value_error(format!(
                    "logprobs: expected an integer in [0, {MAX_TOP_LOGPROBS}], got {top}"
                )));
            }
            let seed = seed_from("seed", seed)?;
            let g = read(&self.shared)?;
            let net = &g.as_ref().expect("checked").network;
            check_prompt(net, &prompt)?;
            let mut mailbox = self.mailbox.lock().map_err(|_| NodeError::panic("generator lock poisoned"))?;
            // The pool feeds prompts in its next step; an empty one has nothing to feed and
            // samples its first token from the start logits.
            let mut logits = vec![0.0; net.config.output_size];
            if prompt.is_empty() {
                start_logits(net, &mut logits);
            }
            let id = mailbox.next_id;
            mailbox.next_id = mailbox.next_id.wrapping_add(1);
            mailbox.joining.push(Sequence {
                id,
                pending: prompt.to_vec(),
                prompt_read: 0,
                state: net.zero_state(1),
                logits,
                sampler,
                rng: Rng::new(seed),
                context: prompt.iter().map(|&t| t as u32).collect(),
                remaining: max_tokens,
                logprobs: logprobs.map(|t| t as usize),
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

    /// Runs up to `steps` steps for every live sequence off the JS thread; resolves with the
    /// pairs `[id, token, …]` in step order and the log-probability records of the sequences
    /// that asked for them ([`StepOutput`]). A sequence leaves the pool when its budget is spent.
    #[napi(ts_return_type = "Promise<StepOutput>")]
    pub fn step(&self, steps: u32) -> AsyncTask<Guarded<StepWork>> {
        AsyncTask::new(Guarded(StepWork {
            shared: self.shared.clone(),
            mailbox: self.mailbox.clone(),
            pool: self.pool.clone(),
            cache: self.cache.clone(),
            steps,
        }))
    }

    /// [`NativeGenerator::step`] on the calling thread.
    #[napi]
    pub fn step_sync(&self, env: Env, steps: u32) -> napi::Result<StepOutput> {
        guard_js(&env, || Ok(step_output(run_steps(&self.shared, &self.mailbox, &self.pool, &self.cache, steps)?)))
    }
}

/// `NativeGenerator.step`'s work.
pub struct StepWork {
    shared: Shared,
    mailbox: Arc<Mutex<Mailbox>>,
    pool: Arc<Mutex<Pool>>,
    cache: Arc<Mutex<StateCache>>,
    steps: u32,
}

impl Work for StepWork {
    type Output = StepResult;
    type JsValue = StepOutput;
    fn compute(&mut self) -> Result<Self::Output, NodeError> {
        run_steps(&self.shared, &self.mailbox, &self.pool, &self.cache, self.steps)
    }
    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<StepOutput> {
        Ok(step_output(output))
    }
}

/// An iterator with its length known (the `b` sequences that sampled in a step, filtered out
/// of the live ones), as gathering and scattering states take.
struct Exact<I>(I, usize);

impl<I: Iterator> Iterator for Exact<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let item = self.0.next();
        if item.is_some() {
            self.1 -= 1;
        }
        item
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.1, Some(self.1))
    }
}

impl<I: Iterator> ExactSizeIterator for Exact<I> {}

fn run_steps(
    shared: &Shared,
    mailbox: &Mutex<Mailbox>,
    pool: &Mutex<Pool>,
    cache: &Mutex<StateCache>,
    steps: u32,
) -> Result<StepResult, NodeError> {
    let g = read(shared)?;
    let net = &g.as_ref().expect("checked").network;
    let mut pool = pool.lock().map_err(|_| NodeError::panic("generator lock poisoned"))?;
    let started = std::time::Instant::now();
    let pool = &mut *pool;
    let mut out = Vec::new();
    let mut logprobs = Vec::new();
    let mut failed = Vec::new();
    // Prompt ids this call has read while other sequences were generating.
    let mut prefilled = 0;
    for _ in 0..steps {
        let prefill_chunk = {
            let mut mb = mailbox.lock().map_err(|_| NodeError::panic("generator lock poisoned"))?;
            let leaving = std::mem::take(&mut mb.leaving);
            pool.live.retain(|s| !leaving.contains(&s.id));
            pool.live.extend(mb.joining.drain(..).filter(|s| !leaving.contains(&s.id)));
            mb.prefill_chunk
        };
        pool.live.retain(|s| s.remaining > 0);
        if pool.live.is_empty() {
            break;
        }
        // New sequences read their prompts (each its own length, so one at a time), through the
        // state cache, oldest first. While other sequences generate, a call reads at most
        // `prefill_chunk` prompt ids in all, so a long prompt delays their next tokens by that
        // much reading, not by all of it; with nothing generating, prompts are read whole. A
        // sequence samples its first token in the step that reads the end of its prompt. A
        // sequence whose logits cannot be sampled (not finite: a model fault) fails alone and
        // leaves.
        let mut failing: Vec<u32> = Vec::new();
        let generating = pool.live.iter().any(|s| s.pending.is_empty());
        let bounded = generating && prefill_chunk > 0;
        if pool.live.iter().any(|s| !s.pending.is_empty()) && !(bounded && prefilled >= prefill_chunk) {
            let mut budget = if bounded { prefill_chunk - prefilled } else { usize::MAX };
            let mut cache = cache.lock().map_err(|_| NodeError::panic("state cache lock poisoned"))?;
            for s in pool.live.iter_mut().filter(|s| !s.pending.is_empty()) {
                if budget == 0 {
                    break;
                }
                match cache.feed_part(
                    net,
                    &s.pending,
                    s.prompt_read,
                    budget,
                    &mut s.state,
                    &mut pool.scratch,
                    &mut s.logits,
                ) {
                    Ok(fed) => {
                        budget = budget.saturating_sub(fed.read);
                        if bounded {
                            prefilled += fed.read;
                        }
                        s.prompt_read = fed.position;
                        if fed.position == s.pending.len() {
                            s.pending = Vec::new();
                        }
                    }
                    Err(e) => {
                        failing.push(s.id);
                        failed.push(failure(s.id, e.into()));
                    }
                }
            }
        }
        // Sample the next token of every sequence whose prompt is read, each from its own distribution.
        pool.step_tokens.clear();
        for s in pool.live.iter_mut() {
            if failing.contains(&s.id) || !s.pending.is_empty() {
                continue;
            }
            let sampled = sample_next(&s.logits, &s.context, &s.sampler, &mut s.rng, &mut pool.sample_scratch)
                .and_then(|token| match s.logprobs {
                    Some(top) => {
                        // Each record starts with its count of alternatives, so a reader can
                        // skip the records of sequences it has stopped following.
                        let mark = logprobs.len();
                        logprobs.push(top.min(s.logits.len()) as f64);
                        append_logprobs(&s.logits, token, top, &mut pool.logprob_scratch, &mut logprobs)
                            .inspect_err(|_| logprobs.truncate(mark))
                            .map(|()| token)
                    }
                    None => Ok(token),
                });
            let token = match sampled {
                Ok(token) => token,
                Err(e) => {
                    failing.push(s.id);
                    failed.push(failure(s.id, e.into()));
                    continue;
                }
            };
            s.context.push(token);
            s.remaining -= 1;
            out.push(s.id as i32);
            out.push(token as i32);
            pool.step_tokens.push(token as i32);
        }
        if !failing.is_empty() {
            pool.live.retain(|s| !failing.contains(&s.id));
            if pool.live.is_empty() {
                break;
            }
        }
        // One batched step advances all that sampled (those still reading their prompts wait).
        let b = pool.step_tokens.len();
        if b == 0 {
            continue;
        }
        let v = net.config.output_size;
        let hidden = net.config.hidden_size;
        gather_states(
            Exact(pool.live.iter().filter(|s| s.pending.is_empty()).map(|s| &s.state), b),
            hidden,
            &mut pool.batched,
        );
        pool.step_logits.resize(b * v, 0.0);
        net.feed(&pool.step_tokens, b, 1, &mut pool.batched, &mut pool.scratch, &mut pool.step_logits)?;
        scatter_states(
            &pool.batched,
            hidden,
            Exact(pool.live.iter_mut().filter(|s| s.pending.is_empty()).map(|s| &mut s.state), b),
        );
        for (s, logits) in pool.live.iter_mut().filter(|s| s.pending.is_empty()).zip(pool.step_logits.chunks_exact(v)) {
            s.logits.copy_from_slice(logits);
        }
    }
    pool.live.retain(|s| s.remaining > 0);
    Ok((out, logprobs, failed, started.elapsed().as_secs_f64() * 1000.0))
}

/// Options of `NativeSession` (the TypeScript `LanguageModel.session` options).
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Seed of `next`'s sampling, an integer in [0, 2^53 - 1]. Default 0.
    pub seed: Option<f64>,
    /// Independent streams carried side by side, an integer in [1, 65536]. Default 1.
    pub rows: Option<f64>,
}
strict_object!(SessionOptions, "options", ["seed", "rows"]);

/// The most streams one session carries.
const MAX_ROWS: u64 = 1 << 16;

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
    /// A session of `options.rows` streams (default 1, a single text) starting from the zero
    /// state; `options.seed` (default 0) seeds `next`'s sampling.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        model: &NativeModel,
        #[napi(ts_arg_type = "SessionOptions")] options: Strict<SessionOptions>,
    ) -> napi::Result<Self> {
        guard_js(&env, || {
            let SessionOptions { seed, rows } = options.0;
            let rows = match rows {
                Some(r) => integer("options.rows", r, 1, MAX_ROWS)? as u32,
                None => 1,
            };
            let seed = seed.map_or(Ok(0), |s| seed_from("options.seed", s))?;
            let g = read(&model.shared)?;
            let net = &g.as_ref().expect("checked").network;
            Ok(NativeSession {
                shared: model.shared.clone(),
                rows: rows as usize,
                state: net.zero_state(rows as usize),
                scratch: InferenceScratch::default(),
                logits: vec![0.0; rows as usize * net.config.output_size],
                context: vec![Vec::new(); rows as usize],
                rng: Rng::new(seed),
                sample_scratch: SampleScratch::default(),
            })
        })
    }

    /// Streams this session carries.
    #[napi(getter)]
    pub fn rows(&self) -> u32 {
        self.rows as u32
    }

    /// Reads `tokens` `[rows, steps]` (batch-first) and returns the logits after the last step
    /// `[rows, V]`.
    #[napi]
    pub fn feed<'env>(
        &mut self,
        env: &'env Env,
        tokens: Int32Array,
        steps: u32,
    ) -> napi::Result<Float32ArraySlice<'env>> {
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

    /// Samples the next token of every row from the current logits with the caller's sampler
    /// options (checked here; unknown keys refused), reads it, and returns the tokens `[rows]`.
    #[napi]
    pub fn next(
        &mut self,
        env: Env,
        #[napi(ts_arg_type = "SamplerOptions")] options: Strict<SamplerOptions>,
    ) -> napi::Result<Int32Array> {
        guard_js(&env, || {
            let sampler = sampler_config(&options.0)?;
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

/// Beam search from a prompt, off the JS thread: hypotheses best first. `options` is checked
/// by the engine's `BeamConfig::validate` when the search starts; `cancel` stops it between
/// steps (rejecting with `ABORT_ERR`).
#[napi(ts_return_type = "Promise<Hypothesis[]>")]
pub fn beam_search_native(
    model: &NativeModel,
    prompt: Int32Array,
    #[napi(ts_arg_type = "BeamOptions")] options: Strict<BeamOptions>,
    cancel: &CancelToken,
) -> AsyncTask<Guarded<BeamWork>> {
    let BeamOptions { beams, max_tokens, length_penalty, stop_tokens } = options.0;
    AsyncTask::new(Guarded(BeamWork {
        shared: model.shared.clone(),
        prompt: prompt.to_vec(),
        config: BeamConfig { beams: beams as usize, max_tokens: max_tokens as usize, length_penalty, stop_tokens },
        cancel: cancel.flag.clone(),
    }))
}

/// `beamSearchNative`'s work.
pub struct BeamWork {
    shared: Shared,
    prompt: Vec<i32>,
    config: BeamConfig,
    /// Checked before every step of the search: the caller's AbortSignal, through a `CancelToken`.
    cancel: Arc<AtomicBool>,
}

impl Work for BeamWork {
    type Output = Vec<(Vec<u32>, f64, f64)>;
    type JsValue = Vec<Hypothesis>;
    fn compute(&mut self) -> Result<Self::Output, NodeError> {
        self.config.validate().map_err(option_error)?;
        let g = read(&self.shared)?;
        let net = &g.as_ref().expect("checked").network;
        check_prompt(net, &self.prompt)?;
        let (state, logits) = prompt_state(net, &self.prompt, &mut InferenceScratch::default())?;
        let mut model = BeamModel::new(net);
        Ok(beam_search(&mut model, state, &logits, &self.config, &self.cancel)?)
    }
    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Vec<Hypothesis>> {
        Ok(output
            .into_iter()
            .map(|(tokens, score, logprob)| Hypothesis {
                tokens: tokens.into_iter().map(|t| t as i32).collect(),
                score,
                logprob,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> NativeGenerateOptions {
        NativeGenerateOptions::default()
    }

    #[test]
    fn defaults_are_filled_in() {
        let r = resolve(NativeGenerateOptions { seed: Some(7.0), ..options() }).unwrap();
        assert_eq!((r.max_tokens, r.seed, r.beams, r.length_penalty), (200, 7.0, 0, 1.0));
        assert!(r.stop.is_empty());
        let s = sampler_config(&r.sampler).unwrap();
        assert_eq!(s, SamplerConfig::default());
        // Without a seed every call draws its own, below 2^32.
        let a = resolve(options()).unwrap().seed;
        assert!((0.0..4_294_967_296.0).contains(&a) && a.fract() == 0.0);
    }

    #[test]
    fn temperature_zero_is_greedy_and_stop_takes_one_string() {
        let r =
            resolve(NativeGenerateOptions { temperature: Some(0.0), stop: Some(Either::A("\n".into())), ..options() })
                .unwrap();
        assert!(sampler_config(&r.sampler).unwrap().is_greedy());
        assert_eq!(r.stop, vec!["\n".to_string()]);
    }

    #[test]
    fn bad_values_name_the_option_the_caller_wrote() {
        let cases: Vec<(NativeGenerateOptions, &str, JsKind)> = vec![
            (NativeGenerateOptions { max_tokens: Some(1.5), ..options() }, "options.maxTokens", JsKind::RangeError),
            (NativeGenerateOptions { max_tokens: Some(2e6), ..options() }, "options.maxTokens", JsKind::RangeError),
            (NativeGenerateOptions { temperature: Some(-1.0), ..options() }, "options.temperature", JsKind::RangeError),
            (NativeGenerateOptions { top_k: Some(-1.0), ..options() }, "options.topK", JsKind::RangeError),
            (NativeGenerateOptions { top_p: Some(0.0), ..options() }, "options.topP", JsKind::RangeError),
            (
                NativeGenerateOptions { repetition_penalty: Some(0.0), ..options() },
                "options.repetitionPenalty",
                JsKind::RangeError,
            ),
            (
                NativeGenerateOptions { presence_penalty: Some(2.5), ..options() },
                "options.presencePenalty",
                JsKind::RangeError,
            ),
            (
                NativeGenerateOptions { frequency_penalty: Some(-2.5), ..options() },
                "options.frequencyPenalty",
                JsKind::RangeError,
            ),
            (NativeGenerateOptions { seed: Some(-3.0), ..options() }, "options.seed", JsKind::RangeError),
            (NativeGenerateOptions { logprobs: Some(21.0), ..options() }, "options.logprobs", JsKind::RangeError),
            (NativeGenerateOptions { beams: Some(0.0), ..options() }, "options.beams", JsKind::RangeError),
            (NativeGenerateOptions { beams: Some(257.0), ..options() }, "options.beams", JsKind::RangeError),
            (
                NativeGenerateOptions { beams: Some(2.0), max_tokens: Some(0.0), ..options() },
                "options.maxTokens",
                JsKind::RangeError,
            ),
            (
                NativeGenerateOptions { beams: Some(2.0), length_penalty: Some(f64::NAN), ..options() },
                "options.lengthPenalty",
                JsKind::RangeError,
            ),
            (
                NativeGenerateOptions { stop: Some(Either::B(vec!["a".into(), String::new()])), ..options() },
                "options.stop[1]",
                JsKind::TypeError,
            ),
        ];
        for (o, param, kind) in cases {
            let e = resolve(o).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{}", e.message);
            assert!(e.message.starts_with(&format!("{param}: ")), "{}", e.message);
            assert_eq!(e.kind, kind, "{}", e.message);
        }
    }
}
