//! Evaluation without gradients: the stateful stream protocol of docs/FORMAT.md for language models,
//! and batched evaluation of sequence sets.

use crate::batch::{Batch, BatchInput, BatchTargets, SequenceSet};
use crate::config::Task;
use crate::error::{Error, Result};
use crate::layer::recurrent::StackState;
use crate::loss::LossSum;
use crate::metrics::{Confusion, RegressionErrors};
use crate::model::network::{ForwardCache, Network};
use crate::model::objective::batch_loss;
use crate::token_store::TokenSource;

/// Loss (and accuracy where it applies) over a data set; for sequence sets also the confusion
/// matrix (class targets) or the regression errors (real targets).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation {
    pub loss: LossSum,
    /// Counted positions whose argmax was the target.
    pub correct: usize,
    /// Whether targets are classes (accuracy applies).
    pub classes: bool,
    /// Class targets of a sequence set: (true, predicted) counts.
    pub confusion: Option<Confusion>,
    /// Real-valued targets: squared and absolute errors.
    pub regression: Option<RegressionErrors>,
}

impl Evaluation {
    /// `correct / count` for class targets.
    pub fn accuracy(&self) -> Option<f64> {
        (self.classes && self.loss.count > 0).then(|| self.correct as f64 / self.loss.count as f64)
    }
}

/// Mean cross-entropy of a token stream read with carried state.
///
/// With `lanes = 1` this is the stateful protocol of docs/FORMAT.md exactly: the model reads the text as one stream
/// from the first token to the last, state carried across chunks of `chunk` steps, and the loss
/// is the mean over predicting tokens 2..N. With `lanes > 1` the N−1 predictions are split into
/// that many contiguous lanes of equal length, each read from a zero state (faster: one batched
/// step serves every lane), dropping the remainder.
pub fn evaluate_stream<S: TokenSource + ?Sized>(
    net: &Network,
    tokens: &S,
    lanes: usize,
    chunk: usize,
) -> Result<Evaluation> {
    if net.config.task != Task::LanguageModel {
        return Err(Error::Config("evaluate: a token stream needs a language model".into()));
    }
    if tokens.len() < 2 {
        return Err(Error::Range(format!(
            "tokens: a stream needs at least 2 tokens to predict one, got {}",
            tokens.len()
        )));
    }
    if lanes == 0 || chunk == 0 {
        return Err(Error::Range(format!("lanes and chunk: expected integers >= 1, got {lanes} and {chunk}")));
    }
    let predictions = tokens.len() - 1;
    let lanes = lanes.min(predictions);
    let per_lane = predictions / lanes;
    let mut cache = ForwardCache::default();
    let mut state: Option<StackState> = None;
    let mut total = Evaluation { classes: true, ..Default::default() };
    let mut at = 0;
    while at < per_lane {
        let steps = chunk.min(per_lane - at);
        let mut inputs = Vec::with_capacity(lanes * steps);
        let mut targets = Vec::with_capacity(lanes * steps);
        for lane in 0..lanes {
            let s = lane * per_lane + at;
            tokens.extend_range(s, s + steps, &mut inputs);
            tokens.extend_range(s + 1, s + steps + 1, &mut targets);
        }
        let batch = Batch {
            input: BatchInput::Tokens(inputs),
            targets: BatchTargets::PerStep(targets),
            rows: lanes,
            steps,
            lengths: None,
        };
        let (outputs, next) = net.forward(&batch, state.as_ref(), None, &mut cache)?;
        let l = batch_loss(&outputs, net.config.output_size, &batch, None, None)?;
        total.loss.add(l.sum);
        total.correct += l.correct;
        state = Some(next);
        at += steps;
    }
    Ok(total)
}

/// Loss and accuracy of a sequence set, in batches of `batch_size` rows in file order.
pub fn evaluate_sequences(net: &Network, set: &SequenceSet, batch_size: usize) -> Result<Evaluation> {
    set.validate()?;
    if batch_size == 0 {
        return Err(Error::Range("batchSize: expected an integer >= 1, got 0".into()));
    }
    let order: Vec<usize> = (0..set.rows).collect();
    let mut cache = ForwardCache::default();
    let width = net.config.output_size;
    let classes = matches!(set.targets, BatchTargets::PerRow(_) | BatchTargets::PerStep(_));
    let mut total = Evaluation { classes, ..Default::default() };
    let mut confusion = Confusion::new(width);
    let mut errors = RegressionErrors::default();
    for i in 0..set.batches_per_epoch(batch_size, crate::batch::LastBatch::Keep) {
        let batch = set.batch(&order, batch_size, i);
        let (outputs, _) = net.forward(&batch, None, None, &mut cache)?;
        let l = batch_loss(&outputs, width, &batch, None, None)?;
        total.loss.add(l.sum);
        total.correct += l.correct;
        accumulate_metrics(&outputs, width, &batch, &mut confusion, &mut errors)?;
    }
    if classes {
        total.confusion = Some(confusion);
    } else {
        total.regression = Some(errors);
    }
    Ok(total)
}

