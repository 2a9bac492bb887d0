//! Evaluation without gradients: the stateful stream protocol of docs/FORMAT.md for language models,
//! and batched evaluation of sequence sets.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::batch::{Batch, BatchInput, BatchTargets, SequenceSet, IGNORE_INDEX};
use crate::config::Task;
use crate::error::{Error, Result};
use crate::kernels::precision::Precision;
use crate::layer::recurrent::StackState;
use crate::loss::LossSum;
use crate::metrics::{Confusion, RegressionErrors, TranscriptErrors};
use crate::model::inference::InferenceScratch;
use crate::model::network::{ForwardCache, Network};
use crate::model::objective::{batch_loss, evaluation_loss};
use crate::model::speech::{evaluate_speech, TranscribeOptions};
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
    /// Transcripts (speech): word and character errors of the greedy transcripts.
    pub transcripts: Option<TranscriptErrors>,
}

impl Evaluation {
    /// `correct / count` for class targets.
    pub fn accuracy(&self) -> Option<f64> {
        (self.classes && self.loss.count > 0).then(|| self.correct as f64 / self.loss.count as f64)
    }
}

/// Fewest predictions per lane of the default lane count: a lane restarts from the zero state, so
/// its first few dozen predictions score worse than the stateful protocol would; over 2^20 of them
/// the difference is far below the loss's reported precision.
pub const MIN_DEFAULT_LANE_PREDICTIONS: usize = 1 << 20;

/// Most lanes of the default: past this a batched step gains little on a small model, and each
/// chunk's outputs (`lanes × chunk × V` floats) stay a few MB.
pub const MAX_DEFAULT_LANES: usize = 64;

/// Most lanes accepted: each is a row of every chunk's batch (`lanes × chunk × V` logits).
pub const MAX_LANES: usize = 4096;

/// The lane count `evaluate` uses when none is given: 1 (the exact stateful protocol) for streams
/// of fewer than 2 × 2^20 predictions, else one lane per 2^20 predictions, at most 64.
pub fn default_lanes(predictions: usize) -> usize {
    (predictions / MIN_DEFAULT_LANE_PREDICTIONS).clamp(1, MAX_DEFAULT_LANES)
}

/// The lanes of a stream of `predictions` predictions: `(first token, predictions)` of each,
/// contiguous and covering every prediction once. The first `predictions % lanes` lanes take one
/// more than the rest; lane `i` reads tokens `[start, start + n]` and predicts the last `n`, so the
/// last target of one lane is the first input of the next.
pub fn lane_spans(predictions: usize, lanes: usize) -> Vec<(usize, usize)> {
    let lanes = lanes.clamp(1, predictions.max(1));
    let (base, extra) = (predictions / lanes, predictions % lanes);
    (0..lanes).map(|i| (i * base + i.min(extra), base + usize::from(i < extra))).collect()
}

