//! The loss of each task on a network's outputs: cross-entropy for token and class targets, mean
//! squared error for real-valued targets, CTC for transcripts (speech). Batch targets are batch-first; per-step outputs are
//! time-major (row `t·B + b`), so per-step targets are transposed here, padded steps ignored.

use crate::batch::{Batch, BatchTargets, SequenceSet, IGNORE_INDEX};
use crate::ctc::{ctc_loss, CtcOptions, CtcTargets, Reduction};
use crate::error::{check_len, Error, Result};
use crate::loss::{cross_entropy, mse, CrossEntropyOptions, LossSum};
use crate::model::network::Network;

/// The loss of one batch, and what accuracy needs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchLoss {
    /// Sum form of the loss (mean = `sum.mean()`).
    pub sum: LossSum,
    /// Counted positions whose argmax equals the target (class targets only).
    pub correct: usize,
}

/// Computes the loss of `outputs` against `batch`'s targets and, when `doutputs` is given, the
/// gradient of the mean loss w.r.t. the outputs.
pub fn batch_loss(
    outputs: &[f32],
    width: usize,
    batch: &Batch,
    class_weights: Option<&[f32]>,
    doutputs: Option<&mut [f32]>,
) -> Result<BatchLoss> {
    let (b, t) = (batch.rows, batch.steps);
    let real = |r: usize, s: usize| batch.lengths.as_ref().is_none_or(|l| s < l[r]);
    match &batch.targets {
        BatchTargets::PerStep(y) => classes(outputs, width, &time_major_targets(batch, y)?, class_weights, doutputs),
        BatchTargets::PerRow(y) => {
            check_len("targets", y.len(), b)?;
            classes(outputs, width, y, class_weights, doutputs)
        }
        BatchTargets::ValuesPerStep(y) => {
            check_len("targets", y.len(), b * t * width)?;
            let mut tm = vec![0.0; b * t * width];
            let mut mask = vec![false; b * t];
            for r in 0..b {
                for s in 0..t {
                    let (src, dst) = ((r * t + s) * width, (s * b + r) * width);
                    tm[dst..dst + width].copy_from_slice(&y[src..src + width]);
                    mask[s * b + r] = real(r, s);
                }
            }
            Ok(BatchLoss { sum: mse(outputs, &tm, width, Some(&mask), doutputs)?, correct: 0 })
        }
        BatchTargets::ValuesPerRow(y) => {
            check_len("targets", y.len(), b * width)?;
            Ok(BatchLoss { sum: mse(outputs, y, width, None, doutputs)?, correct: 0 })
        }
        BatchTargets::Transcripts { .. } => Err(Error::Config(
            "targets: transcripts are scored by speech_loss (network_loss), which knows the network's frame stacking"
                .into(),
        )),
    }
}

/// The loss of a network's `outputs` on `batch`: [`speech_loss`] for a speech model, else
/// [`batch_loss`]. What training and evaluation call.
pub fn network_loss(
    net: &Network,
    outputs: &[f32],
    batch: &Batch,
    class_weights: Option<&[f32]>,
    doutputs: Option<&mut [f32]>,
) -> Result<BatchLoss> {
    match &batch.targets {
        BatchTargets::Transcripts { .. } => {
            speech_loss(outputs, net.config.output_size, batch, net.frame_stacking(), doutputs)
        }
        _ => batch_loss(outputs, net.config.output_size, batch, class_weights, doutputs),
    }
}

