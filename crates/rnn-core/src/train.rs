//! The training loop: batches → forward → loss → backward (full or truncated BPTT) → clipping →
//! learning-rate schedule → optimizer step, with progress events, validation, checkpoints,
//! cancellation between steps and a time limit.
//!
//! Truncated BPTT: with `tbptt`, a language model's stream is read as `B` contiguous lanes; each
//! step continues every lane where the previous step stopped, starting from the previous final
//! state *detached* (its value carries, its gradient does not), so gradients span `seq_len` steps
//! while the state spans the whole epoch. Without it (full BPTT), every window of `seq_len` steps
//! starts from a zero state and backpropagates through all of its steps.
//!
//! Determinism: the batch order of an epoch depends only on `(seed, epoch)`, dropout draws from a
//! generator whose state is checkpointed, and every kernel reduces in a fixed order for a fixed
//! thread count, so the same seed and threads give bit-identical runs, resumed or not.

use crate::audio::spec_augment::SpecAugmentConfig;
use crate::batch::{Batch, LastBatch, SequenceSet, StreamMode, TokenStream};
use crate::clip::{clip_grad_norm, clip_grad_value, global_norm};
use crate::error::{Error, Result};
use crate::layer::recurrent::StackState;
use crate::loss::LossSum;
use crate::model::evaluate::Evaluation;
use crate::model::network::Network;
use crate::optim::schedule::{Schedule, ScheduleConfig};
use crate::optim::{Optimizer, OptimizerConfig, OptimizerState};
use crate::params::Params;
use crate::rng::{Rng, RngState};
use crate::token_store::TokenSlice;
use crate::trainable::{Gradient, StepInput, Trainable};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Training options (JSON form: these field names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainOptions {
    /// Rows per batch.
    pub batch_size: usize,
    /// Steps per window (token streams).
    pub seq_len: usize,
    /// Tokens between window starts (token streams, full BPTT); default `seq_len`.
    pub stride: Option<usize>,
    /// Truncated BPTT over contiguous lanes with carried state (token streams).
    pub tbptt: bool,
    /// Epochs to run in this `fit` call (Keras' semantics: a second call with `epochs: 2` trains
    /// two more); with neither this nor `max_steps` nor `time_limit`, one epoch. A run resumed
    /// in the middle of an epoch counts the end of that epoch as its first.
    pub epochs: Option<u64>,
    /// Stop after this many optimizer steps in this `fit` call. (The step counter itself, which
    /// the learning-rate schedule reads, counts over the model's whole life.)
    pub max_steps: Option<u64>,
    /// Stop after this many seconds.
    pub time_limit: Option<f64>,
    pub optimizer: OptimizerConfig,
    #[serde(skip)]
    pub schedule: ScheduleConfig,
    /// Global gradient-norm limit.
    pub clip_norm: Option<f32>,
    /// Element-wise gradient limit.
    pub clip_value: Option<f32>,
    /// Seed of batch order (and of dropout unless `dropout_seed` is set).
    pub seed: u64,
    /// Seed of the dropout masks, when it differs from the data-order seed.
    pub dropout_seed: Option<u64>,
    /// Shuffle windows / rows each epoch.
    pub shuffle: bool,
    /// The last, smaller batch of an epoch: kept, dropped, or padded (token streams).
    pub last: LastBatch,
    /// Steps between progress events.
    pub log_every: u64,
    /// Steps between validations (default: at the end of each epoch and of the run).
    pub validate_every: Option<u64>,
    /// Steps between checkpoints (needs a checkpoint writer).
    pub checkpoint_every: Option<u64>,
    /// Per-class loss weights (classification, tagging).
    pub class_weights: Option<Vec<f32>>,
    /// Skip a batch whose loss or gradient is not finite instead of stopping.
    pub skip_non_finite: bool,
    /// Stop when the validation metric has not improved for `patience` validations (needs
    /// validation data). Absent from the JSON form when off, so files without it still load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
    /// Also write a checkpoint at every validation that improves the monitored metric (the best
    /// model so far on disk; needs validation data and a checkpoint writer). Absent when off.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub checkpoint_best: bool,
    /// Sequence to sequence: the probability, per target step, that the decoder reads its own
    /// previous greedy prediction instead of the target token (scheduled sampling; drawn from
    /// the training generator). Absent when off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_sampling: Option<f64>,
    /// With `scheduled_sampling`: the probability rises linearly from 0 over this many steps of
    /// the model's life (`p · min(1, step / ramp)`). Absent when off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_sampling_ramp: Option<u64>,
    /// Speech: SpecAugment masks over each training utterance's features, drawn from the
    /// training generator at every step (never on validation). Absent when off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_augment: Option<SpecAugmentConfig>,
}

/// The validation metric that early stopping and best checkpoints follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// Mean validation loss; lower is better.
    #[default]
    ValLoss,
    /// Validation accuracy (class heads only); higher is better.
    ValAccuracy,
}