/// Adds a batch's predictions to the metrics. `outputs`: per-row heads `[B, C]`, per-step heads
/// time-major `[T·B, C]`; only counted positions (real steps, targets not IGNORE_INDEX) count.
fn accumulate_metrics(
    outputs: &[f32],
    width: usize,
    batch: &Batch,
    confusion: &mut Confusion,
    errors: &mut RegressionErrors,
) -> Result<()> {
    let (b, t) = (batch.rows, batch.steps);
    let real = |r: usize, s: usize| batch.lengths.as_ref().is_none_or(|l| s < l[r]);
    let class = |y: i32| -> Result<Option<usize>> {
        if y == crate::batch::IGNORE_INDEX {
            return Ok(None);
        }
        usize::try_from(y)
            .ok()
            .filter(|&c| c < width)
            .map(Some)
            .ok_or_else(|| Error::Range(format!("targets: class {y} is outside [0, {width})")))
    };
    match &batch.targets {
        BatchTargets::PerRow(y) => {
            for (r, &target) in y.iter().enumerate() {
                if let Some(c) = class(target)? {
                    confusion.add(&outputs[r * width..(r + 1) * width], c);
                }
            }
        }
        BatchTargets::PerStep(y) => {
            for r in 0..b {
                for s in (0..t).filter(|&s| real(r, s)) {
                    if let Some(c) = class(y[r * t + s])? {
                        let at = (s * b + r) * width;
                        confusion.add(&outputs[at..at + width], c);
                    }
                }
            }
        }
        BatchTargets::ValuesPerRow(y) => {
            for (p, &target) in outputs[..b * width].iter().zip(y) {
                errors.add(*p, target);
            }
        }
        BatchTargets::ValuesPerStep(y) => {
            for r in 0..b {
                for s in (0..t).filter(|&s| real(r, s)) {
                    let (src, dst) = ((s * b + r) * width, (r * t + s) * width);
                    for k in 0..width {
                        errors.add(outputs[src + k], y[dst + k]);
                    }
                }
            }
        }
    }
    Ok(())
}

/// The network's outputs for every row of `set`, batch-first: per-row tasks `[N, C]`, per-step
/// tasks `[N, T, C]` with zeros at padded steps. Targets in `set` are ignored.
pub fn predict_sequences(net: &Network, set: &SequenceSet, batch_size: usize) -> Result<Vec<f32>> {
    set.validate()?;
    if batch_size == 0 {
        return Err(Error::Range("batchSize: expected an integer >= 1, got 0".into()));
    }
    let c = net.config.output_size;
    let (n, t_all) = (set.rows, set.steps);
    let per_step = net.per_step();
    let mut out = vec![0.0; if per_step { n * t_all * c } else { n * c }];
    let order: Vec<usize> = (0..n).collect();
    let mut cache = ForwardCache::default();
    for i in 0..set.batches_per_epoch(batch_size, crate::batch::LastBatch::Keep) {
        let batch = set.batch(&order, batch_size, i);
        let (outputs, _) = net.forward(&batch, None, None, &mut cache)?;
        let (b, t) = (batch.rows, batch.steps);
        for r in 0..b {
            let row = i * batch_size + r;
            if per_step {
                // outputs are time-major [T·B, C]; only the row's real steps are copied.
                for s in 0..set.lengths[row] {
                    let src = (s * b + r) * c;
                    out[(row * t_all + s) * c..(row * t_all + s + 1) * c].copy_from_slice(&outputs[src..src + c]);
                }
            } else {
                out[row * c..(row + 1) * c].copy_from_slice(&outputs[r * c..(r + 1) * c]);
            }
        }
        debug_assert!(t <= t_all);
    }
    Ok(out)
}