/// The CTC loss (blank 0, PyTorch's mean: each row's loss over its transcript length, averaged)
/// of per-step outputs `[T'·B, C]` (time-major, `T' = ⌈T / k⌉` for frame stacking `k`) against
/// the batch's transcripts; `doutputs` receives the gradient of that mean. The sum form counts
/// rows: `total` = Σ loss_b / max(1, S_b), `weight` = `count` = B.
/// A transcript that cannot be aligned to its row's output steps is an error naming the batch row
/// ([`check_transcripts_fit`] names the data set's row before training).
pub fn speech_loss(
    outputs: &[f32],
    width: usize,
    batch: &Batch,
    frame_stacking: usize,
    doutputs: Option<&mut [f32]>,
) -> Result<BatchLoss> {
    let BatchTargets::Transcripts { labels, max_len, lengths } = &batch.targets else {
        return Err(Error::Config("targets: a speech model trains on transcripts".into()));
    };
    let b = batch.rows;
    let steps = batch.steps.div_ceil(frame_stacking);
    let input_lengths: Vec<usize> = match &batch.lengths {
        Some(l) => l.iter().map(|&n| n.div_ceil(frame_stacking)).collect(),
        None => vec![steps; b],
    };
    for (r, &n) in input_lengths.iter().enumerate() {
        let need = ctc_steps_needed(&labels[r * max_len..r * max_len + lengths[r]]);
        if need > n {
            return Err(transcript_too_long(&format!("transcripts[{r}]"), need, n, frame_stacking));
        }
    }
    let targets = CtcTargets { labels, max_len: *max_len, lengths };
    let opts = CtcOptions { blank: crate::alphabet::BLANK, reduction: Reduction::Mean, zero_infinity: false };
    let loss = ctc_loss(outputs, steps, b, width, &input_lengths, targets, &opts, doutputs)?;
    let total = loss.rows.iter().zip(lengths).map(|(l, &n)| l / n.max(1) as f64).sum();
    Ok(BatchLoss { sum: LossSum { total, weight: b as f64, count: b }, correct: 0 })
}

/// Output steps a CTC alignment of `labels` needs: one per label and one blank between each pair
/// of equal neighbours.
pub fn ctc_steps_needed(labels: &[i32]) -> usize {
    labels.len() + labels.windows(2).filter(|w| w[0] == w[1]).count()
}

fn transcript_too_long(name: &str, need: usize, have: usize, frame_stacking: usize) -> Error {
    Error::Range(format!(
        "{name}: the transcript needs {need} output steps (a step per character and a blank between repeated \
         ones), its audio gives {have} (frame stacking {frame_stacking}); shorten the transcript, lower \
         frameStacking or drop the row"
    ))
}

/// Checks that every transcript of `set` fits its row's output steps, naming the first row that
/// does not (so training refuses the data up front instead of meeting an infinite loss).
pub fn check_transcripts_fit(set: &SequenceSet, frame_stacking: usize) -> Result<()> {
    let BatchTargets::Transcripts { labels, max_len, lengths } = &set.targets else {
        return Ok(());
    };
    for r in 0..set.rows {
        let need = ctc_steps_needed(&labels[r * max_len..r * max_len + lengths[r]]);
        let have = set.lengths[r].div_ceil(frame_stacking);
        if need > have {
            return Err(transcript_too_long(&format!("transcripts[{r}]"), need, have, frame_stacking));
        }
    }
    Ok(())
}

fn classes(
    logits: &[f32],
    width: usize,
    targets: &[i32],
    class_weights: Option<&[f32]>,
    doutputs: Option<&mut [f32]>,
) -> Result<BatchLoss> {
    if logits.len() != targets.len() * width {
        return Err(Error::Shape(format!(
            "outputs: expected {} values for {} targets of {width} classes, got {}",
            targets.len() * width,
            targets.len(),
            logits.len()
        )));
    }
    let opts = CrossEntropyOptions {
        ignore_index: Some(IGNORE_INDEX as i64),
        class_weights: class_weights.map(<[f32]>::to_vec),
    };
    let sum = cross_entropy(logits, width, targets, &opts, doutputs)?;
    let correct = targets
        .iter()
        .enumerate()
        .filter(|&(i, &y)| y != IGNORE_INDEX && argmax(&logits[i * width..(i + 1) * width]) == y as usize)
        .count();
    Ok(BatchLoss { sum, correct })
}

/// Per-step class targets `[B, T]` transposed to the outputs' time-major order (row `t·B + b`),
/// padded steps `IGNORE_INDEX`.
fn time_major_targets(batch: &Batch, y: &[i32]) -> Result<Vec<i32>> {
    let (b, t) = (batch.rows, batch.steps);
    check_len("targets", y.len(), b * t)?;
    let real = |r: usize, s: usize| batch.lengths.as_ref().is_none_or(|l| s < l[r]);
    let mut tm = vec![IGNORE_INDEX; b * t];
    for r in 0..b {
        for s in (0..t).filter(|&s| real(r, s)) {
            tm[s * b + r] = y[r * t + s];
        }
    }
    Ok(tm)
}