/// Early stopping (JSON form: these field names, each optional).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EarlyStopping {
    /// The metric to follow; default `ValLoss`.
    pub monitor: Monitor,
    /// Validations without improvement after which the run stops; default 3.
    pub patience: u64,
    /// An improvement must beat the best value by more than this; default 0.
    pub min_delta: f64,
    /// Put back the weights of the best validation when the run ends (not when it is aborted).
    /// Costs one copy of the parameters, taken at each improving validation; default true.
    pub restore_best: bool,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping { monitor: Monitor::ValLoss, patience: 3, min_delta: 0.0, restore_best: true }
    }
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            batch_size: 32,
            seq_len: 100,
            stride: None,
            tbptt: false,
            epochs: None,
            max_steps: None,
            time_limit: None,
            optimizer: OptimizerConfig::from_json(&serde_json::json!({"type": "adam", "lr": 2e-3}))
                .expect("the default optimizer is valid"),
            schedule: ScheduleConfig::default(),
            clip_norm: None,
            clip_value: None,
            seed: 0,
            dropout_seed: None,
            shuffle: true,
            last: LastBatch::Keep,
            log_every: 10,
            validate_every: None,
            checkpoint_every: None,
            class_weights: None,
            skip_non_finite: false,
            early_stopping: None,
            checkpoint_best: false,
            scheduled_sampling: None,
            scheduled_sampling_ramp: None,
            spec_augment: None,
        }
    }
}

impl TrainOptions {
    /// Parses the JSON form (`schedule` is a nested object), validating every field.
    pub fn from_json(v: &serde_json::Value) -> Result<Self> {
        let mut obj =
            v.as_object().cloned().ok_or_else(|| Error::Config(format!("options: expected an object, got {v}")))?;
        let schedule = match obj.remove("schedule") {
            None | Some(serde_json::Value::Null) => ScheduleConfig::default(),
            Some(s) => ScheduleConfig::from_json(&s)?,
        };
        let mut opts: TrainOptions = serde_json::from_value(serde_json::Value::Object(obj))
            .map_err(|e| Error::Config(format!("options: {e}")))?;
        opts.schedule = schedule;
        opts.validate()?;
        Ok(opts)
    }

