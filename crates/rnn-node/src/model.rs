//! `NativeModel`: a handle on one network, its tokenizer and training state, living in Rust.
//! JavaScript holds the handle; weights never cross the boundary per step.
//!
//! Concurrency: the model lives in `Arc<RwLock<Option<Slot>>>`. Inference (evaluation,
//! generation, sessions) takes a read lock, so many can run at once. Training *takes* the slot
//! out for the duration of the run (on its own thread) and puts it back at the end; meanwhile
//! every other call is refused with `ERR_RNNKIT_BUSY` rather than blocking the JS thread or seeing
//! half-updated weights.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use napi::bindgen_prelude::{AsyncTask, Float32Array, Function, Int32Array, Object};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::Env;
use napi_derive::napi;

use rnn_core::batch::{Batch, BatchInput, BatchTargets, SequenceSet, TokenStream, IGNORE_INDEX};
use rnn_core::checkpoint::{load_checkpoint, save_checkpoint, Checkpoint};
use rnn_core::config::{ModelConfig, Task};
use rnn_core::init::{init_params, InitConfig};
use rnn_core::model::evaluate::{evaluate_sequences, evaluate_stream, predict_sequences, Evaluation};
use rnn_core::model::network::Network;
use rnn_core::rng::Rng;
use rnn_core::train::{stream_mode, TrainData, TrainOptions, Trainer, ValidData};

use crate::errors::{JsKind, NodeError};
use crate::guard::{guard, guard_js, Guarded, Work};

/// Everything a model is, besides the handle.
pub(crate) struct Slot {
    pub network: Network,
    /// Optimizer, RNG and position, once the model has trained (kept for checkpoints/resume).
    pub trainer: Option<Trainer>,
    /// The tokenizer's JSON form (owned by the TypeScript layer; stored in model files).
    pub tokenizer: Option<String>,
    /// Other string metadata (training summary, user keys).
    pub metadata: BTreeMap<String, String>,
}

pub(crate) type Shared = Arc<RwLock<Option<Slot>>>;

fn busy() -> NodeError {
    NodeError::with_kind(JsKind::Error, "ERR_RNNKIT_BUSY", "the model is training; wait for fit() to settle (or abort it) before using it".into())
}

fn type_error(message: String) -> NodeError {
    NodeError::with_kind(JsKind::TypeError, "ERR_RNNKIT_TYPE", message)
}

fn range_error(message: String) -> NodeError {
    NodeError::with_kind(JsKind::RangeError, "ERR_RNNKIT_RANGE", message)
}

fn parse_json(name: &str, text: &str) -> Result<serde_json::Value, NodeError> {
    serde_json::from_str(text).map_err(|e| type_error(format!("{name}: invalid JSON ({e})")))
}

/// A non-negative integer that fits in u64 from a JS number (seeds).
pub(crate) fn seed_from(name: &str, v: f64) -> Result<u64, NodeError> {
    if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0) {
        return Err(range_error(format!("{name}: expected an integer in [0, 2^53 − 1], got {v}")));
    }
    Ok(v as u64)
}

/// Read access to an idle model, or `ERR_RNNKIT_BUSY`.
pub(crate) fn read(shared: &Shared) -> Result<RwLockReadGuard<'_, Option<Slot>>, NodeError> {
    let guard = shared.read().map_err(|_| NodeError::panic("model lock poisoned"))?;
    if guard.is_none() {
        return Err(busy());
    }
    Ok(guard)
}

fn write(shared: &Shared) -> Result<RwLockWriteGuard<'_, Option<Slot>>, NodeError> {
    let guard = shared.write().map_err(|_| NodeError::panic("model lock poisoned"))?;
    if guard.is_none() {
        return Err(busy());
    }
    Ok(guard)
}

/// Cancels native work between steps (training) or tokens (generation); wired to an AbortSignal.
#[napi]
pub struct CancelToken {
    pub(crate) flag: Arc<AtomicBool>,
}

#[napi]
impl CancelToken {
    /// A token not yet cancelled.
    #[napi(constructor)]
    pub fn new() -> Self {
        CancelToken { flag: Arc::new(AtomicBool::new(false)) }
    }

    /// Requests cancellation; work stops at its next check.
    #[napi]
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    /// Whether cancellation was requested.
    #[napi(getter)]
    pub fn cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

/// A parameter tensor's name and shape.
#[napi(object)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Vec<u32>,
}

