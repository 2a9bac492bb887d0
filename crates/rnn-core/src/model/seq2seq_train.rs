//! Training a sequence-to-sequence network: `fit`'s loop for pairs. It takes the same
//! [`TrainOptions`] as the trainer of the other tasks (`train.rs`) and reports through the same
//! [`TrainEvent`]s and [`History`], so the bindings show its progress the same way.
//!
//! What it covers of those options: `epochs`, `max_steps`, `time_limit` (limits counted per
//! call, the step counter over the model's life), `optimizer`, `schedule` (read at the life-long
//! step), `clip_value` then `clip_norm`, `seed` (the data order of `pairs.rs`: a function of seed
//! and epoch), `log_every`, `validate_every` (default: each epoch's end and the run's end),
//! `early_stopping` (`ValLoss`, or `ValAccuracy` = teacher-forced token accuracy;
//! `restore_best`), `checkpoint_every` and `checkpoint_best` (the writer the caller gives saves
//! the weights), `skip_non_finite`. Refused: `tbptt` and `class_weights` (token streams and class
//! heads). The optimizer moments and the position live in the trainer between calls, so a second
//! `fit` continues the first; they are not written into checkpoint files, so a run restarted from
//! a file starts a fresh optimizer (not an exact resume).

use crate::error::{Error, Result};
use crate::loss::LossSum;
use crate::model::seq2seq::{Seq2Seq, StepUpdate, StepWork};
use crate::model::seq2seq_evaluate::{teacher_forced, TeacherForced};
use crate::optim::schedule::Schedule;
use crate::optim::Optimizer;
use crate::pairs::PairSet;
use crate::train::{History, Monitor, StopReason, TrainEvent, TrainOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Everything besides the weights that changes while a sequence-to-sequence model trains.
#[derive(Debug)]
pub struct Seq2SeqTrainer {
    pub options: TrainOptions,
    /// Optimizer steps taken over the model's life (what the schedule reads).
    pub step: u64,
    /// Epochs completed, and the next batch of the current one.
    pub epoch: u64,
    pub batch: usize,
    optimizer: Optimizer,
    schedule: Schedule,
    work: StepWork,
}

/// Writes a checkpoint of the network; returns the path written.
pub type CheckpointFn<'a> = dyn FnMut(&Seq2Seq) -> Result<String> + 'a;

/// Where a run reports to: progress events and checkpoints.
pub struct FitSinks<'a> {
    pub on_event: &'a mut dyn FnMut(TrainEvent),
    pub checkpoint: &'a mut CheckpointFn<'a>,
}

/// The best validation so far (early stopping, best checkpoints).
struct Best {
    monitor: Monitor,
    min_delta: f64,
    step: Option<u64>,
    value: f64,
    since: u64,
    params: Option<Vec<f32>>,
}

impl Best {
    fn improves(&self, value: f64) -> bool {
        if !value.is_finite() {
            return false;
        }
        match (self.step, self.monitor) {
            (None, _) => true,
            (Some(_), Monitor::ValLoss) => value < self.value - self.min_delta,
            (Some(_), Monitor::ValAccuracy) => value > self.value + self.min_delta,
        }
    }
}

impl Seq2SeqTrainer {
    /// A trainer for `net` at step 0. Refuses the options that have no meaning for pairs.
    pub fn new(net: &Seq2Seq, options: TrainOptions) -> Result<Self> {
        check_options(&options)?;
        Ok(Seq2SeqTrainer {
            optimizer: Optimizer::new(&options.optimizer, net.params().data.len())?,
            schedule: Schedule::new(options.optimizer.lr(), options.schedule.clone())?,
            work: StepWork::new(net),
            options,
            step: 0,
            epoch: 0,
            batch: 0,
        })
    }

    /// New options for the next `fit`: the optimizer's moments are kept unless its
    /// configuration changed.
    pub fn set_options(&mut self, options: TrainOptions) -> Result<()> {
        check_options(&options)?;
        if options.optimizer != self.options.optimizer {
            self.optimizer = Optimizer::new(&options.optimizer, self.work.grads.data.len())?;
        }
        self.schedule = Schedule::new(options.optimizer.lr(), options.schedule.clone())?;
        if options.batch_size != self.options.batch_size || options.seed != self.options.seed {
            // Another data order: the position inside an epoch of the old one means nothing.
            self.batch = 0;
        }
        self.options = options;
        Ok(())
    }

