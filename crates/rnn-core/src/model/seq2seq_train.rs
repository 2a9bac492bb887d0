//! Training a sequence-to-sequence network: what makes it [`Trainable`], so that `fit`'s one
//! loop (`train.rs`) trains it with every option the other tasks have (limits, schedule,
//! clipping, validation, early stopping, best weights, checkpoints with the optimizer state,
//! exact resume, cancel).
//!
//! - Data: a [`PairSet`]; an epoch's order is `pairs.rs`'s length-bucketed batches, a function of
//!   `(seed, epoch)`.
//! - Loss: the masked cross-entropy of the target tokens and each row's `eos`; the decoder reads
//!   the target shifted right (teacher forcing) or, with `scheduled_sampling`, partly its own
//!   greedy predictions (`scheduled_sampling.rs`, drawn from the trainer's checkpointed
//!   generator at the probability of the step: `TrainOptions::sampling_probability`).
//! - Validation: the teacher-forced loss and token accuracy of the held-out pairs (an
//!   `ValAccuracy` monitor follows the token accuracy).
//! - Refused options: `tbptt` and `class_weights` (token streams and class heads).

use crate::error::{Error, Result};
use crate::layer::recurrent::StackState;
use crate::loss::LossSum;
use crate::model::evaluate::Evaluation;
use crate::model::seq2seq::{DecoderInputs, Seq2Seq, Seq2SeqCache};
use crate::model::seq2seq_evaluate::{teacher_forced, TeacherForced};
use crate::pairs::{PairBatch, PairSet};
use crate::params::Params;
use crate::train::{TrainOptions, Trainer};
use crate::trainable::{Gradient, StepInput, Trainable};
use std::sync::atomic::AtomicBool;

/// The trainer of a sequence-to-sequence network: `fit`'s trainer over pairs.
pub type Seq2SeqTrainer = Trainer<Seq2Seq>;

impl Trainable for Seq2Seq {
    type Data = PairSet;
    type Valid = PairSet;
    /// Row indices of each batch, in training order.
    type Order = Vec<Vec<usize>>;
    type Batch = PairBatch;
    type Work = Seq2SeqCache;

    fn params(&self) -> &Params {
        Seq2Seq::params(self)
    }

    fn params_mut(&mut self) -> &mut Params {
        Seq2Seq::params_mut(self)
    }

    fn check_options(&self, options: &TrainOptions) -> Result<()> {
        if options.tbptt {
            return Err(Error::Config("tbptt: pairs are trained whole; there is no stream to carry state over".into()));
        }
        if options.class_weights.is_some() {
            return Err(Error::Config("classWeights: a sequence-to-sequence model has no classes to weight".into()));
        }
        if options.spec_augment.is_some() {
            return Err(Error::Config("specAugment: applies to speech models (their feature frames)".into()));
        }
        Ok(())
    }

    fn check_data(&self, options: &TrainOptions, train: &PairSet, valid: Option<&PairSet>) -> Result<()> {
        let (sv, tv) = (self.config.source_vocab, self.config.target_vocab);
        if train.is_empty() {
            return Err(Error::Range("data: the training split has no pairs".into()));
        }
        train.validate(sv, tv).map_err(|e| within("data", e))?;
        if let Some(v) = valid {
            v.validate(sv, tv).map_err(|e| within("validation", e))?;
        }
        options.check_tracking(valid.is_none_or(PairSet::is_empty), true)
    }

    fn batches_per_epoch(data: &PairSet, options: &TrainOptions) -> usize {
        data.len().div_ceil(options.batch_size)
    }

    fn epoch_order(data: &PairSet, options: &TrainOptions, epoch: u64) -> Vec<Vec<usize>> {
        data.epoch_batches(options.seed, epoch, options.batch_size)
    }

    fn batch(data: &PairSet, _options: &TrainOptions, order: &Vec<Vec<usize>>, index: usize) -> PairBatch {
        data.gather(&order[index])
    }

    fn gradient(
        &self,
        batch: &PairBatch,
        step: StepInput,
        cache: &mut Seq2SeqCache,
        grads: &mut Params,
    ) -> Result<Gradient> {
        let none = StackState::default();
        let probability = step.options.sampling_probability(step.step);
        let inputs = if probability > 0.0 {
            DecoderInputs::Sampled { probability, rng: step.rng }
        } else {
            DecoderInputs::Target
        };
        match self.forward_with(batch, inputs, cache) {
            Ok(()) => {}
            Err(Error::NonFinite(_)) => {
                return Ok(Gradient { loss: LossSum::default(), final_state: none, non_finite: Some(f64::NAN) })
            }
            Err(e) => return Err(e),
        }
        // Non-finite logits mean the weights diverged (the loss would refuse them as input).
        if cache.logits().iter().any(|v| !v.is_finite()) {
            return Ok(Gradient { loss: LossSum::default(), final_state: none, non_finite: Some(f64::NAN) });
        }
        let loss = self.output_gradient(cache)?;
        if !loss.mean().is_finite() {
            return Ok(Gradient { loss, final_state: none, non_finite: Some(loss.mean()) });
        }
        self.backward(batch, cache, grads)?;
        Ok(Gradient { loss, final_state: none, non_finite: None })
    }

    fn evaluate(&self, valid: &PairSet, _options: &TrainOptions, cancel: Option<&AtomicBool>) -> Result<Evaluation> {
        let TeacherForced { loss, correct, .. } = teacher_forced(self, valid, cancel)?;
        Ok(Evaluation { loss, correct, classes: true, confusion: None, regression: None, transcripts: None })
    }
}

/// `e` with `name` before its message (which data set it is about).
fn within(name: &str, e: Error) -> Error {
    match e {
        Error::Range(m) => Error::Range(format!("{name}: {m}")),
        other => other,
    }
}
