//! `NativeModel`: a handle on one network, its tokenizer and training state, living in Rust.
//! JavaScript holds the handle; weights never cross the boundary per step.
//!
//! Concurrency: the model lives in `Arc<RwLock<Option<Slot>>>`. Inference (evaluation,
//! generation, sessions) takes a read lock, so many can run at once. Training *takes* the slot
//! out for the duration of the run (on its own thread) and puts it back at the end; meanwhile
//! every other call is refused with `ERR_RNNKIT_BUSY` rather than blocking the JS thread or seeing
//! half-updated weights.

use rnn_core::kernels::precision::Precision;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use napi::bindgen_prelude::{AsyncTask, Float32Array, Function, Int32Array, Object};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::Env;
use napi_derive::napi;
use serde_json::Value;

use rnn_core::batch::{Batch, BatchInput, BatchTargets, SequenceSet, IGNORE_INDEX};
use rnn_core::checkpoint::{load_checkpoint, save_checkpoint, Checkpoint};
use rnn_core::config::{ModelConfig, Task};
use rnn_core::import::{import_state_dict, StateDictNames as ImportNames};
use rnn_core::init::{init_params, InitConfig};
use rnn_core::metrics::softmax_into;
use rnn_core::model::evaluate::{evaluate_sequences, evaluate_stream, predict_sequences, Evaluation};
use rnn_core::model::network::Network;
use rnn_core::rng::Rng;
use rnn_core::token_store::TokenSlice;
use rnn_core::train::{History, StopReason, TrainData, TrainEvent, TrainOptions, Trainer, ValidData};
use rnn_core::trainable::Trainable;

use crate::dataset::{row_set, NativeSequenceDataset, NativeTokenBuffer, NativeTokenDataset, RowShape, SequenceData};
use crate::errors::{JsKind, NodeError};
use crate::guard::{guard, guard_js, Guarded, Work};
use crate::model_options::{model_config, ModelOptions};
use crate::options::Strict;
use crate::snapshot::{SnapshotContext, SnapshotQueue, SnapshotRequest};
use crate::train_options::{train_options, within, FitOptions};

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
    NodeError::with_kind(
        JsKind::Error,
        "ERR_RNNKIT_BUSY",
        "the model is training; wait for fit() to settle (or abort it) before using it".into(),
    )
}

fn type_error(message: String) -> NodeError {
    NodeError::with_kind(JsKind::TypeError, "ERR_RNNKIT_TYPE", message)
}