/// The result of one `trainStep`.
#[napi(object)]
pub struct StepInfo {
    /// Mean loss of the batch before the update.
    pub loss: f64,
    /// Counted positions.
    pub count: u32,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Optimizer steps taken so far.
    pub step: f64,
}

/// Loss and accuracy of an evaluation.
#[napi(object)]
pub struct EvalInfo {
    /// Mean loss (nats per counted position, or MSE).
    pub loss: f64,
    /// Counted positions.
    pub count: f64,
    /// Accuracy for class targets.
    pub accuracy: Option<f64>,
}

impl From<Evaluation> for EvalInfo {
    fn from(e: Evaluation) -> Self {
        EvalInfo { loss: e.loss.mean(), count: e.loss.count as f64, accuracy: e.accuracy() }
    }
}

/// Padded sequences for classification, tagging and regression (batch-first).
#[napi(object)]
pub struct SequenceData {
    /// Token ids `[N, T]` (token models).
    pub tokens: Option<Int32Array>,
    /// Dense features `[N, T, I]` (dense models).
    pub values: Option<Float32Array>,
    /// Real length of each row `[N]`.
    pub lengths: Int32Array,
    /// Rows N.
    pub rows: u32,
    /// Padded length T.
    pub steps: u32,
    /// Class per row `[N]` (classification).
    pub labels: Option<Int32Array>,
    /// Class per step `[N, T]`, -100 where not counted (tagging).
    pub tags: Option<Int32Array>,
    /// Real-valued targets `[N, O]` or `[N, T, O]` (regression).
    pub targets: Option<Float32Array>,
}