/// [`batch_loss`] of per-step class targets without a gradient (evaluating a language model's
/// stream), its positions cut into one block per engine thread, computed in parallel and summed in
/// block order: `batch_loss`'s value up to the re-association of its f64 sums (relative ~1e-15),
/// deterministic for a thread count, and faster where the softmax's f64 exps dominate (a small
/// model's evaluation spends most of its time there). Other targets: [`batch_loss`].
pub fn evaluation_loss(outputs: &[f32], width: usize, batch: &Batch) -> Result<BatchLoss> {
    blocked_loss(outputs, width, batch, crate::parallel::threads())
}

/// [`evaluation_loss`] in at most `blocks` blocks (one block, or a batch too small to split: as
/// one call of the loss).
fn blocked_loss(outputs: &[f32], width: usize, batch: &Batch, blocks: usize) -> Result<BatchLoss> {
    let BatchTargets::PerStep(y) = &batch.targets else {
        return batch_loss(outputs, width, batch, None, None);
    };
    let tm = time_major_targets(batch, y)?;
    let positions = tm.len();
    let blocks = blocks.min(positions);
    if blocks <= 1 || outputs.len() != positions * width || positions * width < crate::parallel::min_split_work() {
        return classes(outputs, width, &tm, None, None);
    }
    let per = positions.div_ceil(blocks);
    let mut parts: Vec<(usize, Option<Result<BatchLoss>>)> = (0..blocks).map(|i| (i * per, None)).collect();
    crate::parallel::for_each_mut(&mut parts, |(lo, out)| {
        let hi = (*lo + per).min(positions);
        *out = Some(classes(&outputs[*lo * width..hi * width], width, &tm[*lo..hi], None, None));
    });
    let mut total = BatchLoss::default();
    for (_, part) in parts {
        match part.expect("every block ran") {
            Ok(part) => {
                total.sum.add(part.sum);
                total.correct += part.correct;
            }
            // Refused (a non-finite logit): the whole batch's error, its row named in the batch.
            Err(_) => return classes(outputs, width, &tm, None, None),
        }
    }
    Ok(total)
}

/// Index of the first maximum (torch.argmax semantics).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BatchInput;
    use crate::rng::Rng;

    /// A per-step batch of `b` rows × `t` steps over `v` classes, random logits (time-major).
    fn batch(b: usize, t: usize, v: usize, seed: u64) -> (Batch, Vec<f32>) {
        let mut rng = Rng::new(seed);
        let targets: Vec<i32> =
            (0..b * t).map(|i| if i % 11 == 3 { IGNORE_INDEX } else { rng.below(v) as i32 }).collect();
        let logits: Vec<f32> = (0..b * t * v).map(|_| rng.below(2000) as f32 / 100.0 - 10.0).collect();
        let lengths = (0..b).map(|r| t - r % 3).collect();
        let batch = Batch {
            input: BatchInput::Tokens(vec![0; b * t]),
            targets: BatchTargets::PerStep(targets),
            rows: b,
            steps: t,
            lengths: Some(lengths),
        };
        (batch, logits)
    }

    #[test]
    fn evaluation_loss_is_batch_loss_in_parallel_blocks() {
        // 64 × 256 positions × 60 classes: well above the size that is split.
        let (b, t, v) = (64, 256, 60);
        let (batch, mut logits) = batch(b, t, v, 1);
        let whole = batch_loss(&logits, v, &batch, None, None).unwrap();
        for blocks in [1, 2, 3, 7] {
            let split = blocked_loss(&logits, v, &batch, blocks).unwrap();
            assert_eq!((split.sum.count, split.correct), (whole.sum.count, whole.correct), "{blocks} blocks");
            assert!((split.sum.total - whole.sum.total).abs() <= 1e-12 * whole.sum.total, "{blocks} blocks");
        }
        // A non-finite logit in a later block is named by its row in the whole batch.
        logits[(b * t - 5) * v + 7] = f32::NAN;
        let e = blocked_loss(&logits, v, &batch, 3).unwrap_err().to_string();
        assert_eq!(e, batch_loss(&logits, v, &batch, None, None).unwrap_err().to_string());
        assert!(e.contains(&format!("logits[{}, 7]", b * t - 5)), "{e}");
    }
}