    /// The JSON form, with the schedule.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("options serialise");
        v["schedule"] = self.schedule.to_json();
        v
    }

    fn validate(&self) -> Result<()> {
        let positive = |name: &str, v: usize| {
            if v == 0 {
                Err(Error::Range(format!("{name}: expected an integer >= 1, got 0")))
            } else {
                Ok(())
            }
        };
        positive("batchSize", self.batch_size)?;
        if let Some(sa) = &self.spec_augment {
            sa.validate()?;
        }
        positive("seqLen", self.seq_len)?;
        if let Some(s) = self.stride {
            positive("stride", s)?;
        }
        for (name, v) in [("epochs", self.epochs), ("maxSteps", self.max_steps)] {
            if v == Some(0) {
                return Err(Error::Range(format!("{name}: expected an integer >= 1, got 0")));
            }
        }
        if self.log_every == 0 {
            return Err(Error::Range("logEvery: expected an integer >= 1, got 0".into()));
        }
        for (name, v) in [("clipNorm", self.clip_norm), ("clipValue", self.clip_value)] {
            if let Some(x) = v {
                if !(x.is_finite() && x > 0.0) {
                    return Err(Error::Range(format!("{name}: expected a finite number > 0, got {x}")));
                }
            }
        }
        if let Some(t) = self.time_limit {
            if !(t.is_finite() && t > 0.0) {
                return Err(Error::Range(format!("timeLimit: expected a finite number of seconds > 0, got {t}")));
            }
        }
        if let Some(w) = &self.class_weights {
            if let Some(i) = w.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
                return Err(Error::Range(format!(
                    "classWeights: entry {i} is {}, expected a finite number >= 0",
                    w[i]
                )));
            }
        }
        if let Some(es) = &self.early_stopping {
            if es.patience == 0 {
                return Err(Error::Range("earlyStopping.patience: expected an integer >= 1, got 0".into()));
            }
            if !(es.min_delta.is_finite() && es.min_delta >= 0.0) {
                return Err(Error::Range(format!(
                    "earlyStopping.minDelta: expected a finite number >= 0, got {}",
                    es.min_delta
                )));
            }
        }
        if let Some(p) = self.scheduled_sampling {
            if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
                return Err(Error::Range(format!("scheduledSampling: expected a probability in [0, 1], got {p}")));
            }
        }
        match (self.scheduled_sampling_ramp, self.scheduled_sampling) {
            (Some(0), _) => {
                return Err(Error::Range("scheduledSamplingRamp: expected an integer >= 1, got 0".into()));
            }
            (Some(_), None) => {
                return Err(Error::Config(
                    "scheduledSamplingRamp: needs scheduledSampling (the probability it rises to)".into(),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// The scheduled-sampling probability at life-long step `step` (0 when off).
    pub fn sampling_probability(&self, step: u64) -> f64 {
        let p = self.scheduled_sampling.unwrap_or(0.0);
        match self.scheduled_sampling_ramp {
            Some(ramp) => p * (step as f64 / ramp as f64).min(1.0),
            None => p,
        }
    }

    /// The metric best checkpoints and early stopping follow, and the margin of an improvement;
    /// `None` when neither is on.
    fn tracking(&self) -> Option<(Monitor, f64)> {
        match (&self.early_stopping, self.checkpoint_best) {
            (Some(es), _) => Some((es.monitor, es.min_delta)),
            (None, true) => Some((Monitor::ValLoss, 0.0)),
            (None, false) => None,
        }
    }

    /// Refuses early stopping and best checkpoints that cannot work with this network and
    /// validation data: both need validation data, and accuracy needs a class head.
    pub fn check_validation(&self, net: &Network, valid: Option<&ValidData>) -> Result<()> {
        let empty = match valid {
            None => true,
            Some(ValidData::Stream { tokens, .. }) => tokens.len() < 2,
            Some(ValidData::Sequences(set)) => set.rows == 0,
        };
        let has_accuracy = !matches!(net.config.task, crate::config::Task::Regress | crate::config::Task::Speech);
        self.check_tracking(empty, has_accuracy)
    }

    /// Refuses early stopping and best checkpoints without validation data (`no_validation`),
    /// and an accuracy monitor on a model that has no accuracy.
    pub fn check_tracking(&self, no_validation: bool, has_accuracy: bool) -> Result<()> {
        let Some((monitor, _)) = self.tracking() else { return Ok(()) };
        let name = if self.early_stopping.is_some() { "earlyStopping" } else { "checkpoint.best" };
        if no_validation {
            return Err(Error::Config(format!(
                "{name}: needs validation data (a validation split of the dataset, or options.validation)"
            )));
        }
        if monitor == Monitor::ValAccuracy && !has_accuracy {
            return Err(Error::Config(
                "earlyStopping.monitor: \"valAccuracy\" needs a class head; a regression or speech model has no accuracy, monitor \"valLoss\"".into(),
            ));
        }
        Ok(())
    }
}

/// The best validation so far of a run that tracks one: its step, value and loss, and (with
/// `restore_best`) a copy of the parameters at that validation — one parameter-sized buffer,
/// overwritten in place at each improvement.
#[derive(Debug)]
struct Best {
    monitor: Monitor,
    min_delta: f64,
    /// Whether `params` keeps the parameters of the best validation (`restore_best`).
    restore: bool,
    step: Option<u64>,
    value: f64,
    val_loss: f64,
    since: u64,
    params: Option<Vec<f32>>,
}

impl Best {
    /// Whether `value` improves on the best by more than `min_delta` (the first finite value always does).
    fn improves(&self, value: f64) -> bool {
        if !value.is_finite() {
            return false;
        }
        if self.step.is_none() {
            return true;
        }
        match self.monitor {
            Monitor::ValLoss => value < self.value - self.min_delta,
            Monitor::ValAccuracy => value > self.value + self.min_delta,
        }
    }
}

/// What a model is trained on.
#[derive(Debug, Clone)]
pub enum TrainData {
    /// A language model's token stream (already cut per the options).
    Stream(TokenStream),
    /// Padded sequences with targets.
    Sequences(SequenceSet),
}

/// The data order: which batches an epoch holds and in what order. The trainer and every
/// binding's `dataset.batches()` call these same functions, so what a user inspects is what
/// trains.
impl TrainData {
    /// Batches in one epoch under `opts`' batch size and last-batch policy.
    pub fn batches_per_epoch(&self, opts: &TrainOptions) -> usize {
        match self {
            TrainData::Stream(s) => s.batches_per_epoch(),
            TrainData::Sequences(s) => s.batches_per_epoch(opts.batch_size, opts.last),
        }
    }

    /// The order of windows (streams) or rows (sequences) in `epoch`, from `(opts.seed, epoch)`;
    /// in data order without `opts.shuffle`.
    pub fn epoch_order(&self, opts: &TrainOptions, epoch: u64) -> Vec<usize> {
        match self {
            TrainData::Stream(s) => match s.mode() {
                StreamMode::Windows { .. } => {
                    let mut o = s.epoch_order(opts.seed, epoch);
                    if !opts.shuffle {
                        o.sort_unstable();
                    }
                    o
                }
                StreamMode::Lanes => Vec::new(),
            },
            TrainData::Sequences(s) => s.epoch_order(opts.seed, epoch, opts.shuffle),
        }
    }

    /// Batch `index` of an epoch whose order came from [`TrainData::epoch_order`].
    pub fn batch(&self, opts: &TrainOptions, order: &[usize], index: usize) -> Batch {
        match self {
            TrainData::Stream(s) => s.batch(order, index),
            TrainData::Sequences(s) => s.batch(order, opts.batch_size, index),
        }
    }
}

/// Held-out data for validation.
#[derive(Debug, Clone)]
pub enum ValidData {
    /// A token stream, evaluated with carried state over `lanes` contiguous lanes.
    Stream {
        tokens: TokenSlice,
        lanes: usize,
    },
    Sequences(SequenceSet),
}

/// A progress event. JSON: `{"type": "step" | "validation" | "checkpoint" | "checkpointError",
/// ...camelCase fields}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum TrainEvent {
    #[serde(rename_all = "camelCase")]
    Step {
        step: u64,
        total_steps: u64,
        epoch: u64,
        epoch_progress: f64,
        loss: f64,
        lr: f32,
        grad_norm: f64,
        tokens_per_second: f64,
        elapsed: f64,
        eta: f64,
    },
    #[serde(rename_all = "camelCase")]
    Validation { step: u64, epoch: u64, val_loss: f64, val_accuracy: Option<f64>, val_count: usize, elapsed: f64 },
    #[serde(rename_all = "camelCase")]
    Checkpoint { step: u64, path: String },
    /// A checkpoint could not be written (`message` says why and names the path); training
    /// goes on.
    #[serde(rename_all = "camelCase")]
    CheckpointError { step: u64, message: String },
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Completed,
    TimeLimit,
    MaxSteps,
    Aborted,
    /// The monitored validation metric did not improve for `patience` validations.
    EarlyStopping,
}

/// The record of one `fit` call. JSON field names are camelCase.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub steps: Vec<u64>,
    pub loss: Vec<f64>,
    pub val_steps: Vec<u64>,
    pub val_loss: Vec<f64>,
    pub steps_done: u64,
    pub tokens: u64,
    pub elapsed: f64,
    pub stop_reason: StopReason,
    /// With early stopping or best checkpoints: the step of the best validation (None before any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_step: Option<u64>,
    /// The validation loss at `best_step`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_val_loss: Option<f64>,
    /// The validation accuracy at `best_step`, when accuracy is the monitored metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_val_accuracy: Option<f64>,
}

/// Where the run is: saved in checkpoints so training resumes at the same batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Position {
    /// Optimizer steps taken over the model's life.
    pub step: u64,
    /// Epochs completed.
    pub epoch: u64,
    /// Batches done in the current epoch.
    pub batch: usize,
}