/// Mean cross-entropy of a token stream read with carried state.
///
/// With `lanes = 1` this is the stateful protocol of docs/FORMAT.md exactly: the model reads the
/// text as one stream from the first token to the last, state carried across chunks of `chunk`
/// steps, and the loss is the mean over predicting tokens 2..N. With `lanes > 1` the N−1
/// predictions are split into that many contiguous lanes ([`lane_spans`]), read together as the
/// rows of one batch (one batched step serves every lane), each with its own state carried from
/// the zero state at the lane's first token; every prediction is counted once. So the result is
/// the token-weighted mean of evaluating each lane's tokens alone with `lanes = 1`; it differs from
/// the protocol only by the restarts at the lanes' starts. `None` takes [`default_lanes`].
///
/// `cancel`, when given, is checked before each chunk: once set, evaluation stops with
/// [`Error::Aborted`] (a gigabyte text is millions of chunks).
pub fn evaluate_stream<S: TokenSource + ?Sized>(
    net: &Network,
    tokens: &S,
    lanes: Option<usize>,
    chunk: usize,
    cancel: Option<&AtomicBool>,
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
    if let Some(l) = lanes.filter(|&l| l == 0 || l > MAX_LANES) {
        return Err(Error::Range(format!("lanes: expected an integer from 1 to {MAX_LANES}, got {l}")));
    }
    if chunk == 0 {
        return Err(Error::Range("chunk: expected an integer >= 1, got 0".into()));
    }
    let predictions = tokens.len() - 1;
    let spans = lane_spans(predictions, lanes.unwrap_or_else(|| default_lanes(predictions)));
    let rows = spans.len();
    let longest = spans[0].1;
    let mut cache = ForwardCache::default();
    let mut scratch = InferenceScratch::default();
    let mut state: Option<StackState> = None;
    let mut total = Evaluation { classes: true, ..Default::default() };
    let mut at = 0;
    while at < longest {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Aborted);
        }
        let steps = chunk.min(longest - at);
        let mut inputs = Vec::with_capacity(rows * steps);
        let mut targets = Vec::with_capacity(rows * steps);
        // Lanes shorter by one end a step early in the last chunk: padded there (input 0, target
        // not counted), their state no longer advanced.
        let lengths: Vec<usize> = spans.iter().map(|&(_, n)| n.saturating_sub(at).min(steps)).collect();
        for (&(start, _), &real) in spans.iter().zip(&lengths) {
            let s = start + at;
            tokens.extend_range(s, s + real, &mut inputs);
            inputs.resize(inputs.len() + steps - real, 0);
            tokens.extend_range(s + 1, s + real + 1, &mut targets);
            targets.resize(targets.len() + steps - real, IGNORE_INDEX);
        }
        let batch = Batch {
            input: BatchInput::Tokens(inputs),
            targets: BatchTargets::PerStep(targets),
            rows,
            steps,
            lengths: lengths.iter().any(|&l| l < steps).then_some(lengths),
        };
        let (outputs, next) = match net.precision() {
            Precision::F32 => net.forward(&batch, state.as_ref(), None, &mut cache)?,
            // Reduced precision: evaluate the weights generation uses.
            _ => {
                let BatchInput::Tokens(ids) = &batch.input else { unreachable!("internal: a token stream's batch") };
                let mut carried = state.take().unwrap_or_else(|| net.zero_state(rows));
                let logits =
                    net.feed_every_step(ids, rows, steps, batch.lengths.as_deref(), &mut carried, &mut scratch)?;
                (logits, carried)
            }
        };
        let l = evaluation_loss(&outputs, net.config.output_size, &batch)?;
        total.loss.add(l.sum);
        total.correct += l.correct;
        state = Some(next);
        at += steps;
    }
    Ok(total)
}

/// Loss and accuracy of a sequence set, in batches of `batch_size` rows in file order; `cancel`,
/// when given, is checked before each batch ([`Error::Aborted`] once set).
pub fn evaluate_sequences(
    net: &Network,
    set: &SequenceSet,
    batch_size: usize,
    cancel: Option<&AtomicBool>,
) -> Result<Evaluation> {
    if net.config.task == Task::Speech {
        return evaluate_speech(net, set, batch_size, &TranscribeOptions::default(), cancel);
    }
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
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Aborted);
        }
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
        // Speech models are evaluated by `speech::evaluate_speech` (error rates, not per step).
        BatchTargets::Transcripts { .. } => {}
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
/// tasks `[N, T', C]` with zeros at padded steps (`T'` = T, or ⌈T / k⌉ for a speech model's frame
/// stacking k). Targets in `set` are ignored.
pub fn predict_sequences(net: &Network, set: &SequenceSet, batch_size: usize) -> Result<Vec<f32>> {
    set.validate()?;
    if batch_size == 0 {
        return Err(Error::Range("batchSize: expected an integer >= 1, got 0".into()));
    }
    let c = net.config.output_size;
    let (n, t_all) = (set.rows, net.output_steps(set.steps));
    let per_step = net.per_step();
    let mut out = vec![0.0; if per_step { n * t_all * c } else { n * c }];
    let order: Vec<usize> = (0..n).collect();
    let mut cache = ForwardCache::default();
    for i in 0..set.batches_per_epoch(batch_size, crate::batch::LastBatch::Keep) {
        let batch = set.batch(&order, batch_size, i);
        let (outputs, _) = net.forward(&batch, None, None, &mut cache)?;
        let (b, t) = (batch.rows, net.output_steps(batch.steps));
        for r in 0..b {
            let row = i * batch_size + r;
            if per_step {
                // outputs are time-major [T·B, C]; only the row's real steps are copied.
                for s in 0..net.output_steps(set.lengths[row]) {
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