/// The padded sequences of `d` with their targets; `None` targets (prediction) are filled with
/// placeholders of the task's shape that nothing reads.
fn sequence_set(net: &Network, d: &SequenceData, with_targets: bool) -> Result<SequenceSet, NodeError> {
    let features = match net.config.input {
        rnn_core::config::InputKind::Dense { input_size } => input_size,
        rnn_core::config::InputKind::Tokens { .. } => 0,
    };
    let input = match (&d.tokens, &d.values) {
        (Some(t), None) => BatchInput::Tokens(t.to_vec()),
        (None, Some(v)) => BatchInput::Dense(v.to_vec()),
        _ => return Err(type_error("data: give exactly one of tokens or values".into())),
    };
    let lengths = d
        .lengths
        .iter()
        .enumerate()
        .map(|(r, &l)| usize::try_from(l).map_err(|_| range_error(format!("lengths: row {r} has length {l}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let (rows, steps, outputs) = (d.rows as usize, d.steps as usize, net.config.output_size);
    let per_step = net.config.per_step;
    let targets = if with_targets {
        match (&d.labels, &d.tags, &d.targets) {
            (Some(l), None, None) => BatchTargets::PerRow(l.to_vec()),
            (None, Some(t), None) => BatchTargets::PerStep(t.to_vec()),
            (None, None, Some(v)) if per_step => BatchTargets::ValuesPerStep(v.to_vec()),
            (None, None, Some(v)) => BatchTargets::ValuesPerRow(v.to_vec()),
            _ => return Err(type_error("data: give exactly one of labels, tags or targets".into())),
        }
    } else {
        match net.config.task {
            Task::Classify => BatchTargets::PerRow(vec![0; rows]),
            Task::Tag | Task::LanguageModel => BatchTargets::PerStep(vec![IGNORE_INDEX; rows * steps]),
            Task::Regress if per_step => BatchTargets::ValuesPerStep(vec![0.0; rows * steps * outputs]),
            Task::Regress => BatchTargets::ValuesPerRow(vec![0.0; rows * outputs]),
        }
    };
    let set = SequenceSet { input, targets, rows, steps, lengths, features, outputs };
    set.validate()?;
    Ok(set)
}

/// Options of `fit` besides the JSON training options: where checkpoints go.
fn checkpoint_writer<'a>(
    path: Option<&'a str>,
    tokenizer: Option<&'a str>,
    metadata: &'a BTreeMap<String, String>,
) -> impl FnMut(&Network, &Trainer) -> rnn_core::Result<String> + 'a {
    move |net, trainer| match path {
        Some(p) => {
            save_checkpoint(Path::new(p), net, Some(&trainer.state()), tokenizer, &pairs(metadata))?;
            Ok(p.to_string())
        }
        None => Err(rnn_core::Error::Config("checkpoint: every is set but no path was given".into())),
    }
}

/// Metadata as the `(key, value)` pairs a file stores.
fn pairs(metadata: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// A recurrent network (every task) held natively.
#[napi]
pub struct NativeModel {
    pub(crate) shared: Shared,
}

#[napi]
impl NativeModel {
    /// A new model from its configuration (INTEROP `config` JSON), initialisation options and
    /// seed.
    #[napi(factory)]
    pub fn create(env: Env, config_json: String, init_json: String, seed: f64) -> napi::Result<NativeModel> {
        guard_js(&env, || {
            let config = ModelConfig::from_json(&parse_json("config", &config_json)?)?;
            let init = InitConfig::from_json(&parse_json("init", &init_json)?)?;
            init.validate(&config)?;
            let params = init_params(&config, &init, &mut Rng::new(seed_from("seed", seed)?))?;
            let network = Network::from_params(config, params)?;
            Ok(NativeModel::from_slot(Slot { network, trainer: None, tokenizer: None, metadata: BTreeMap::new() }))
        })
    }

    /// Loads a model file or checkpoint (INTEROP format), synchronously.
    #[napi(factory)]
    pub fn load(env: Env, path: String) -> napi::Result<NativeModel> {
        guard_js(&env, || load_slot(&path).map(NativeModel::from_slot))
    }

    /// Loads a model file or checkpoint off the JavaScript thread.
    #[napi(ts_return_type = "Promise<NativeModel>")]
    pub fn load_async(path: String) -> AsyncTask<Guarded<LoadWork>> {
        AsyncTask::new(Guarded(LoadWork { path, slot: None }))
    }

    fn from_slot(slot: Slot) -> Self {
        NativeModel { shared: Arc::new(RwLock::new(Some(slot))) }
    }

    /// The architecture as INTEROP `config` JSON.
    #[napi]
    pub fn config_json(&self, env: Env) -> napi::Result<String> {
        guard_js(&env, || Ok(read(&self.shared)?.as_ref().expect("checked").network.config.to_json().to_string()))
    }

    /// The tokenizer's JSON text, if one is attached.
    #[napi]
    pub fn tokenizer_json(&self, env: Env) -> napi::Result<Option<String>> {
        guard_js(&env, || Ok(read(&self.shared)?.as_ref().expect("checked").tokenizer.clone()))
    }

    /// Attaches (or removes) the tokenizer's JSON text, saved with the model.
    #[napi]
    pub fn set_tokenizer_json(&self, env: Env, json: Option<String>) -> napi::Result<()> {
        guard_js(&env, || {
            if let Some(text) = &json {
                parse_json("tokenizer", text)?;
            }
            write(&self.shared)?.as_mut().expect("checked").tokenizer = json;
            Ok(())
        })
    }

    /// String metadata saved with the model.
    #[napi]
    pub fn metadata(&self, env: Env) -> napi::Result<HashMap<String, String>> {
        guard_js(&env, || Ok(read(&self.shared)?.as_ref().expect("checked").metadata.clone().into_iter().collect()))
    }

    /// Sets one metadata pair (keys `format`, `format_version`, `config`, `tokenizer`, `training`
    /// are reserved).
    #[napi]
    pub fn set_metadata(&self, env: Env, key: String, value: String) -> napi::Result<()> {
        guard_js(&env, || {
            if ["format", "format_version", "config", "tokenizer", "training"].contains(&key.as_str()) {
                return Err(type_error(format!("metadata: the key \"{key}\" is reserved")));
            }
            write(&self.shared)?.as_mut().expect("checked").metadata.insert(key, value);
            Ok(())
        })
    }

    /// Number of scalar parameters.
    #[napi]
    pub fn num_params(&self, env: Env) -> napi::Result<f64> {
        guard_js(&env, || Ok(read(&self.shared)?.as_ref().expect("checked").network.params().data.len() as f64))
    }

    /// Whether `fit` is running.
    #[napi(getter)]
    pub fn is_training(&self) -> bool {
        self.shared.read().map(|g| g.is_none()).unwrap_or(false)
    }

    /// Optimizer steps taken over the model's life (0 before training).
    #[napi]
    pub fn steps_trained(&self, env: Env) -> napi::Result<f64> {
        guard_js(&env, || {
            Ok(read(&self.shared)?.as_ref().expect("checked").trainer.as_ref().map_or(0.0, |t| t.position.step as f64))
        })
    }

    /// Saves the model atomically (temp file + rename); with `checkpoint`, optimizer, RNG and
    /// position too, so training resumes exactly.
    #[napi]
    pub fn save(&self, env: Env, path: String, checkpoint: bool) -> napi::Result<()> {
        guard_js(&env, || {
            let g = read(&self.shared)?;
            let slot = g.as_ref().expect("checked");
            let state = if checkpoint { slot.trainer.as_ref().map(|t| t.state()) } else { None };
            save_checkpoint(Path::new(&path), &slot.network, state.as_ref(), slot.tokenizer.as_deref(), &pairs(&slot.metadata))?;
            Ok(())
        })
    }

    /// Names and shapes of the parameter tensors (PyTorch `state_dict` names).
    #[napi]
    pub fn tensors(&self, env: Env) -> napi::Result<Vec<TensorInfo>> {
        guard_js(&env, || {
            let g = read(&self.shared)?;
            let layout = &g.as_ref().expect("checked").network.params().layout;
            Ok(layout
                .specs()
                .iter()
                .map(|s| TensorInfo { name: s.name.clone(), shape: s.shape.iter().map(|&d| d as u32).collect() })
                .collect())
        })
    }

    /// A copy of the parameter tensor `name` (row-major).
    #[napi]
    pub fn get_tensor(&self, env: Env, name: String) -> napi::Result<Float32Array> {
        guard_js(&env, || {
            let g = read(&self.shared)?;
            let params = &g.as_ref().expect("checked").network.params();
            params.layout.require(&name)?;
            Ok(Float32Array::new(params.view(&name).to_vec()))
        })
    }

    /// Overwrites the parameter tensor `name` (same length, finite values).
    #[napi]
    pub fn set_tensor(&self, env: Env, name: String, values: Float32Array) -> napi::Result<()> {
        guard_js(&env, || {
            let mut g = write(&self.shared)?;
            let params = g.as_mut().expect("checked").network.params_mut();
            let len = params.layout.require(&name)?.len;
            rnn_core::error::check_len(&name, values.len(), len)?;
            rnn_core::error::check_finite(&name, &values)?;
            params.view_mut(&name).copy_from_slice(&values);
            Ok(())
        })
    }

    /// The gradient of `name` from the last `trainStep` (zeros before any).
    #[napi]
    pub fn get_gradient(&self, env: Env, name: String) -> napi::Result<Float32Array> {
        guard_js(&env, || {
            let g = read(&self.shared)?;
            let slot = g.as_ref().expect("checked");
            slot.network.params().layout.require(&name)?;
            Ok(match &slot.trainer {
                Some(t) => Float32Array::new(t.grads().view(&name).to_vec()),
                None => Float32Array::new(vec![0.0; slot.network.params().view(&name).len()]),
            })
        })
    }

    /// One optimizer step on a batch of token windows `inputs`/`targets` `[rows, steps]`
    /// (targets -100 = not counted), synchronously, for hand-written training loops. The trainer
    /// is created on first use from `optionsJson` and reconfigured when the options change.
    #[napi]
    pub fn train_step(&self, env: Env, inputs: Int32Array, targets: Int32Array, rows: u32, steps: u32, options_json: String) -> napi::Result<StepInfo> {
        guard_js(&env, || {
            let options = TrainOptions::from_json(&parse_json("options", &options_json)?)?;
            let mut g = write(&self.shared)?;
            let slot = g.as_mut().expect("checked");
            let trainer = ensure_trainer(&mut slot.trainer, &slot.network, options)?;
            let batch = Batch {
                input: BatchInput::Tokens(inputs.to_vec()),
                targets: BatchTargets::PerStep(targets.to_vec()),
                rows: rows as usize,
                steps: steps as usize,
                lengths: None,
            };
            let r = trainer.train_step(&mut slot.network, &batch, None)?;
            Ok(StepInfo {
                loss: r.loss.mean(),
                count: r.loss.count as u32,
                grad_norm: r.grad_norm,
                lr: r.lr as f64,
                step: trainer.position.step as f64,
            })
        })
    }

    /// Trains a language model on a token stream off the JS thread. `onEvent` receives progress
    /// events as JSON; `cancel` stops between steps; resolves with the history JSON.
    #[napi(ts_return_type = "Promise<string>")]
    #[allow(clippy::too_many_arguments)]
    pub fn fit_stream<'env>(
        &self,
        env: &'env Env,
        train: Int32Array,
        valid: Option<Int32Array>,
        options_json: String,
        on_event: Function<String, ()>,
        cancel: &CancelToken,
        checkpoint_path: Option<String>,
    ) -> napi::Result<Object<'env>> {
        let prepared = guard(|| {
            let options = TrainOptions::from_json(&parse_json("options", &options_json)?)?;
            let g = read(&self.shared)?;
            let net = &g.as_ref().expect("checked").network;
            let vocab = net.config.output_size;
            let stream = TokenStream::new(train.to_vec(), vocab, options.batch_size, options.seq_len, stream_mode(&options))?;
            let valid = match valid {
                Some(v) => {
                    if let Some(i) = v.iter().position(|&t| t < 0 || t as usize >= vocab) {
                        return Err(range_error(format!("validation: id {} at position {i} is outside the vocabulary [0, {vocab})", v[i])));
                    }
                    Some(ValidData::Stream { tokens: v.to_vec(), lanes: options.batch_size.min(16) })
                }
                None => None,
            };
            Ok((options, TrainData::Stream(stream), valid))
        });
        let (options, data, valid) = prepared.map_err(|e| e.into_napi(env))?;
        self.spawn_fit(env, options, data, valid, on_event, cancel, checkpoint_path)
    }

    /// Trains on padded sequences (classification, tagging, regression) off the JS thread.
    #[napi(ts_return_type = "Promise<string>")]
    #[allow(clippy::too_many_arguments)]
    pub fn fit_sequences<'env>(
        &self,
        env: &'env Env,
        train: SequenceData,
        valid: Option<SequenceData>,
        options_json: String,
        on_event: Function<String, ()>,
        cancel: &CancelToken,
        checkpoint_path: Option<String>,
    ) -> napi::Result<Object<'env>> {
        let prepared = guard(|| {
            let options = TrainOptions::from_json(&parse_json("options", &options_json)?)?;
            let g = read(&self.shared)?;
            let net = &g.as_ref().expect("checked").network;
            let data = TrainData::Sequences(sequence_set(net, &train, true)?);
            let valid = valid.as_ref().map(|v| sequence_set(net, v, true).map(ValidData::Sequences)).transpose()?;
            Ok((options, data, valid))
        });
        let (options, data, valid) = prepared.map_err(|e| e.into_napi(env))?;
        self.spawn_fit(env, options, data, valid, on_event, cancel, checkpoint_path)
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn_fit<'env>(
        &self,
        env: &'env Env,
        options: TrainOptions,
        data: TrainData,
        valid: Option<ValidData>,
        on_event: Function<String, ()>,
        cancel: &CancelToken,
        checkpoint_path: Option<String>,
    ) -> napi::Result<Object<'env>> {
        // Bounded queue: a slow event handler drops intermediate events instead of growing memory.
        let events = on_event.build_threadsafe_function().callee_handled::<false>().max_queue_size::<256>().build()?;
        let taken = {
            let mut g = self.shared.write().map_err(|_| NodeError::panic("model lock poisoned").into_napi(env))?;
            g.take().ok_or_else(|| busy().into_napi(env))?
        };
        let (deferred, promise) = env.create_deferred()?;
        let shared = self.shared.clone();
        let cancel = cancel.flag.clone();
        std::thread::Builder::new()
            .name("rnnkit-fit".into())
            .spawn(move || {
                let mut slot = taken;
                let outcome = guard(|| {
                    let Slot { network, trainer, tokenizer, metadata } = &mut slot;
                    let trainer = ensure_trainer(trainer, network, options)?;
                    let mut send = |e: rnn_core::train::TrainEvent| {
                        let json = serde_json::to_string(&e).expect("events serialise");
                        events.call(json, ThreadsafeFunctionCallMode::NonBlocking);
                    };
                    let mut write_checkpoint = checkpoint_writer(checkpoint_path.as_deref(), tokenizer.as_deref(), metadata);
                    let history = trainer.fit(network, &data, valid.as_ref(), &cancel, &mut send, &mut write_checkpoint)?;
                    Ok(serde_json::to_string(&history).expect("history serialises"))
                });
                if let Ok(history) = &outcome {
                    slot.metadata.insert("training_steps".into(), slot.trainer.as_ref().map_or(0, |t| t.position.step).to_string());
                    slot.metadata.insert("last_fit".into(), history.clone());
                }
                // The model goes back whatever happened, so an error or panic leaves it usable.
                if let Ok(mut g) = shared.write() {
                    *g = Some(slot);
                }
                drop(events);
                deferred.resolve(move |env| outcome.map_err(|e| e.into_napi(&env)));
            })
            .map_err(|e| napi::Error::from_reason(format!("could not start the training thread: {e}")))?;
        Ok(promise)
    }

    /// Evaluates a language model on a token stream with carried state (INTEROP protocol with
    /// `lanes = 1`), off the JS thread.
    #[napi(ts_return_type = "Promise<EvalInfo>")]
    pub fn evaluate_stream(&self, tokens: Int32Array, lanes: u32, chunk: u32) -> AsyncTask<Guarded<EvalWork>> {
        AsyncTask::new(Guarded(EvalWork { shared: self.shared.clone(), input: EvalInput::Stream(tokens.to_vec(), lanes as usize, chunk as usize) }))
    }

    /// [`NativeModel::evaluate_stream`] on the calling thread.
    #[napi]
    pub fn evaluate_stream_sync(&self, env: Env, tokens: Int32Array, lanes: u32, chunk: u32) -> napi::Result<EvalInfo> {
        guard_js(&env, || {
            let g = read(&self.shared)?;
            Ok(evaluate_stream(&g.as_ref().expect("checked").network, &tokens, lanes as usize, chunk as usize)?.into())
        })
    }

    /// Evaluates padded sequences (classification, tagging, regression), off the JS thread.
    #[napi(ts_return_type = "Promise<EvalInfo>")]
    pub fn evaluate_sequences(&self, env: Env, data: SequenceData, batch_size: u32) -> napi::Result<AsyncTask<Guarded<EvalWork>>> {
        let set = guard(|| {
            let g = read(&self.shared)?;
            sequence_set(&g.as_ref().expect("checked").network, &data, true)
        })
        .map_err(|e| e.into_napi(&env))?;
        Ok(AsyncTask::new(Guarded(EvalWork { shared: self.shared.clone(), input: EvalInput::Sequences(set, batch_size as usize) })))
    }

    /// Outputs for padded sequences: per-row tasks `[N, C]`, per-step tasks `[N, T, C]`
    /// (batch-first), synchronously. Logits for classes; values for regression.
    #[napi]
    pub fn predict(&self, env: Env, data: SequenceData) -> napi::Result<Float32Array> {
        guard_js(&env, || {
            let g = read(&self.shared)?;
            let net = &g.as_ref().expect("checked").network;
            Ok(Float32Array::new(predict_sequences(net, &sequence_set(net, &data, false)?, 64)?))
        })
    }
}