/// The result of one optimizer step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    /// Sum form of the batch loss (before the update).
    pub loss: LossSum,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f32,
    /// Whether the step was skipped (non-finite loss or gradient with `skip_non_finite`).
    pub skipped: bool,
    /// Final recurrent state of the batch.
    pub final_state: StackState,
}

/// Everything that changes while training besides the weights: gradients, optimizer, RNG,
/// position. The model is passed to each call, so a model can exist without a trainer
/// (inference) and gain one when it first trains. One trainer for every [`Trainable`] model
/// (the task networks, sequence to sequence): `fit` is this one loop.
#[derive(Debug)]
pub struct Trainer<M: Trainable = Network> {
    pub options: TrainOptions,
    pub position: Position,
    grads: Params,
    optimizer: Optimizer,
    schedule: Schedule,
    /// The training generator: dropout masks, scheduled sampling.
    dropout_rng: Rng,
    /// The seed `dropout_rng` was created from (saved with its position; a later change of
    /// `options.seed` through `set_options` does not reseed a running generator).
    dropout_seed: u64,
    /// Lanes mode: the detached state carried to the next batch.
    carried: Option<StackState>,
    /// The model's step buffers (forward cache, outputs), kept for their capacity.
    work: M::Work,
    /// Called by `fit` after every step, with the weights of that step: where a caller that
    /// cannot touch the model while it trains (the Node binding) serves requests such as a
    /// snapshot to disk.
    between_steps: Option<StepHook<M>>,
    /// The parameters and optimizer state before the current update (buffers reused), put back
    /// when the update makes any of them non-finite, so a diverged step never leaves inf or NaN
    /// in the model: it can still be saved and used with its last finite weights.
    before_update: (Vec<f32>, OptimizerState),
}

