//! The loss of each task on a network's outputs: cross-entropy for token and class targets, mean
//! squared error for real-valued targets. Batch targets are batch-first; per-step outputs are
//! time-major (row `t·B + b`), so per-step targets are transposed here, padded steps ignored.

use crate::batch::{Batch, BatchTargets, IGNORE_INDEX};
use crate::error::{check_len, Error, Result};
use crate::loss::{cross_entropy, mse, CrossEntropyOptions, LossSum};

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
    }
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
    let BatchTargets::PerStep(y) = &batch.targets else {
        return batch_loss(outputs, width, batch, None, None);
    };
    let tm = time_major_targets(batch, y)?;
    let positions = tm.len();
    let blocks = crate::parallel::threads().min(positions);
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
        let part = part.expect("every block ran")?;
        total.sum.add(part.sum);
        total.correct += part.correct;
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