fn range_error(message: String) -> NodeError {
    NodeError::with_kind(JsKind::RangeError, "ERR_RNNKIT_RANGE", message)
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

/// Loss and metrics of an evaluation, computed by the engine.
#[napi(object)]
pub struct EvalInfo {
    /// Mean loss (nats per counted position, or MSE).
    pub loss: f64,
    /// Counted positions (tokens, rows or steps; regression: predicted values).
    pub count: f64,
    /// Accuracy for class targets.
    pub accuracy: Option<f64>,
    /// Class targets of a row set: `[C, C]` row-major counts of (true, predicted).
    pub confusion: Option<Vec<f64>>,
    /// Per class: precision, recall, F1 and support (class-id order).
    pub per_class: Option<Vec<ClassScoresInfo>>,
    /// Unweighted mean of the per-class F1.
    pub macro_f1: Option<f64>,
    /// Regression: mean squared error.
    pub mse: Option<f64>,
    /// Regression: mean absolute error.
    pub mae: Option<f64>,
    /// Speech: word error rate of the greedy transcripts (word edits over reference words).
    pub wer: Option<f64>,
    /// Speech: character error rate (character edits over reference characters).
    pub cer: Option<f64>,
}

/// Precision, recall and F1 of one class.
#[napi(object)]
pub struct ClassScoresInfo {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Counted positions whose true class is this one.
    pub support: f64,
}

impl From<Evaluation> for EvalInfo {
    fn from(e: Evaluation) -> Self {
        let per_class = e.confusion.as_ref().map(|c| {
            c.per_class()
                .into_iter()
                .map(|s| ClassScoresInfo {
                    precision: s.precision,
                    recall: s.recall,
                    f1: s.f1,
                    support: s.support as f64,
                })
                .collect()
        });
        EvalInfo {
            loss: e.loss.mean(),
            count: e.regression.map_or(e.loss.count as f64, |r| r.count as f64),
            accuracy: e.accuracy(),
            confusion: e.confusion.as_ref().map(|c| c.counts().iter().map(|&n| n as f64).collect()),
            per_class,
            macro_f1: e.confusion.as_ref().map(|c| c.macro_f1()),
            mse: e.regression.map(|r| r.mse()),
            mae: e.regression.map(|r| r.mae()),
            wer: e.transcripts.map(|t| t.wer()),
            cer: e.transcripts.map(|t| t.cer()),
        }
    }
}

/// What a prediction returns: the head's outputs and, for class heads, the probabilities and
/// the most probable class of each counted position.
#[napi(object)]
pub struct Prediction {
    /// Per-row heads `[N, C]`, per-step heads `[N, T, C]` (zeros at padded steps): logits of
    /// class heads, values of regression heads.
    pub outputs: Float32Array,
    /// Class heads: softmax of `outputs`, same layout.
    pub probabilities: Option<Float32Array>,
    /// Class heads: the argmax of each row (`[N]`) or step (`[N, T]`).
    pub classes: Option<Int32Array>,
}

/// A progress event of `fit`.
#[napi(object)]
pub struct NativeTrainEvent {
    /// `'step' | 'validation' | 'checkpoint' | 'checkpointError'`.
    #[napi(js_name = "type", ts_type = "'step' | 'validation' | 'checkpoint' | 'checkpointError'")]
    pub kind: String,
    /// Optimizer steps over the model's life after this event's step.
    pub step: f64,
    pub total_steps: Option<f64>,
    pub epoch: Option<f64>,
    pub epoch_progress: Option<f64>,
    /// Mean training loss since the previous step event.
    pub loss: Option<f64>,
    pub lr: Option<f64>,
    pub grad_norm: Option<f64>,
    /// Counted positions (tokens, rows or steps) per second since the start.
    pub tokens_per_second: Option<f64>,
    pub elapsed: Option<f64>,
    pub eta: Option<f64>,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub val_count: Option<f64>,
    pub path: Option<String>,
    /// Why a checkpoint write failed (`checkpointError`).
    pub message: Option<String>,
}

impl From<TrainEvent> for NativeTrainEvent {
    fn from(e: TrainEvent) -> Self {
        let mut out = NativeTrainEvent {
            kind: String::new(),
            step: 0.0,
            total_steps: None,
            epoch: None,
            epoch_progress: None,
            loss: None,
            lr: None,
            grad_norm: None,
            tokens_per_second: None,
            elapsed: None,
            eta: None,
            val_loss: None,
            val_accuracy: None,
            val_count: None,
            path: None,
            message: None,
        };
        match e {
            TrainEvent::Step {
                step,
                total_steps,
                epoch,
                epoch_progress,
                loss,
                lr,
                grad_norm,
                tokens_per_second,
                elapsed,
                eta,
            } => {
                out.kind = "step".into();
                out.step = step as f64;
                out.total_steps = Some(total_steps as f64);
                out.epoch = Some(epoch as f64);
                out.epoch_progress = Some(epoch_progress);
                out.loss = Some(loss);
                out.lr = Some(lr as f64);
                out.grad_norm = Some(grad_norm);
                out.tokens_per_second = Some(tokens_per_second);
                out.elapsed = Some(elapsed);
                out.eta = Some(eta);
            }
            TrainEvent::Validation { step, epoch, val_loss, val_accuracy, val_count, elapsed } => {
                out.kind = "validation".into();
                out.step = step as f64;
                out.epoch = Some(epoch as f64);
                out.val_loss = Some(val_loss);
                out.val_accuracy = val_accuracy;
                out.val_count = Some(val_count as f64);
                out.elapsed = Some(elapsed);
            }
            TrainEvent::Checkpoint { step, path } => {
                out.kind = "checkpoint".into();
                out.step = step as f64;
                out.path = Some(path);
            }
            TrainEvent::CheckpointError { step, message } => {
                out.kind = "checkpointError".into();
                out.step = step as f64;
                out.message = Some(message);
            }
        }
        out
    }
}

/// The record of one `fit` call: every step's loss, every validation.
#[napi(object)]
pub struct NativeHistory {
    /// Step numbers (model's life-long counter), one per step of this call.
    pub steps: Vec<f64>,
    /// Loss of each of those steps (NaN for a skipped non-finite batch).
    pub loss: Vec<f64>,
    pub val_steps: Vec<f64>,
    pub val_loss: Vec<f64>,
    /// Optimizer steps taken in this call.
    pub steps_done: f64,
    /// Counted training positions processed.
    pub tokens: f64,
    pub elapsed: f64,
    #[napi(ts_type = "'completed' | 'time_limit' | 'max_steps' | 'aborted' | 'early_stopping'")]
    pub stop_reason: String,
    /// With early stopping or best checkpoints: the step of the best validation.
    pub best_step: Option<f64>,
    /// The validation loss at `bestStep`.
    pub best_val_loss: Option<f64>,
    /// The validation accuracy at `bestStep`, when `earlyStopping.monitor` is `'valAccuracy'`.
    pub best_val_accuracy: Option<f64>,
}

impl From<&History> for NativeHistory {
    fn from(h: &History) -> Self {
        let f = |v: &[u64]| v.iter().map(|&x| x as f64).collect();
        NativeHistory {
            steps: f(&h.steps),
            loss: h.loss.clone(),
            val_steps: f(&h.val_steps),
            val_loss: h.val_loss.clone(),
            steps_done: h.steps_done as f64,
            tokens: h.tokens as f64,
            elapsed: h.elapsed,
            stop_reason: match h.stop_reason {
                StopReason::Completed => "completed",
                StopReason::TimeLimit => "time_limit",
                StopReason::MaxSteps => "max_steps",
                StopReason::Aborted => "aborted",
                StopReason::EarlyStopping => "early_stopping",
            }
            .into(),
            best_step: h.best_step.map(|s| s as f64),
            best_val_loss: h.best_val_loss,
            best_val_accuracy: h.best_val_accuracy,
        }
    }
}

/// The shape facts of `net`'s rows.
fn shape_of(net: &Network) -> RowShape {
    let features = match net.config.input {
        rnn_core::config::InputKind::Dense { input_size } => input_size,
        rnn_core::config::InputKind::Tokens { .. } => 0,
    };
    RowShape {
        features,
        outputs: if net.config.task == Task::Regress { net.config.output_size } else { 0 },
        per_step: net.config.per_step,
    }
}

/// The padded sequences of `d` for `net`; without targets (prediction), placeholders of the
/// task's shape that nothing reads.
fn sequence_set(net: &Network, d: &SequenceData, with_targets: bool) -> Result<SequenceSet, NodeError> {
    let (rows, steps, outputs) = (d.rows as usize, d.steps as usize, net.config.output_size);
    let placeholder = (!with_targets).then(|| match net.config.task {
        Task::Classify => BatchTargets::PerRow(vec![0; rows]),
        Task::Tag | Task::LanguageModel => BatchTargets::PerStep(vec![IGNORE_INDEX; rows * steps]),
        Task::Regress if net.config.per_step => BatchTargets::ValuesPerStep(vec![0.0; rows * steps * outputs]),
        Task::Regress => BatchTargets::ValuesPerRow(vec![0.0; rows * outputs]),
        Task::Speech => BatchTargets::Transcripts { labels: Vec::new(), max_len: 0, lengths: vec![0; rows] },
    });
    if with_targets && d.labels.is_none() && d.tags.is_none() && d.targets.is_none() && d.transcripts.is_none() {
        return Err(type_error("data: give exactly one of labels, tags, targets or transcripts".into()));
    }
    row_set(d, shape_of(net), placeholder)
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
pub(crate) fn pairs(metadata: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Module names of a PyTorch model for `importStateDict` (`"encoder"` for `encoder.weight`);
/// an absent one is inferred from the tensor shapes.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct StateDictNames {
    /// The `nn.Embedding` (token input only).
    pub embedding: Option<String>,
    /// The `nn.RNN`/`nn.LSTM`/`nn.GRU`; `""` for a recurrent module saved on its own.
    pub rnn: Option<String>,
    /// The output `nn.Linear`.
    pub head: Option<String>,
    /// The bias-free `nn.Linear` of the skip term (`skip: true` only).
    pub skip: Option<String>,
}
crate::strict_object!(StateDictNames, "options.names", ["embedding", "rnn", "head", "skip"]);

/// A recurrent network (every task) held natively.
#[napi]
pub struct NativeModel {
    pub(crate) shared: Shared,
    /// Snapshots requested while the model trains, written by the training thread.
    snapshots: SnapshotQueue,
}

#[napi]
impl NativeModel {
    /// A new model of `task` (`language_model`, `classify`, `tag`, `regress`) from its
    /// architecture options (each task's defaults fill the rest; the engine validates).
    #[napi(factory)]
    pub fn create(
        env: Env,
        task: String,
        #[napi(ts_arg_type = "ModelOptions")] options: Strict<ModelOptions>,
    ) -> napi::Result<NativeModel> {
        guard_js(&env, || {
            let (config, seed) = model_config(&task, &options.0)?;
            let init = init_config(options.0.init.map(|s| s.0))?;
            init.validate(&config).map_err(|e| crate::train_options::within("options.init", e))?;
            let params = init_params(&config, &init, &mut Rng::new(seed))?;
            let network = Network::from_params(config, params)?;
            Ok(NativeModel::from_slot(Slot { network, trainer: None, tokenizer: None, metadata: BTreeMap::new() }))
        })
    }

    /// A model of `config` (docs/FORMAT.md's `config` object, snake_case keys) whose parameters
    /// come from a plain PyTorch `state_dict` file (`safetensors.torch.save_file`), its module
    /// names inferred from the shapes or given in `names` (`rnn_core::import`). No tokenizer or
    /// metadata: the caller adds them.
    #[napi(factory)]
    pub fn import_state_dict(
        env: Env,
        path: String,
        #[napi(ts_arg_type = "Record<string, unknown>")] config: Value,
        #[napi(ts_arg_type = "StateDictNames")] names: Strict<StateDictNames>,
    ) -> napi::Result<NativeModel> {
        guard_js(&env, || {
            let config = ModelConfig::from_json(&config)?;
            let n = names.0;
            let names = ImportNames { embedding: n.embedding, rnn: n.rnn, head: n.head, skip: n.skip };
            let params = import_state_dict(Path::new(&path), &config, &names)?;
            let network = Network::from_params(config, params)?;
            Ok(NativeModel::from_slot(Slot { network, trainer: None, tokenizer: None, metadata: BTreeMap::new() }))
        })
    }

    /// Loads a model file or checkpoint (rnnkit's safetensors format, docs/FORMAT.md), synchronously.
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
        NativeModel { shared: Arc::new(RwLock::new(Some(slot))), snapshots: SnapshotQueue::default() }
    }

    /// The architecture: the `config` object of docs/FORMAT.md (snake_case keys as in the file).
    #[napi(ts_return_type = "Record<string, unknown>")]
    pub fn config(&self, env: Env) -> napi::Result<Value> {
        guard_js(&env, || Ok(read(&self.shared)?.as_ref().expect("checked").network.config.to_json()))
    }

    /// The tokenizer attached to the model (its JSON form as an object), if any.
    #[napi(ts_return_type = "Record<string, unknown> | null")]
    pub fn tokenizer(&self, env: Env) -> napi::Result<Option<Value>> {
        guard_js(&env, || {
            let g = read(&self.shared)?;
            match &g.as_ref().expect("checked").tokenizer {
                Some(text) => serde_json::from_str(text).map(Some).map_err(|e| {
                    NodeError::with_kind(
                        JsKind::Error,
                        "ERR_RNNKIT_FORMAT",
                        format!("tokenizer: the model's tokenizer metadata is not valid JSON ({e})"),
                    )
                }),
                None => Ok(None),
            }
        })
    }

    /// Attaches (or removes, with null) the tokenizer, saved with the model.
    #[napi(ts_args_type = "tokenizer: Record<string, unknown> | null")]
    pub fn set_tokenizer(&self, env: Env, tokenizer: Option<Value>) -> napi::Result<()> {
        guard_js(&env, || {
            if let Some(t) = &tokenizer {
                if !t.is_object() {
                    return Err(type_error("tokenizer: expected an object".into()));
                }
            }
            write(&self.shared)?.as_mut().expect("checked").tokenizer = tokenizer.map(|t| t.to_string());
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

    /// Sets a metadata entry whose value is structured data (label lists, feature statistics):
    /// stored in the file as its JSON text, so the file format stays a string map.
    #[napi(ts_args_type = "key: string, value: unknown")]
    pub fn set_metadata_value(&self, env: Env, key: String, value: Value) -> napi::Result<()> {
        guard_js(&env, || {
            if ["format", "format_version", "config", "tokenizer", "training"].contains(&key.as_str()) {
                return Err(type_error(format!("metadata: the key \"{key}\" is reserved")));
            }
            write(&self.shared)?.as_mut().expect("checked").metadata.insert(key, value.to_string());
            Ok(())
        })
    }

    /// A metadata entry written by [`NativeModel::set_metadata_value`] (or any JSON text), parsed;
    /// `undefined` when the file has no such key.
    #[napi(ts_return_type = "unknown")]
    pub fn metadata_value(&self, env: Env, key: String) -> napi::Result<Option<Value>> {
        guard_js(&env, || {
            let g = read(&self.shared)?;
            match g.as_ref().expect("checked").metadata.get(&key) {
                None => Ok(None),
                Some(text) => serde_json::from_str(text).map(Some).map_err(|e| {
                    NodeError::with_kind(
                        JsKind::Error,
                        "ERR_RNNKIT_FORMAT",
                        format!("model file: metadata {key} is not valid JSON ({e})"),
                    )
                }),
            }
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

    /// The precision of the weights generation and evaluation use: `f32`, `bf16` or `int8`.
    #[napi(ts_return_type = "'f32' | 'bf16' | 'int8'")]
    pub fn precision(&self, env: Env) -> napi::Result<String> {
        guard_js(&env, || Ok(read(&self.shared)?.as_ref().expect("checked").network.precision().name().to_owned()))
    }

    /// Sets the precision of the weights generation and evaluation use (the engine refuses an
    /// unknown name, and reduced precision for a model that is not a language model).
    #[napi]
    pub fn set_precision(&self, env: Env, precision: String) -> napi::Result<()> {
        guard_js(&env, || {
            let precision = Precision::parse(&precision)?;
            write(&self.shared)?.as_mut().expect("checked").network.set_precision(precision)?;
            Ok(())
        })
    }

    /// Bytes of the weights packed for inference at the current precision (packed on first
    /// use: 0 before the first generation or evaluation).
    #[napi]
    pub fn inference_bytes(&self, env: Env) -> napi::Result<f64> {
        guard_js(&env, || Ok(read(&self.shared)?.as_ref().expect("checked").network.inference_bytes() as f64))
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
            save_checkpoint(
                Path::new(&path),
                &slot.network,
                state.as_ref(),
                slot.tokenizer.as_deref(),
                &pairs(&slot.metadata),
            )?;
            Ok(())
        })
    }

    /// [`NativeModel::save`] that also works while the model trains (from a progress callback):
    /// then the file holds the weights of the step that finishes next, written by the training
    /// thread, and the promise settles once it is on disk.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn save_snapshot<'env>(&self, env: &'env Env, path: String, checkpoint: bool) -> napi::Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred()?;
        let request = SnapshotRequest { path, checkpoint, deferred };
        // The read lock is held while queueing, so the training thread, which takes the write
        // lock to put the model back and then drains the queue, cannot miss this request.
        let g = self.shared.read().map_err(|_| NodeError::panic("model lock poisoned").into_napi(env))?;
        match g.as_ref() {
            Some(slot) => SnapshotContext { tokenizer: slot.tokenizer.clone(), metadata: slot.metadata.clone() }.write(
                request,
                &slot.network,
                slot.trainer.as_ref(),
            ),
            None => self.snapshots.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(request),
        }
        Ok(promise)
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
    /// is created on first use and reconfigured when the options change.
    #[napi]
    pub fn train_step(
        &self,
        env: Env,
        inputs: Int32Array,
        targets: Int32Array,
        rows: u32,
        steps: u32,
        #[napi(ts_arg_type = "FitOptions")] options: Strict<FitOptions>,
    ) -> napi::Result<StepInfo> {
        guard_js(&env, || {
            let mut g = write(&self.shared)?;
            let slot = g.as_mut().expect("checked");
            let steps_before = slot.trainer.as_ref().map_or(0, |t| t.position.step);
            let order = TrainOptions {
                batch_size: rows as usize,
                seq_len: steps as usize,
                shuffle: false,
                ..TrainOptions::default()
            };
            let options = train_options(&options.0, &order, steps_before)?;
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

    /// Trains a language model on a token dataset off the JS thread, in the dataset's data
    /// order. `onEvent` receives progress events; `cancel` stops between steps; resolves with
    /// the history.
    #[napi(ts_return_type = "Promise<NativeHistory>")]
    pub fn fit_tokens<'env>(
        &self,
        env: &'env Env,
        data: &NativeTokenDataset,
        #[napi(ts_arg_type = "FitOptions")] options: Strict<FitOptions>,
        on_event: Function<NativeTrainEvent, ()>,
        cancel: &CancelToken,
    ) -> napi::Result<Object<'env>> {
        let prepared = guard(|| {
            let g = read(&self.shared)?;
            let slot = g.as_ref().expect("checked");
            let vocab = slot.network.config.output_size;
            if slot.network.config.task != Task::LanguageModel {
                return Err(type_error(format!(
                    "data: a token dataset trains a language model, this model's task is \"{}\"",
                    slot.network.config.task.name()
                )));
            }
            if data.vocab_size != vocab {
                return Err(NodeError::type_error(
                    "ERR_RNNKIT_VOCAB",
                    format!(
                        "data: the dataset's ids are of a vocabulary of {}, the model's has {vocab}",
                        data.vocab_size
                    ),
                ));
            }
            let steps_before = slot.trainer.as_ref().map_or(0, |t| t.position.step);
            let opts = train_options(&options.0, &data.order, steps_before)?;
            let valid = (data.validation_tokens.len() >= 2)
                .then(|| ValidData::Stream { tokens: data.validation_tokens.clone(), lanes: opts.batch_size.min(16) });
            opts.check_validation(&slot.network, valid.as_ref()).map_err(|e| within("options", e))?;
            Ok((opts, data.train.clone(), valid))
        });
        let (opts, train, valid) = prepared.map_err(|e| e.into_napi(env))?;
        let checkpoint = options.0.checkpoint.map(|c| c.0.path);
        self.spawn_fit(env, FitRun { options: opts, data: train, valid, checkpoint_path: checkpoint }, on_event, cancel)
    }

    /// Trains on a row dataset (classification, tagging, regression) off the JS thread, in the
    /// dataset's data order; validates on `validation`'s rows when given, else on the dataset's
    /// validation split.
    #[napi(ts_return_type = "Promise<NativeHistory>")]
    pub fn fit_sequences<'env>(
        &self,
        env: &'env Env,
        data: &NativeSequenceDataset,
        validation: Option<&NativeSequenceDataset>,
        #[napi(ts_arg_type = "FitOptions")] options: Strict<FitOptions>,
        on_event: Function<NativeTrainEvent, ()>,
        cancel: &CancelToken,
    ) -> napi::Result<Object<'env>> {
        let prepared = guard(|| {
            let g = read(&self.shared)?;
            let slot = g.as_ref().expect("checked");
            check_shape("data", data, &slot.network)?;
            if let Some(v) = validation {
                check_shape("options.validation", v, &slot.network)?;
            }
            let steps_before = slot.trainer.as_ref().map_or(0, |t| t.position.step);
            let opts = train_options(&options.0, &data.order, steps_before)?;
            let valid = match validation {
                Some(v) => match &v.train {
                    TrainData::Sequences(set) => Some(merge_parts(set, v.validation_data())),
                    TrainData::Stream(_) => unreachable!("a row dataset holds rows"),
                },
                None => data.validation_data().cloned(),
            };
            let valid = valid.map(ValidData::Sequences);
            opts.check_validation(&slot.network, valid.as_ref()).map_err(|e| within("options", e))?;
            Ok((opts, data.train.clone(), valid))
        });
        let (opts, train, valid) = prepared.map_err(|e| e.into_napi(env))?;
        let checkpoint = options.0.checkpoint.map(|c| c.0.path);
        self.spawn_fit(env, FitRun { options: opts, data: train, valid, checkpoint_path: checkpoint }, on_event, cancel)
    }

    fn spawn_fit<'env>(
        &self,
        env: &'env Env,
        run: FitRun,
        on_event: Function<NativeTrainEvent, ()>,
        cancel: &CancelToken,
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
        let snapshots = self.snapshots.clone();
        let context = SnapshotContext { tokenizer: taken.tokenizer.clone(), metadata: taken.metadata.clone() };
        std::thread::Builder::new()
            .name("rnnkit-fit".into())
            .spawn(move || {
                let mut slot = taken;
                let FitRun { options, data, valid, checkpoint_path } = run;
                let outcome = guard(|| {
                    let Slot { network, trainer, tokenizer, metadata } = &mut slot;
                    let trainer = ensure_trainer(trainer, network, options)?;
                    let (queue, ctx) = (snapshots.clone(), context.clone());
                    trainer.set_between_steps(Some(Box::new(move |net, t| ctx.drain(&queue, net, Some(t)))));
                    let mut send = |e: TrainEvent| {
                        // The run's last event must arrive: block for room rather than drop it.
                        let mode = if matches!(e, TrainEvent::Step { .. }) {
                            ThreadsafeFunctionCallMode::NonBlocking
                        } else {
                            ThreadsafeFunctionCallMode::Blocking
                        };
                        events.call(NativeTrainEvent::from(e), mode);
                    };
                    let mut write_checkpoint =
                        checkpoint_writer(checkpoint_path.as_deref(), tokenizer.as_deref(), metadata);
                    let history =
                        trainer.fit(network, &data, valid.as_ref(), &cancel, &mut send, &mut write_checkpoint);
                    trainer.set_between_steps(None);
                    Ok(history?)
                });
                if let Ok(history) = &outcome {
                    slot.metadata.insert(
                        "training_steps".into(),
                        slot.trainer.as_ref().map_or(0, |t| t.position.step).to_string(),
                    );
                    slot.metadata.insert("last_fit".into(), last_fit(history).to_string());
                }
                // The model goes back whatever happened, so an error or panic leaves it usable.
                if let Ok(mut g) = shared.write() {
                    // Snapshots asked for after the last step: written from the model as it is
                    // returned (the best weights when early stopping restored them).
                    context.drain(&snapshots, &slot.network, slot.trainer.as_ref());
                    *g = Some(slot);
                }
                drop(events);
                deferred.resolve(move |env| outcome.map(|h| NativeHistory::from(&h)).map_err(|e| e.into_napi(&env)));
            })
            .map_err(|e| napi::Error::from_reason(format!("could not start the training thread: {e}")))?;
        Ok(promise)
    }

    /// Evaluates a language model on a token stream with carried state, off the JS thread:
    /// `lanes` contiguous lanes read as one batch (1: the stateful protocol of docs/FORMAT.md;
    /// undefined: the engine's default for the stream's length), `chunk` steps per native batch;
    /// `cancel` stops it between chunks (rejecting with `ABORT_ERR`).
    #[napi(ts_return_type = "Promise<EvalInfo>")]
    pub fn evaluate_stream(
        &self,
        tokens: Int32Array,
        lanes: Option<u32>,
        chunk: u32,
        cancel: Option<&CancelToken>,
    ) -> AsyncTask<Guarded<EvalWork>> {
        AsyncTask::new(Guarded(EvalWork {
            shared: self.shared.clone(),
            input: EvalInput::Stream(tokens.to_vec(), lanes.map(|l| l as usize), chunk as usize),
            cancel: cancel.map(|c| c.flag.clone()),
        }))
    }

    /// [`NativeModel::evaluate_stream`] on the ids of a token buffer (a text encoded chunk by
    /// chunk), read in place.
    #[napi(ts_return_type = "Promise<EvalInfo>")]
    pub fn evaluate_buffer(
        &self,
        env: Env,
        tokens: &NativeTokenBuffer,
        lanes: Option<u32>,
        chunk: u32,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<AsyncTask<Guarded<EvalWork>>> {
        let ids = tokens.shared().map_err(|e| e.into_napi(&env))?;
        Ok(AsyncTask::new(Guarded(EvalWork {
            shared: self.shared.clone(),
            input: EvalInput::Buffer(ids, lanes.map(|l| l as usize), chunk as usize),
            cancel: cancel.map(|c| c.flag.clone()),
        })))
    }

    /// [`NativeModel::evaluate_stream`] on the calling thread.
    #[napi]
    pub fn evaluate_stream_sync(
        &self,
        env: Env,
        tokens: Int32Array,
        lanes: Option<u32>,
        chunk: u32,
    ) -> napi::Result<EvalInfo> {
        guard_js(&env, || {
            let g = read(&self.shared)?;
            let net = &g.as_ref().expect("checked").network;
            Ok(evaluate_stream(net, &tokens[..], lanes.map(|l| l as usize), chunk as usize, None)?.into())
        })
    }

    /// Loss and metrics (accuracy, confusion, per-class F1; MSE/MAE) of padded sequences, off
    /// the JS thread; `cancel` stops it between batches (rejecting with `ABORT_ERR`).
    #[napi(ts_return_type = "Promise<EvalInfo>")]
    pub fn evaluate_sequences(
        &self,
        env: Env,
        data: SequenceData,
        batch_size: u32,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<AsyncTask<Guarded<EvalWork>>> {
        let set = guard(|| {
            let g = read(&self.shared)?;
            sequence_set(&g.as_ref().expect("checked").network, &data, true)
        })
        .map_err(|e| e.into_napi(&env))?;
        Ok(AsyncTask::new(Guarded(EvalWork {
            shared: self.shared.clone(),
            input: EvalInput::Sequences(set, batch_size as usize),
            cancel: cancel.map(|c| c.flag.clone()),
        })))
    }

    /// Loss and metrics of a split of a row dataset, off the JS thread; `cancel` stops it between
    /// batches (rejecting with `ABORT_ERR`).
    #[napi(ts_return_type = "Promise<EvalInfo>")]
    pub fn evaluate_dataset(
        &self,
        env: Env,
        data: &NativeSequenceDataset,
        split: String,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<AsyncTask<Guarded<EvalWork>>> {
        let set = guard(|| match split.as_str() {
            "train" => match &data.train {
                TrainData::Sequences(s) => Ok(s.clone()),
                TrainData::Stream(_) => unreachable!("a row dataset holds rows"),
            },
            "validation" => data.validation_data().cloned().ok_or_else(|| {
                NodeError::range_error("ERR_RNNKIT_EMPTY", "split: the dataset has no validation rows".into())
            }),
            other => Err(type_error(format!("split: expected \"train\" or \"validation\", got \"{other}\""))),
        })
        .map_err(|e| e.into_napi(&env))?;
        Ok(AsyncTask::new(Guarded(EvalWork {
            shared: self.shared.clone(),
            input: EvalInput::Sequences(set, 64),
            cancel: cancel.map(|c| c.flag.clone()),
        })))
    }

    /// Outputs for padded sequences (per-row tasks `[N, C]`, per-step tasks `[N, T, C]`,
    /// batch-first), with probabilities and classes for class heads, synchronously.
    #[napi]
    pub fn predict(&self, env: Env, data: SequenceData) -> napi::Result<Prediction> {
        guard_js(&env, || {
            let g = read(&self.shared)?;
            let net = &g.as_ref().expect("checked").network;
            let set = sequence_set(net, &data, false)?;
            let outputs = predict_sequences(net, &set, 64)?;
            if net.config.task == Task::Regress {
                return Ok(Prediction { outputs: Float32Array::new(outputs), probabilities: None, classes: None });
            }
            let c = net.config.output_size;
            let mut probabilities = vec![0.0; outputs.len()];
            let mut classes = Vec::with_capacity(outputs.len() / c);
            for (logits, p) in outputs.chunks(c).zip(probabilities.chunks_mut(c)) {
                softmax_into(logits, p);
                classes.push(rnn_core::metrics::argmax(logits) as i32);
            }
            Ok(Prediction {
                outputs: Float32Array::new(outputs),
                probabilities: Some(Float32Array::new(probabilities)),
                classes: Some(Int32Array::new(classes)),
            })
        })
    }
}

/// Refuses a row dataset whose shape is not the model's (features per step, target width).
fn check_shape(name: &str, data: &NativeSequenceDataset, net: &Network) -> Result<(), NodeError> {
    let want = shape_of(net);
    if data.shape.features != want.features {
        return Err(NodeError::type_error(
            "ERR_RNNKIT_SHAPE",
            format!("{name}: rows of {} features per step, the model reads {}", data.shape.features, want.features),
        ));
    }
    if data.shape.outputs != want.outputs || (want.outputs > 0 && data.shape.per_step != want.per_step) {
        return Err(NodeError::type_error(
            "ERR_RNNKIT_SHAPE",
            format!("{name}: the rows' targets do not fit this model's head"),
        ));
    }
    Ok(())
}

/// A validation dataset's rows: its training split and its validation split together.
fn merge_parts(train: &SequenceSet, validation: Option<&SequenceSet>) -> SequenceSet {
    match validation {
        None => train.clone(),
        Some(v) => {
            // Both parts are padded to their own longest row; repad to the longer.
            let steps = train.steps.max(v.steps);
            let mut all = repad(train, steps);
            append(&mut all, &repad(v, steps));
            all
        }
    }
}

/// `set` padded to `steps` steps (IGNORE_INDEX / zero targets at the new padding).
fn repad(set: &SequenceSet, steps: usize) -> SequenceSet {
    if set.steps == steps {
        return set.clone();
    }
    let (n, t) = (set.rows, set.steps);
    let widen = |v: &[f32], w: usize| {
        let mut out = vec![0.0; n * steps * w];
        for r in 0..n {
            out[r * steps * w..(r * steps + t) * w].copy_from_slice(&v[r * t * w..(r + 1) * t * w]);
        }
        out
    };
    let input = match &set.input {
        BatchInput::Tokens(v) => {
            let mut out = vec![0; n * steps];
            for r in 0..n {
                out[r * steps..r * steps + t].copy_from_slice(&v[r * t..(r + 1) * t]);
            }
            BatchInput::Tokens(out)
        }
        BatchInput::Dense(v) => BatchInput::Dense(widen(v, set.features)),
    };
    let targets = match &set.targets {
        BatchTargets::PerStep(v) => {
            let mut out = vec![IGNORE_INDEX; n * steps];
            for r in 0..n {
                out[r * steps..r * steps + t].copy_from_slice(&v[r * t..(r + 1) * t]);
            }
            BatchTargets::PerStep(out)
        }
        BatchTargets::ValuesPerStep(v) => BatchTargets::ValuesPerStep(widen(v, set.outputs)),
        other => other.clone(),
    };
    SequenceSet { input, targets, steps, ..set.clone() }
}

/// Appends the rows of `b` (same steps) to `a`.
fn append(a: &mut SequenceSet, b: &SequenceSet) {
    match (&mut a.input, &b.input) {
        (BatchInput::Tokens(x), BatchInput::Tokens(y)) => x.extend_from_slice(y),
        (BatchInput::Dense(x), BatchInput::Dense(y)) => x.extend_from_slice(y),
        _ => unreachable!("parts of one dataset share their input kind"),
    }
    match (&mut a.targets, &b.targets) {
        (BatchTargets::PerRow(x), BatchTargets::PerRow(y)) | (BatchTargets::PerStep(x), BatchTargets::PerStep(y)) => {
            x.extend_from_slice(y)
        }
        (BatchTargets::ValuesPerRow(x), BatchTargets::ValuesPerRow(y))
        | (BatchTargets::ValuesPerStep(x), BatchTargets::ValuesPerStep(y)) => x.extend_from_slice(y),
        (
            BatchTargets::Transcripts { labels: x, max_len: sx, lengths: lx },
            BatchTargets::Transcripts { labels: y, max_len: sy, lengths: ly },
        ) => {
            // Both parts padded to the longer transcript.
            let s = (*sx).max(*sy);
            let widen = |v: &[i32], from: usize, rows: usize| -> Vec<i32> {
                let mut out = vec![0; rows * s];
                for r in 0..rows {
                    out[r * s..r * s + from].copy_from_slice(&v[r * from..(r + 1) * from]);
                }
                out
            };
            let mut all = widen(x, *sx, lx.len());
            all.extend(widen(y, *sy, ly.len()));
            *x = all;
            *sx = s;
            lx.extend_from_slice(ly);
        }
        _ => unreachable!("parts of one dataset share their target kind"),
    }
    a.lengths.extend_from_slice(&b.lengths);
    a.rows += b.rows;
}

/// What one `fit` call runs: options, data, validation data, checkpoint path.
struct FitRun {
    options: TrainOptions,
    data: TrainData,
    valid: Option<ValidData>,
    checkpoint_path: Option<String>,
}

/// The summary of the last `fit` kept in the file's metadata (`last_fit`): totals, not every
/// step's loss.
pub(crate) fn last_fit(h: &History) -> Value {
    serde_json::json!({
        "stepsDone": h.steps_done,
        "tokens": h.tokens,
        "elapsed": h.elapsed,
        "stopReason": NativeHistory::from(h).stop_reason,
        "finalLoss": h.loss.iter().rev().copied().find(|l| l.is_finite()),
        "valLoss": h.val_loss.last().copied(),
    })
}

/// Initialisation options of a new model.
#[napi(object, object_to_js = false)]
pub struct InitOptions {
    /// `'pytorch'` (default) or `'xavier'`.
    #[napi(ts_type = "'pytorch' | 'xavier'")]
    pub scheme: Option<String>,
    /// Orthogonal recurrent weights (per gate block).
    pub orthogonal_recurrent: Option<bool>,
    /// LSTM forget-gate bias.
    pub forget_bias: Option<f64>,
}
crate::strict_object!(InitOptions, "options.init", ["scheme", "orthogonalRecurrent", "forgetBias"]);

/// The engine's initialisation options (validated there).
fn init_config(o: Option<InitOptions>) -> Result<InitConfig, NodeError> {
    let Some(o) = o else { return Ok(InitConfig::from_json(&serde_json::json!({}))?) };
    let mut v = serde_json::json!({});
    if let Some(s) = o.scheme {
        v["scheme"] = Value::from(s);
    }
    if let Some(r) = o.orthogonal_recurrent {
        v["recurrent"] = Value::from(if r { "orthogonal" } else { "default" });
    }
    if let Some(b) = o.forget_bias {
        v["forget_bias"] = Value::from(b);
    }
    InitConfig::from_json(&v).map_err(|e| {
        let mut e = NodeError::from(e);
        e.message = format!("options.{}", e.message);
        e.param = Some("options.init".into());
        e
    })
}

/// The trainer of a model, created with `options` or reconfigured to them.
pub(crate) fn ensure_trainer<'a, M: Trainable>(
    trainer: &'a mut Option<Trainer<M>>,
    network: &M,
    options: TrainOptions,
) -> rnn_core::Result<&'a mut Trainer<M>> {
    match trainer {
        Some(t) => {
            if t.options != options {
                t.set_options(network, options)?;
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

/// What an `EvalWork` reads: a stream (ids, lanes, chunk) or padded rows (set, batch size).
enum EvalInput {
    Stream(Vec<i32>, Option<usize>, usize),
    Buffer(TokenSlice, Option<usize>, usize),
    Sequences(SequenceSet, usize),
}

/// `evaluateStream` / `evaluateSequences` work.
pub struct EvalWork {
    shared: Shared,
    input: EvalInput,
    /// Checked between batches: the caller's AbortSignal, through a `CancelToken`.
    cancel: Option<Arc<AtomicBool>>,
}

impl Work for EvalWork {
    type Output = Evaluation;
    type JsValue = EvalInfo;
    fn compute(&mut self) -> Result<Evaluation, NodeError> {
        let g = read(&self.shared)?;
        let net = &g.as_ref().expect("checked").network;
        let cancel = self.cancel.as_deref();
        Ok(match &self.input {
            EvalInput::Stream(tokens, lanes, chunk) => evaluate_stream(net, tokens, *lanes, *chunk, cancel)?,
            EvalInput::Buffer(tokens, lanes, chunk) => evaluate_stream(net, tokens, *lanes, *chunk, cancel)?,
            EvalInput::Sequences(set, batch) => evaluate_sequences(net, set, *batch, cancel)?,
        })
    }
    fn resolve(&mut self, _env: Env, output: Evaluation) -> napi::Result<EvalInfo> {
        Ok(output.into())
    }
}