/// What [`Trainer::set_between_steps`] runs: a closure over the model and the trainer.
pub type StepFn<M = Network> = Box<dyn FnMut(&M, &Trainer<M>) + Send + Sync>;

/// Writes a checkpoint of the model and trainer; returns the path written.
pub type CheckpointFn<'a, M = Network> = dyn FnMut(&M, &Trainer<M>) -> Result<String> + 'a;

/// A hook run between training steps (see [`Trainer::set_between_steps`]).
pub struct StepHook<M: Trainable>(StepFn<M>);

impl<M: Trainable> std::fmt::Debug for StepHook<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StepHook")
    }
}

/// Saved training state (checkpoints).
#[derive(Debug, Clone)]
pub struct TrainerState {
    pub options: TrainOptions,
    pub position: Position,
    pub optimizer: OptimizerState,
    pub rng: RngState,
    pub carried: Option<StackState>,
}

impl<M: Trainable> Trainer<M> {
    /// A trainer for `network`, starting at step 0.
    pub fn new(network: &M, options: TrainOptions) -> Result<Self> {
        options.validate()?;
        let n = network.params().data.len();
        let optimizer = Optimizer::new(&options.optimizer, n)?;
        let schedule = Schedule::new(options.optimizer.lr(), options.schedule.clone())?;
        let grads = Params::zeros(network.params().layout.clone());
        let dropout_seed = options.dropout_seed.unwrap_or(options.seed) ^ 0xD50F_0A7E;
        let dropout_rng = Rng::new(dropout_seed);
        network.check_options(&options)?;
        Ok(Trainer {
            options,
            position: Position::default(),
            grads,
            optimizer,
            schedule,
            dropout_rng,
            dropout_seed,
            carried: None,
            work: M::Work::default(),
            between_steps: None,
            before_update: (Vec::new(), OptimizerState { step: 0, slots: Vec::new() }),
        })
    }

    /// A trainer continuing from a checkpoint's state, bit-identically.
    pub fn resume(network: &M, state: TrainerState) -> Result<Self> {
        let mut t = Trainer::new(network, state.options)?;
        t.optimizer.import_state(&state.optimizer)?;
        t.position = state.position;
        t.dropout_rng = Rng::from_state(state.rng);
        t.dropout_seed = state.rng.seed;
        t.carried = state.carried;
        Ok(t)
    }

    /// The gradients of the last step (zeros before any).
    pub fn grads(&self) -> &Params {
        &self.grads
    }

    /// The state to checkpoint.
    pub fn state(&self) -> TrainerState {
        TrainerState {
            options: self.options.clone(),
            position: self.position,
            optimizer: self.optimizer.export_state(),
            rng: self.dropout_rng.state(self.dropout_seed),
            carried: self.carried.clone(),
        }
    }

    /// Replaces the options of a resumed trainer for a new `fit` call, keeping optimizer state
    /// when the optimizer configuration is unchanged.
    pub fn set_options(&mut self, network: &M, options: TrainOptions) -> Result<()> {
        options.validate()?;
        network.check_options(&options)?;
        if options.optimizer != self.options.optimizer {
            self.optimizer = Optimizer::new(&options.optimizer, self.grads.data.len())?;
        }
        self.schedule = Schedule::new(options.optimizer.lr(), options.schedule.clone())?;
        self.options = options;
        Ok(())
    }

    /// One optimizer step on `batch`, starting from `state` (None = zeros).
    pub fn train_step(&mut self, net: &mut M, batch: &M::Batch, state: Option<&StackState>) -> Result<StepResult> {
        // The step runs on the calling thread (the training thread of `fit`, or the caller of a
        // single step): its threaded kernels then fork onto the team of helpers that keep
        // polling between jobs (`parallel`), a fork-join of about a microsecond, where the
        // pool's costs a few (two cross-thread wake-ups). A recurrence forks at least twice per
        // time step. Measured against running the step on the pool, 2 threads, TRAIN-*-S
        // (batch 32 × 64 steps, tokens/s): Elman 206k → 247k, GRU 107k → 119k, LSTM 86k → 92k.
        self.train_step_inner(net, batch, state)
    }

