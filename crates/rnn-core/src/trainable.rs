//! What `fit`'s one training loop (`train.rs`) trains: a model with a batch source. A
//! [`Trainable`] says what its data is and in what order an epoch reads it, what one batch's loss
//! and gradient are, and how held-out data is scored; the loop around it (limits, schedule,
//! clipping, the optimizer and its divergence guard, validation, early stopping, best weights,
//! checkpoints, cancel, exact resume) is the same for every model, so each feature of `fit`
//! applies to each model by construction.
//!
//! Two implementations: [`Network`] here (language models over token streams, classifiers,
//! taggers and regressors over padded rows) and the sequence-to-sequence network
//! (`model/seq2seq_train.rs`, pairs in length buckets).

use crate::audio::spec_augment::SpecAugmentConfig;
use crate::batch::{Batch, BatchInput, LastBatch, StreamMode};
use crate::config::InputKind;
use crate::error::{Error, Result};
use crate::kernels::precision::Precision;
use crate::layer::recurrent::StackState;
use crate::loss::LossSum;
use crate::model::evaluate::{evaluate_sequences, evaluate_stream, Evaluation};
use crate::model::network::{ForwardCache, Network};
use crate::model::objective::{check_transcripts_fit, network_loss};
use crate::params::Params;
use crate::rng::Rng;
use crate::train::{TrainData, TrainOptions, ValidData};
use std::sync::atomic::AtomicBool;

/// A model `fit` can train.
pub trait Trainable: Send + Sync {
    /// What it trains on, and what it is validated on.
    type Data;
    type Valid;
    /// One epoch's order of the data ([`Trainable::epoch_order`]).
    type Order;
    /// One batch of the data.
    type Batch: Sync;
    /// The buffers a training step reuses (forward cache, outputs), kept by the trainer.
    type Work: Default + std::fmt::Debug + Send;

    fn params(&self) -> &Params;
    fn params_mut(&mut self) -> &mut Params;

    /// Refuses options that mean nothing for this model or do not fit it (the trainer calls it
    /// whenever it takes options).
    fn check_options(&self, options: &TrainOptions) -> Result<()>;

    /// Refuses training and validation data this model cannot train on under `options`
    /// (before any step of a `fit`).
    fn check_data(&self, options: &TrainOptions, data: &Self::Data, valid: Option<&Self::Valid>) -> Result<()>;

    /// Batches in one epoch.
    fn batches_per_epoch(data: &Self::Data, options: &TrainOptions) -> usize;

    /// The order of `epoch`: a function of `(options.seed, epoch)` only, so a resumed run reads
    /// the batches an uninterrupted one would.
    fn epoch_order(data: &Self::Data, options: &TrainOptions, epoch: u64) -> Self::Order;

    /// Batch `index` of an epoch in `order`.
    fn batch(data: &Self::Data, options: &TrainOptions, order: &Self::Order, index: usize) -> Self::Batch;

    /// Whether each batch continues the previous one's final state (truncated-BPTT lanes).
    fn carries_state(_data: &Self::Data) -> bool {
        false
    }

    /// The loss of `batch` and the gradient of its mean added into `grads` (zeroed by the
    /// caller). A non-finite value met on the way is reported in [`Gradient::non_finite`] (the
    /// trainer stops or skips the step); bad input is an error.
    fn gradient(
        &self,
        batch: &Self::Batch,
        step: StepInput,
        work: &mut Self::Work,
        grads: &mut Params,
    ) -> Result<Gradient>;

    /// Scores `valid` with the current weights (no dropout, no gradient); `cancel`, when given, is
    /// checked between batches ([`Error::Aborted`] once set).
    fn evaluate(&self, valid: &Self::Valid, options: &TrainOptions, cancel: Option<&AtomicBool>) -> Result<Evaluation>;
}

/// What a step's gradient may read besides the batch.
pub struct StepInput<'a> {
    /// The state the batch starts from (carried lanes; None = zeros).
    pub state: Option<&'a StackState>,
    /// The training generator (dropout masks, scheduled sampling): checkpointed, so a resumed
    /// run draws what an uninterrupted one would.
    pub rng: &'a mut Rng,
    pub options: &'a TrainOptions,
    /// Optimizer steps taken before this one over the model's life.
    pub step: u64,
}

/// One batch's loss and gradient.
#[derive(Debug)]
pub struct Gradient {
    /// Sum form of the loss.
    pub loss: LossSum,
    /// Final recurrent state of the batch (empty where nothing carries).
    pub final_state: StackState,
    /// The first non-finite value met (a NaN output, a non-finite loss); None: all finite.
    pub non_finite: Option<f64>,
}

/// The step buffers of a [`Network`]: the forward's cache, the head outputs and their gradient
/// (kept for their capacity).
#[derive(Debug, Default)]
pub struct NetworkWork {
    cache: ForwardCache,
    outputs: Vec<f32>,
    doutputs: Vec<f32>,
}

impl Trainable for Network {
    type Data = TrainData;
    type Valid = ValidData;
    type Order = Vec<usize>;
    type Batch = Batch;
    type Work = NetworkWork;

    fn params(&self) -> &Params {
        Network::params(self)
    }

    fn params_mut(&mut self) -> &mut Params {
        Network::params_mut(self)
    }