    /// Trains `net` on `train` (the bucketed order of `pairs.rs`), validating on `valid`.
    /// Stops at the first limit reached, on `cancel` (checked before every step; an aborted run
    /// keeps the weights of its last step), or by early stopping.
    pub fn fit(
        &mut self,
        net: &mut Seq2Seq,
        train: &PairSet,
        valid: Option<&PairSet>,
        cancel: &AtomicBool,
        sinks: FitSinks,
    ) -> Result<History> {
        let FitSinks { on_event, checkpoint } = sinks;
        let opts = self.options.clone();
        if train.is_empty() {
            return Err(Error::Range("data: the training split has no pairs".into()));
        }
        train.validate(net.config.source_vocab, net.config.target_vocab).map_err(|e| within("data", e))?;
        let tracking = match (&opts.early_stopping, opts.checkpoint_best) {
            (Some(es), _) => Some((es.monitor, es.min_delta)),
            (None, true) => Some((Monitor::ValLoss, 0.0)),
            (None, false) => None,
        };
        match valid {
            Some(v) if !v.is_empty() => {
                v.validate(net.config.source_vocab, net.config.target_vocab).map_err(|e| within("validation", e))?
            }
            _ if tracking.is_some() => {
                return Err(Error::Config(
                    "earlyStopping: needs validation data (a dataset with a validation split)".into(),
                ))
            }
            _ => {}
        }
        let valid = valid.filter(|v| !v.is_empty());
        let start = Instant::now();
        let per_epoch = train.len().div_ceil(opts.batch_size) as u64;
        if self.batch as u64 >= per_epoch {
            self.batch = 0;
        }
        let first_step = self.step;
        let epochs = match (opts.epochs, opts.max_steps, opts.time_limit) {
            (None, None, None) => Some(1),
            (e, _, _) => e,
        };
        let last_epoch = epochs.map(|e| self.epoch + e);
        let last_step = opts.max_steps.map(|m| first_step + m);
        let planned = {
            let by_epochs =
                last_epoch.map(|e| (e * per_epoch).saturating_sub(self.epoch * per_epoch + self.batch as u64));
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
        let mut best = tracking.map(|(monitor, min_delta)| Best {
            monitor,
            min_delta,
            step: None,
            value: f64::NAN,
            since: 0,
            params: None,
        });
        let patience = opts.early_stopping.map(|es| es.patience);
        let restore_best = opts.early_stopping.is_some_and(|es| es.restore_best);
        let mut order: Option<(u64, Vec<Vec<usize>>)> = None;
        let mut window = LossSum::default();
        let mut unreported = None;
        let mut validated_at = None;
        loop {
            let stop = if cancel.load(Ordering::Relaxed) {
                Some(StopReason::Aborted)
            } else if patience.is_some_and(|p| best.as_ref().is_some_and(|b| b.since >= p)) {
                Some(StopReason::EarlyStopping)
            } else if last_epoch.is_some_and(|e| self.epoch >= e) {
                Some(StopReason::Completed)
            } else if last_step.is_some_and(|m| self.step >= m) {
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
            if order.as_ref().is_none_or(|(e, _)| *e != self.epoch) {
                order = Some((self.epoch, train.epoch_batches(opts.seed, self.epoch, opts.batch_size)));
            }
            let batch = train.gather(&order.as_ref().expect("set above").1[self.batch]);
            let lr = self.schedule.lr_at(self.step);
            let update = StepUpdate { lr, clip_value: opts.clip_value, clip_norm: opts.clip_norm };
            let outcome = net.train_step(&batch, &mut self.work, &mut self.optimizer, update);
            let (loss, grad_norm) = match outcome {
                Ok((loss, norm)) => (Some(loss), norm),
                Err(Error::LossNotFinite { .. }) if opts.skip_non_finite => (None, f64::NAN),
                Err(e) => return Err(e),
            };
            self.step += 1;
            self.batch += 1;
            if self.batch as u64 >= per_epoch {
                self.epoch += 1;
                self.batch = 0;
            }
            history.steps_done += 1;
            history.tokens += batch.target_lengths.iter().map(|l| l + 1).sum::<usize>() as u64;
            if let Some(l) = loss {
                window.add(l);
            }
            history.steps.push(self.step);
            history.loss.push(loss.map_or(f64::NAN, |l| l.mean()));
            let elapsed = start.elapsed().as_secs_f64();
            let epoch_end = self.batch == 0;
            let done = history.steps_done as f64;
            let remaining = match (planned, opts.time_limit) {
                (Some(p), Some(l)) => ((p as f64 - done) * elapsed / done).min(l - elapsed),
                (Some(p), None) => (p as f64 - done) * elapsed / done,
                (None, Some(l)) => l - elapsed,
                (None, None) => 0.0,
            };
            let total = planned.unwrap_or_else(|| (done * (elapsed + remaining.max(0.0)) / elapsed.max(1e-9)) as u64);
            let event = TrainEvent::Step {
                step: self.step,
                total_steps: total + first_step,
                epoch: self.epoch,
                epoch_progress: self.batch as f64 / per_epoch as f64,
                loss: if window.count > 0 { window.mean() } else { f64::NAN },
                lr,
                grad_norm,
                tokens_per_second: history.tokens as f64 / elapsed.max(1e-9),
                elapsed,
                eta: remaining.max(0.0),
            };
            if self.step.is_multiple_of(opts.log_every) || epoch_end {
                on_event(event);
                window = LossSum::default();
                unreported = None;
            } else {
                unreported = Some(event);
            }
            let validate_now = match opts.validate_every {
                Some(v) => self.step.is_multiple_of(v),
                None => epoch_end,
            };
            if let (Some(v), true) = (valid, validate_now) {
                let result = self.validate(net, v, &mut history, (&start, &mut *on_event))?;
                let tracked = Tracked { best: best.as_mut(), restore_best, history: &mut history };
                self.track_best(net, result, tracked, (&mut *on_event, &mut *checkpoint));
                validated_at = Some(self.step);
            }
            if opts.checkpoint_every.is_some_and(|c| self.step.is_multiple_of(c)) {
                write_checkpoint(net, self.step, on_event, checkpoint);
            }
        }
        if let Some(event) = unreported {
            on_event(event);
        }
        if let Some(v) = valid {
            if validated_at != Some(self.step) && history.steps_done > 0 {
                let result = self.validate(net, v, &mut history, (&start, &mut *on_event))?;
                let tracked = Tracked { best: best.as_mut(), restore_best, history: &mut history };
                self.track_best(net, result, tracked, (&mut *on_event, &mut *checkpoint));
            }
        }
        if history.stop_reason != StopReason::Aborted {
            if let Some(saved) = best.as_ref().and_then(|b| b.params.as_ref()) {
                net.params_mut().data.copy_from_slice(saved);
            }
        }
        history.elapsed = start.elapsed().as_secs_f64();
        Ok(history)
    }

    /// Teacher-forced loss and token accuracy on `valid`, recorded and reported.
    fn validate(
        &self,
        net: &Seq2Seq,
        valid: &PairSet,
        history: &mut History,
        report: (&Instant, &mut dyn FnMut(TrainEvent)),
    ) -> Result<Validation> {
        let TeacherForced { loss, correct, count } = teacher_forced(net, valid)?;
        let accuracy = correct as f64 / count.max(1) as f64;
        history.val_steps.push(self.step);
        history.val_loss.push(loss.mean());
        let (start, on_event) = report;
        on_event(TrainEvent::Validation {
            step: self.step,
            epoch: self.epoch,
            val_loss: loss.mean(),
            val_accuracy: Some(accuracy),
            val_count: count,
            elapsed: start.elapsed().as_secs_f64(),
        });
        Ok(Validation { loss: loss.mean(), accuracy })
    }

    /// Follows validation `v` (just made at the current step): on an improvement, the best step
    /// in `history`, a copy of the weights (`restore_best`) and the best checkpoint
    /// (`checkpoint_best`); otherwise one more validation without improvement.
    fn track_best(&self, net: &Seq2Seq, v: Validation, tracked: Tracked, sinks: Sinks) {
        let Tracked { best, restore_best, history } = tracked;
        let Some(best) = best else { return };
        let value = match best.monitor {
            Monitor::ValLoss => v.loss,
            Monitor::ValAccuracy => v.accuracy,
        };
        if !best.improves(value) {
            best.since += 1;
            return;
        }
        best.step = Some(self.step);
        best.value = value;
        best.since = 0;
        history.best_step = Some(self.step);
        history.best_val_loss = Some(v.loss);
        history.best_val_accuracy = (best.monitor == Monitor::ValAccuracy).then_some(value);
        if restore_best {
            let params = &net.params().data;
            match &mut best.params {
                Some(saved) => saved.copy_from_slice(params),
                None => best.params = Some(params.clone()),
            }
        }
        if self.options.checkpoint_best {
            let (on_event, checkpoint) = sinks;
            write_checkpoint(net, self.step, on_event, checkpoint);
        }
    }
}

/// One validation's figures.
#[derive(Debug, Clone, Copy)]
struct Validation {
    loss: f64,
    accuracy: f64,
}

/// What `track_best` updates.
struct Tracked<'a> {
    best: Option<&'a mut Best>,
    restore_best: bool,
    history: &'a mut History,
}

type Sinks<'a, 'b> = (&'a mut dyn FnMut(TrainEvent), &'a mut CheckpointFn<'b>);

/// Writes a checkpoint and reports it; a failed write is reported and training goes on.
fn write_checkpoint(net: &Seq2Seq, step: u64, on_event: &mut dyn FnMut(TrainEvent), checkpoint: &mut CheckpointFn) {
    match checkpoint(net) {
        Ok(path) => on_event(TrainEvent::Checkpoint { step, path }),
        Err(e) => on_event(TrainEvent::CheckpointError { step, message: e.to_string() }),
    }
}

fn check_options(options: &TrainOptions) -> Result<()> {
    if options.tbptt {
        return Err(Error::Config("tbptt: pairs are trained whole; there is no stream to carry state over".into()));
    }
    if options.class_weights.is_some() {
        return Err(Error::Config("classWeights: a sequence-to-sequence model has no classes to weight".into()));
    }
    Ok(())
}

/// `e` with `name` before its message (which data set it is about).
fn within(name: &str, e: Error) -> Error {
    match e {
        Error::Range(m) => Error::Range(format!("{name}: {m}")),
        other => other,
    }
}