    fn train_step_inner(&mut self, net: &mut M, batch: &M::Batch, state: Option<&StackState>) -> Result<StepResult> {
        let step = self.position.step;
        self.grads.zero();
        let lr = self.schedule.lr_at(step);
        let input = StepInput { state, rng: &mut self.dropout_rng, options: &self.options, step };
        let Gradient { loss, final_state, non_finite } = net.gradient(batch, input, &mut self.work, &mut self.grads)?;
        if let Some(value) = non_finite {
            return self.non_finite(step, value, loss, lr, final_state);
        }
        let grad_norm = match self.options.clip_norm {
            Some(max) => clip_grad_norm(&mut self.grads.data, max),
            None => Ok(global_norm(&self.grads.data)),
        };
        let grad_norm = match grad_norm {
            Ok(n) if n.is_finite() => n,
            Ok(n) => return self.non_finite(step, n, loss, lr, final_state),
            Err(_) => return self.non_finite(step, f64::NAN, loss, lr, final_state),
        };
        if let Some(v) = self.options.clip_value {
            clip_grad_value(&mut self.grads.data, v)?;
        }
        let (saved, saved_state) = &mut self.before_update;
        saved.clear();
        saved.extend_from_slice(&net.params().data);
        self.optimizer.save_state_into(saved_state);
        self.optimizer.step(&mut net.params_mut().data, &self.grads.data, lr)?;
        // Only what the update made non-finite counts: a value that already was (a poisoned
        // embedding row whose batches `skip_non_finite` skips) is not the update's doing.
        let made_non_finite = |new: &[f32], old: &[f32]| {
            new.iter().zip(old).find(|(n, o)| !n.is_finite() && o.is_finite()).map(|(n, _)| *n)
        };
        let diverged = made_non_finite(&net.params().data, &self.before_update.0)
            .or_else(|| self.optimizer.first_made_non_finite(&self.before_update.1, made_non_finite));
        if let Some(value) = diverged {
            net.params_mut().data.copy_from_slice(&self.before_update.0);
            self.optimizer.import_state(&self.before_update.1)?;
            if !self.options.skip_non_finite {
                return Err(Error::UpdateNotFinite { step: step + 1, value: value as f64 });
            }
            return self.non_finite(step, value as f64, loss, lr, final_state);
        }
        self.position.step += 1;
        Ok(StepResult { loss, grad_norm, lr, skipped: false, final_state })
    }

    fn non_finite(
        &mut self,
        step: u64,
        value: f64,
        loss: LossSum,
        lr: f32,
        final_state: StackState,
    ) -> Result<StepResult> {
        if self.options.skip_non_finite {
            self.position.step += 1;
            return Ok(StepResult { loss, grad_norm: value, lr, skipped: true, final_state });
        }
        Err(Error::LossNotFinite { step: step + 1, value })
    }

    /// Runs `hook` after every step of later `fit` calls (`None` removes it).
    pub fn set_between_steps(&mut self, hook: Option<StepFn<M>>) {
        self.between_steps = hook.map(StepHook);
    }

    /// Runs the between-steps hook, if any.
    fn run_between_steps(&mut self, net: &M) {
        if let Some(mut hook) = self.between_steps.take() {
            (hook.0)(net, self);
            self.between_steps = Some(hook);
        }
    }