/// The trainer of `slot`, created with `options` or reconfigured to them.
fn ensure_trainer<'a>(trainer: &'a mut Option<Trainer>, network: &Network, options: TrainOptions) -> rnn_core::Result<&'a mut Trainer> {
    match trainer {
        Some(t) => {
            if t.options != options {
                t.set_options(options)?;
            }
        }
        None => *trainer = Some(Trainer::new(network, options)?),
    }
    Ok(trainer.as_mut().expect("set above"))
}

fn load_slot(path: &str) -> Result<Slot, NodeError> {
    let Checkpoint { network, trainer, tokenizer, metadata } = load_checkpoint(Path::new(path))?;
    let trainer = match trainer {
        Some(state) => Some(Trainer::resume(&network, state)?),
        None => None,
    };
    Ok(Slot { network, trainer, tokenizer, metadata })
}

/// `loadAsync`'s work.
pub struct LoadWork {
    path: String,
    slot: Option<Slot>,
}

impl Work for LoadWork {
    type Output = ();
    type JsValue = NativeModel;
    fn compute(&mut self) -> Result<(), NodeError> {
        self.slot = Some(load_slot(&self.path)?);
        Ok(())
    }
    fn resolve(&mut self, _env: Env, _output: ()) -> napi::Result<NativeModel> {
        Ok(NativeModel::from_slot(self.slot.take().expect("compute succeeded")))
    }
}

enum EvalInput {
    Stream(Vec<i32>, usize, usize),
    Sequences(SequenceSet, usize),
}

/// `evaluateStream` / `evaluateSequences` work.
pub struct EvalWork {
    shared: Shared,
    input: EvalInput,
}

impl Work for EvalWork {
    type Output = Evaluation;
    type JsValue = EvalInfo;
    fn compute(&mut self) -> Result<Evaluation, NodeError> {
        let g = read(&self.shared)?;
        let net = &g.as_ref().expect("checked").network;
        Ok(match &self.input {
            EvalInput::Stream(tokens, lanes, chunk) => evaluate_stream(net, tokens, *lanes, *chunk)?,
            EvalInput::Sequences(set, batch) => evaluate_sequences(net, set, *batch)?,
        })
    }
    fn resolve(&mut self, _env: Env, output: Evaluation) -> napi::Result<EvalInfo> {
        Ok(output.into())
    }
}