    fn check_options(&self, options: &TrainOptions) -> Result<()> {
        if self.precision() != Precision::F32 {
            return Err(Error::Config(format!(
                "fit: this model's weights are at precision \"{}\", which is for generation; training runs in f32 (load the model without a precision to train it)",
                self.precision().name()
            )));
        }
        if let Some(w) = &options.class_weights {
            if w.len() != self.config.output_size {
                return Err(Error::Shape(format!(
                    "classWeights: expected {} weights (one per class), got {}",
                    self.config.output_size,
                    w.len()
                )));
            }
        }
        if options.scheduled_sampling.is_some() {
            return Err(Error::Config(
                "scheduledSampling: applies to sequence-to-sequence models (their decoder's inputs)".into(),
            ));
        }
        if options.spec_augment.is_some() && self.config.speech.is_none() {
            return Err(Error::Config("specAugment: applies to speech models (their feature frames)".into()));
        }
        Ok(())
    }

    fn check_data(&self, options: &TrainOptions, data: &TrainData, valid: Option<&ValidData>) -> Result<()> {
        check_network_data(self, options, data)?;
        options.check_validation(self, valid)
    }

    fn batches_per_epoch(data: &TrainData, options: &TrainOptions) -> usize {
        data.batches_per_epoch(options)
    }

    fn epoch_order(data: &TrainData, options: &TrainOptions, epoch: u64) -> Vec<usize> {
        data.epoch_order(options, epoch)
    }

    fn batch(data: &TrainData, options: &TrainOptions, order: &Vec<usize>, index: usize) -> Batch {
        data.batch(options, order, index)
    }

    fn carries_state(data: &TrainData) -> bool {
        matches!(data, TrainData::Stream(s) if s.mode() == StreamMode::Lanes)
    }

    fn gradient(&self, batch: &Batch, step: StepInput, work: &mut NetworkWork, grads: &mut Params) -> Result<Gradient> {
        let StepInput { state, rng, options, .. } = step;
        let augmented;
        let batch = match (&options.spec_augment, &self.config.input) {
            (Some(sa), &InputKind::Dense { input_size }) => {
                augmented = spec_augmented(batch, sa, input_size, rng)?;
                &augmented
            }
            _ => batch,
        };
        let dropout = (self.config.dropout > 0.0).then_some(rng);
        // Bad user input stays an error of its own kind; after this check, a non-finite value
        // met by the forward (a NaN embedding row in the recurrent input) or in the outputs
        // (refused by the losses as input) means the weights diverged: a non-finite loss, which
        // stops naming the step or is skipped.
        self.check_batch(batch)?;
        let final_state = match self.forward_into(batch, state, dropout, &mut work.cache, &mut work.outputs) {
            Ok(r) => r,
            Err(Error::NonFinite(_)) => {
                let zeros = StackState::zeros(self.stack(), batch.rows);
                return Ok(Gradient { loss: LossSum::default(), final_state: zeros, non_finite: Some(f64::NAN) });
            }
            Err(e) => return Err(e),
        };
        if work.outputs.iter().any(|v| !v.is_finite()) {
            return Ok(Gradient { loss: LossSum::default(), final_state, non_finite: Some(f64::NAN) });
        }
        work.doutputs.resize(work.outputs.len(), 0.0);
        let weights = options.class_weights.as_deref();
        let loss = network_loss(self, &work.outputs, batch, weights, Some(&mut work.doutputs))?;
        let mean = loss.sum.mean();
        if !mean.is_finite() {
            return Ok(Gradient { loss: loss.sum, final_state, non_finite: Some(mean) });
        }
        self.backward(&mut work.cache, &work.doutputs, None, grads)?;
        Ok(Gradient { loss: loss.sum, final_state, non_finite: None })
    }

    fn evaluate(&self, valid: &ValidData, options: &TrainOptions, cancel: Option<&AtomicBool>) -> Result<Evaluation> {
        match valid {
            ValidData::Stream { tokens, lanes } => evaluate_stream(self, tokens, Some(*lanes), options.seq_len, cancel),
            ValidData::Sequences(set) => evaluate_sequences(self, set, options.batch_size, cancel),
        }
    }
}

/// A network's training data against its task and the options' windowing.
/// A copy of a speech batch with SpecAugment masks over each utterance's frames
/// (`[rows, steps, features]`, the frames before stacking).
fn spec_augmented(batch: &Batch, sa: &SpecAugmentConfig, features: usize, rng: &mut Rng) -> Result<Batch> {
    let mut masked = batch.clone();
    if let BatchInput::Dense(values) = &mut masked.input {
        sa.apply_to_batch(values, batch.steps, features, batch.lengths.as_deref(), rng)?;
    }
    Ok(masked)
}

fn check_network_data(net: &Network, options: &TrainOptions, data: &TrainData) -> Result<()> {
    let cfg = &net.config;
    match data {
        TrainData::Stream(s) => {
            if cfg.task != crate::config::Task::LanguageModel {
                return Err(Error::Config(format!(
                    "data: a token stream trains a language model, this model's task is \"{}\"",
                    cfg.task.name()
                )));
            }
            if s.batch_size() != options.batch_size || s.seq_len() != options.seq_len || s.last() != options.last {
                return Err(Error::Config(
                    "data: the stream was cut with another batchSize/seqLen/last than the options".into(),
                ));
            }
            if s.batches_per_epoch() == 0 {
                return Err(Error::Range(format!(
                    "batchSize: {} is more than the {} windows of the training text and last is \"drop\"",
                    s.batch_size(),
                    s.windows()
                )));
            }
            Ok(())
        }
        TrainData::Sequences(set) => {
            if options.last == LastBatch::Pad {
                return Err(Error::Config(
                    "last: \"pad\" applies to token streams; rows take \"keep\" or \"drop\"".into(),
                ));
            }
            if set.batches_per_epoch(options.batch_size, options.last) == 0 {
                return Err(Error::Range(format!(
                    "batchSize: {} is more than the {} training rows and last is \"drop\"",
                    options.batch_size, set.rows
                )));
            }
            set.validate()?;
            check_transcripts_fit(set, net.frame_stacking())
        }
    }
}