    /// Trains until the options' limits, emitting events; `cancel` is checked between steps.
    /// `checkpoint` (when checkpoints are requested) saves the trainer and returns the path.
    pub fn fit(
        &mut self,
        net: &mut M,
        data: &M::Data,
        valid: Option<&M::Valid>,
        cancel: &AtomicBool,
        on_event: &mut dyn FnMut(TrainEvent),
        checkpoint: &mut CheckpointFn<M>,
    ) -> Result<History> {
        net.check_data(&self.options, data, valid)?;
        let start = Instant::now();
        let opts = self.options.clone();
        let per_epoch = M::batches_per_epoch(data, &opts).max(1) as u64;
        if self.position.batch as u64 >= per_epoch {
            // A checkpoint taken mid-epoch on other data (or another batchSize/seqLen) cannot
            // continue at the same batch: refuse rather than read past the data.
            return Err(Error::Config(format!(
                "data: training stopped at batch {} of an epoch, but this data has {per_epoch} batches per epoch; resume with the same data, batchSize and seqLen",
                self.position.batch
            )));
        }
        let first_step = self.position.step;
        // Limits count from this call (epochs: epoch ends reached; steps: steps taken).
        let epochs = match (opts.epochs, opts.max_steps, opts.time_limit) {
            (None, None, None) => Some(1),
            (e, _, _) => e,
        };
        let last_epoch = epochs.map(|e| self.position.epoch + e);
        let last_step = opts.max_steps.map(|m| first_step + m);
        let planned = {
            let by_epochs = last_epoch
                .map(|e| (e * per_epoch).saturating_sub(self.position.epoch * per_epoch + self.position.batch as u64));
            match (by_epochs, opts.max_steps) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        let mut history = History {
            steps: Vec::new(),
            loss: Vec::new(),
            val_steps: Vec::new(),
            val_loss: Vec::new(),
            steps_done: 0,
            tokens: 0,
            elapsed: 0.0,
            stop_reason: StopReason::Completed,
            best_step: None,
            best_val_loss: None,
            best_val_accuracy: None,
        };
        let mut best = opts.tracking().map(|(monitor, min_delta)| Best {
            monitor,
            min_delta,
            restore: opts.early_stopping.is_some_and(|es| es.restore_best),
            step: None,
            value: f64::NAN,
            val_loss: f64::NAN,
            since: 0,
            params: None,
        });
        let patience = opts.early_stopping.map(|es| es.patience);
        let mut order: Option<(u64, M::Order)> = None;
        let mut window = LossSum::default();
        let mut unreported: Option<TrainEvent> = None;
        let mut validated_at = None;
        loop {
            let stop = if cancel.load(Ordering::Relaxed) {
                Some(StopReason::Aborted)
            } else if patience.is_some_and(|p| best.as_ref().is_some_and(|b| b.since >= p)) {
                Some(StopReason::EarlyStopping)
            } else if last_epoch.is_some_and(|e| self.position.epoch >= e) {
                Some(StopReason::Completed)
            } else if last_step.is_some_and(|m| self.position.step >= m) {
                Some(StopReason::MaxSteps)
            } else if opts.time_limit.is_some_and(|l| start.elapsed().as_secs_f64() >= l) {
                Some(StopReason::TimeLimit)
            } else {
                None
            };
            if let Some(reason) = stop {
                history.stop_reason = reason;
                break;
            }
            let epoch = self.position.epoch;
            if order.as_ref().is_none_or(|(e, _)| *e != epoch) {
                order = Some((epoch, M::epoch_order(data, &opts, epoch)));
            }
            let batch = M::batch(data, &opts, &order.as_ref().expect("set above").1, self.position.batch);
            let lanes = M::carries_state(data);
            let state_in = if lanes { self.carried.take() } else { None };
            let result = self.train_step(net, &batch, state_in.as_ref())?;
            if lanes {
                // A skipped step's state may be NaN; carrying it would poison every later
                // batch of the epoch, so its lanes restart from zeros.
                self.carried = (!result.skipped).then_some(result.final_state);
            }
            self.position.batch += 1;
            if self.position.batch as u64 >= per_epoch {
                self.position.epoch += 1;
                self.position.batch = 0;
                self.carried = None;
            }
            history.steps_done += 1;
            history.tokens += result.loss.count as u64;
            if !result.skipped {
                window.add(result.loss);
            }
            let step = self.position.step;
            // Every step is in the history (a skipped one with a NaN loss).
            history.steps.push(step);
            history.loss.push(if result.skipped { f64::NAN } else { result.loss.mean() });
            let elapsed = start.elapsed().as_secs_f64();
            let epoch_end = self.position.batch == 0;
            let done = history.steps_done as f64;
            let remaining = match (planned, opts.time_limit) {
                (Some(p), Some(l)) => ((p as f64 - done) * elapsed / done).min(l - elapsed),
                (Some(p), None) => (p as f64 - done) * elapsed / done,
                (None, Some(l)) => l - elapsed,
                (None, None) => 0.0,
            };
            let total = planned.unwrap_or_else(|| (done * (elapsed + remaining.max(0.0)) / elapsed.max(1e-9)) as u64);
            let event = TrainEvent::Step {
                step,
                total_steps: total + first_step,
                epoch: self.position.epoch,
                epoch_progress: self.position.batch as f64 / per_epoch as f64,
                loss: window.mean(),
                lr: result.lr,
                grad_norm: result.grad_norm,
                tokens_per_second: history.tokens as f64 / elapsed.max(1e-9),
                elapsed,
                eta: remaining.max(0.0),
            };
            if step.is_multiple_of(opts.log_every) || epoch_end {
                on_event(event);
                window = LossSum::default();
                unreported = None;
            } else {
                // Kept so that the run's last step is always reported, whatever ends it.
                unreported = Some(event);
            }
            let validate_now = match opts.validate_every {
                Some(v) => step.is_multiple_of(v),
                None => epoch_end,
            };
            if let (Some(valid), true) = (valid, validate_now) {
                // A validation pass can be long (a large held-out text): an abort stops it too.
                let e = match self.validate(net, valid, &mut history, &start, cancel, on_event) {
                    Err(Error::Aborted) => {
                        history.stop_reason = StopReason::Aborted;
                        break;
                    }
                    e => e?,
                };
                self.track_best(net, &e, best.as_mut(), &mut history, on_event, checkpoint)?;
                validated_at = Some(step);
            }
            if opts.checkpoint_every.is_some_and(|c| step.is_multiple_of(c)) {
                self.write_checkpoint(net, step, on_event, checkpoint);
            }
            self.run_between_steps(net);
        }
        if let Some(event) = unreported {
            on_event(event);
        }
        if let Some(valid) = valid {
            // An aborted run ends without the closing validation: the caller asked to stop now.
            let aborted = history.stop_reason == StopReason::Aborted;
            if validated_at != Some(self.position.step) && history.steps_done > 0 && !aborted {
                let e = self.validate(net, valid, &mut history, &start, cancel, on_event)?;
                self.track_best(net, &e, best.as_mut(), &mut history, on_event, checkpoint)?;
            }
        }
        // An aborted run keeps the weights of its last step (what abort promises).
        if history.stop_reason != StopReason::Aborted {
            if let Some(saved) = best.as_ref().and_then(|b| b.params.as_ref()) {
                net.params_mut().data.copy_from_slice(saved);
            }
        }
        history.elapsed = start.elapsed().as_secs_f64();
        Ok(history)
    }

    fn validate(
        &mut self,
        net: &M,
        valid: &M::Valid,
        history: &mut History,
        start: &Instant,
        cancel: &AtomicBool,
        on_event: &mut dyn FnMut(TrainEvent),
    ) -> Result<Evaluation> {
        let e = self.evaluate(net, valid, Some(cancel))?;
        history.val_steps.push(self.position.step);
        history.val_loss.push(e.loss.mean());
        on_event(TrainEvent::Validation {
            step: self.position.step,
            epoch: self.position.epoch,
            val_loss: e.loss.mean(),
            val_accuracy: e.accuracy(),
            val_count: e.loss.count,
            elapsed: start.elapsed().as_secs_f64(),
        });
        Ok(e)
    }

    /// Updates the best validation with `e` (just evaluated at the current step): on an
    /// improvement, records it in `history`, copies the parameters (`best.restore`) and writes
    /// the best checkpoint (`checkpoint_best`); otherwise counts one more validation without
    /// improvement.
    fn track_best(
        &mut self,
        net: &M,
        e: &Evaluation,
        best: Option<&mut Best>,
        history: &mut History,
        on_event: &mut dyn FnMut(TrainEvent),
        checkpoint: &mut CheckpointFn<M>,
    ) -> Result<()> {
        let Some(best) = best else { return Ok(()) };
        let value = match best.monitor {
            Monitor::ValLoss => e.loss.mean(),
            Monitor::ValAccuracy => e.accuracy().unwrap_or(f64::NAN),
        };
        if !best.improves(value) {
            best.since += 1;
            return Ok(());
        }
        let step = self.position.step;
        best.step = Some(step);
        best.value = value;
        best.val_loss = e.loss.mean();
        best.since = 0;
        history.best_step = Some(step);
        history.best_val_loss = Some(best.val_loss);
        history.best_val_accuracy = (best.monitor == Monitor::ValAccuracy).then_some(value);
        if best.restore {
            let params = &net.params().data;
            match &mut best.params {
                Some(saved) => saved.copy_from_slice(params),
                None => best.params = Some(params.clone()),
            }
        }
        if self.options.checkpoint_best {
            self.write_checkpoint(net, step, on_event, checkpoint);
        }
        Ok(())
    }

    /// Writes a checkpoint and reports it. A failed write (a full disk, a vanished directory)
    /// is reported as a `CheckpointError` event and training goes on: losing the checkpoint
    /// must not also lose the run, whose final model the caller still saves.
    fn write_checkpoint(
        &self,
        net: &M,
        step: u64,
        on_event: &mut dyn FnMut(TrainEvent),
        checkpoint: &mut CheckpointFn<M>,
    ) {
        match checkpoint(net, self) {
            Ok(path) => on_event(TrainEvent::Checkpoint { step, path }),
            Err(e) => on_event(TrainEvent::CheckpointError { step, message: e.to_string() }),
        }
    }

    /// Evaluates the current model on held-out data (no dropout, no gradient); `cancel`, when
    /// given, is checked between batches ([`Error::Aborted`] once set).
    pub fn evaluate(&self, net: &M, valid: &M::Valid, cancel: Option<&AtomicBool>) -> Result<Evaluation> {
        net.evaluate(valid, &self.options, cancel)
    }
}

/// The stream-cutting mode the options ask for.
pub fn stream_mode(options: &TrainOptions) -> StreamMode {
    if options.tbptt {
        StreamMode::Lanes
    } else {
        StreamMode::Windows { stride: options.stride.unwrap_or(options.seq_len) }
    }
}
