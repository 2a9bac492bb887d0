//! Losses: softmax cross-entropy over logits (PyTorch `F.cross_entropy` semantics: ignore index,
//! optional class weights as a weighted mean) and mean squared error, each returning a
//! [`LossSum`] (the sum form, for evaluation across batches) and optionally writing the gradient
//! of the mean form.
//!
//! An all-ignored batch (or one whose counted targets all have class weight 0) has loss 0, count
//! 0 and a zero gradient rather than PyTorch's NaN: such batches happen legitimately (the last
//! truncated-BPTT chunk of a padded row), and should neither stop training nor poison a sum.

use crate::error::{check_len, checked_size, Error, Result};
use crate::ids::Id;

/// A loss as a sum, so that batches combine exactly: `total` is Σ wᵢ·lossᵢ over counted
/// positions, `weight` is Σ wᵢ (the count when unweighted), `count` the number of positions.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LossSum {
    pub total: f64,
    pub weight: f64,
    pub count: usize,
}

impl LossSum {
    /// The mean (`total / weight`), or 0 when nothing was counted.
    pub fn mean(&self) -> f64 {
        if self.weight > 0.0 {
            self.total / self.weight
        } else {
            0.0
        }
    }

    /// Adds another batch's sums.
    pub fn add(&mut self, other: LossSum) {
        self.total += other.total;
        self.weight += other.weight;
        self.count += other.count;
    }
}

/// Options of [`cross_entropy`].
#[derive(Debug, Clone, PartialEq)]
pub struct CrossEntropyOptions {
    /// Targets equal to this are skipped (PyTorch default -100); `None` counts every position.
    pub ignore_index: Option<i64>,
    /// Per-class weights `[C]` (PyTorch `weight=`): the loss is Σ w_y·nll / Σ w_y.
    pub class_weights: Option<Vec<f32>>,
}

impl Default for CrossEntropyOptions {
    fn default() -> Self {
        CrossEntropyOptions { ignore_index: Some(-100), class_weights: None }
    }
}

/// Softmax cross-entropy of `logits` `[N, C]` (row-major) against `targets` `[N]`.
///
/// Returns the sum form; `LossSum::mean()` is PyTorch's `reduction="mean"` value. When `dlogits`
/// (`[N, C]`) is given it receives the gradient of that mean: `w_y/W·(softmax - onehot(y))` on
/// counted rows and 0 on ignored rows (overwritten, not accumulated).
/// Errors: a target outside `0..C` that is not the ignore index (naming position and value), a
/// non-finite logit (naming row and class), wrong lengths, bad class weights.
pub fn cross_entropy<T: Id>(
    logits: &[f32],
    classes: usize,
    targets: &[T],
    opts: &CrossEntropyOptions,
    mut dlogits: Option<&mut [f32]>,
) -> Result<LossSum> {
    if classes == 0 {
        return Err(Error::Range("classes: expected at least 1, got 0".into()));
    }
    let n = targets.len();
    let size = checked_size("logits", &[n, classes])?;
    check_len("logits", logits.len(), size)?;
    if let Some(d) = dlogits.as_deref() {
        check_len("dlogits", d.len(), size)?;
    }
    if let Some(w) = &opts.class_weights {
        check_len("class_weights", w.len(), classes)?;
        if let Some(i) = w.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(Error::Range(format!("class_weights[{i}]: expected a finite number >= 0, got {}", w[i])));
        }
    }
    // Validate every target and sum the weights first: the gradient of the mean needs Σ w before
    // the single pass over the logits below.
    let class_weight = |y: usize| opts.class_weights.as_ref().map_or(1.0, |w| w[y] as f64);
    let mut sum = LossSum::default();
    for (i, t) in targets.iter().enumerate() {
        let t = t.to_i64();
        if Some(t) == opts.ignore_index {
            continue;
        }
        if !(0..classes as i64).contains(&t) {
            let ignore = opts.ignore_index.map(|v| format!(" or the ignore index {v}")).unwrap_or_default();
            return Err(Error::Range(format!("targets[{i}]: expected a class id in 0..{classes}{ignore}, got {t}")));
        }
        sum.weight += class_weight(t as usize);
        sum.count += 1;
    }
    for (i, row) in logits.chunks_exact(classes).enumerate() {
        if let Some(j) = row.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite(format!("logits[{i}, {j}]: every logit must be finite, got {}", row[j])));
        }
    }
    if let Some(d) = dlogits.as_deref_mut() {
        d.iter_mut().for_each(|v| *v = 0.0);
    }
    for (i, row) in logits.chunks_exact(classes).enumerate() {
        let t = targets[i].to_i64();
        if Some(t) == opts.ignore_index {
            continue;
        }
        let y = t as usize;
        let w = class_weight(y);
        // log-softmax with the max subtracted (no overflow); exps and their sum in f64 because
        // C can be thousands of terms. The row's exps are kept in dlogits for the gradient.
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut z = 0.0f64;
        match dlogits.as_deref_mut() {
            Some(d) => {
                let drow = &mut d[i * classes..(i + 1) * classes];
                for (dv, &v) in drow.iter_mut().zip(row) {
                    let e = ((v - m) as f64).exp();
                    z += e;
                    *dv = e as f32;
                }
                if sum.weight > 0.0 {
                    // d(mean)/dlogit_j = w_y/W · (softmax_j - [j = y]).
                    let scale = w / sum.weight;
                    let s = (scale / z) as f32;
                    drow.iter_mut().for_each(|dv| *dv *= s);
                    drow[y] -= scale as f32;
                } else {
                    drow.iter_mut().for_each(|dv| *dv = 0.0);
                }
            }
            None => z = row.iter().map(|&v| ((v - m) as f64).exp()).sum(),
        }
        // ln z − (x_y − m), not (m + ln z) − x_y: with huge logits (|m| ≫ ln z) the second form
        // loses ln z to rounding and reports a loss of 0.
        sum.total += w * (z.ln() - (row[y] as f64 - m as f64));
    }
    Ok(sum)
}

/// Mean squared error of `pred` against `target`, both `[N, width]`.
///
/// `mask` (`[N]`) selects the rows that count (PyTorch `F.mse_loss(pred[mask], target[mask])`);
/// without it every element counts. `total` is the sum of squared errors and `weight` the number
/// of counted elements. `dpred` receives the gradient of the mean, `2·(pred - target)/count`, and
/// 0 on masked-out rows (overwritten).
pub fn mse(
    pred: &[f32],
    target: &[f32],
    width: usize,
    mask: Option<&[bool]>,
    dpred: Option<&mut [f32]>,
) -> Result<LossSum> {
    if width == 0 {
        return Err(Error::Range("width: expected at least 1, got 0".into()));
    }
    check_len("target", target.len(), pred.len())?;
    if !pred.len().is_multiple_of(width) {
        return Err(Error::Shape(format!(
            "pred: expected a length that is a multiple of width {width}, got {}",
            pred.len()
        )));
    }
    let rows = pred.len() / width;
    if let Some(m) = mask {
        check_len("mask", m.len(), rows)?;
    }
    if let Some(d) = dpred.as_deref() {
        check_len("dpred", d.len(), pred.len())?;
    }
    crate::error::check_finite("pred", pred)?;
    crate::error::check_finite("target", target)?;
    let counted = |r: usize| mask.is_none_or(|m| m[r]);
    let mut sum = LossSum::default();
    for r in (0..rows).filter(|&r| counted(r)) {
        for k in r * width..(r + 1) * width {
            let e = (pred[k] - target[k]) as f64;
            sum.total += e * e;
        }
        sum.count += width;
    }
    sum.weight = sum.count as f64;
    if let Some(d) = dpred {
        let scale = if sum.count > 0 { 2.0 / sum.count as f64 } else { 0.0 };
        for r in 0..rows {
            for k in r * width..(r + 1) * width {
                d[k] = if counted(r) { (scale * (pred[k] - target[k]) as f64) as f32 } else { 0.0 };
            }
        }
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random(n: usize, scale: f32, rng: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| scale * rng.normal()).collect()
    }

    /// Central differences of the mean loss in f64 against the analytic dlogits.
    fn check_ce_gradient(opts: &CrossEntropyOptions, targets: &[i64], c: usize, seed: u64) {
        let mut rng = Rng::new(seed);
        let logits = random(targets.len() * c, 2.0, &mut rng);
        let mut d = vec![f32::NAN; logits.len()];
        cross_entropy(&logits, c, targets, opts, Some(&mut d)).unwrap();
        let h = 1e-2f32;
        for k in 0..logits.len() {
            let mut lp = logits.clone();
            lp[k] += h;
            let mut lm = logits.clone();
            lm[k] -= h;
            let fp = cross_entropy(&lp, c, targets, opts, None).unwrap().mean();
            let fm = cross_entropy(&lm, c, targets, opts, None).unwrap().mean();
            let num = (fp - fm) / (2.0 * h as f64);
            assert!((num - d[k] as f64).abs() < 1e-4, "dlogits[{k}]: analytic {} numeric {num}", d[k]);
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        check_ce_gradient(&CrossEntropyOptions::default(), &[0, 3, 2, -100, 4, 1], 5, 7);
        let weighted =
            CrossEntropyOptions { ignore_index: Some(-100), class_weights: Some(vec![0.5, 2.0, 1.0, 0.0, 3.0]) };
        check_ce_gradient(&weighted, &[0, 3, 2, -100, 4, 1], 5, 8);
    }

    #[test]
    fn value_matches_a_hand_computation_and_ignores_positions() {
        // Row 0: logits [0, ln 3] → p(target 1) = 3/4; row 1 ignored; row 2: uniform → ln 2.
        let logits = [0.0, 3f32.ln(), 100.0, -100.0, 5.0, 5.0];
        let s = cross_entropy(&logits, 2, &[1i32, -100, 0], &CrossEntropyOptions::default(), None).unwrap();
        assert_eq!(s.count, 2);
        let want = ((4.0f64 / 3.0).ln() + 2f64.ln()) / 2.0;
        assert!((s.mean() - want).abs() < 1e-6, "{} vs {want}", s.mean());
        let mut d = vec![1.0; 6];
        cross_entropy(&logits, 2, &[1i32, -100, 0], &CrossEntropyOptions::default(), Some(&mut d)).unwrap();
        assert_eq!(&d[2..4], &[0.0, 0.0], "ignored rows get no gradient");
    }

    #[test]
    fn class_weights_give_the_weighted_mean() {
        // PyTorch: Σ w_y·nll / Σ w_y. Rows with targets 0 (w 1) and 1 (w 3), both uniform logits.
        let logits = [0.0f32, 0.0, 2.0, 0.0];
        let opts = CrossEntropyOptions { ignore_index: None, class_weights: Some(vec![1.0, 3.0]) };
        let s = cross_entropy(&logits, 2, &[0i64, 1], &opts, None).unwrap();
        let nll1 = (1.0 + 2f64.exp()).ln();
        let want = (2f64.ln() + 3.0 * nll1) / 4.0;
        assert!((s.mean() - want).abs() < 1e-6, "{} vs {want}", s.mean());
        assert_eq!((s.weight, s.count), (4.0, 2));
    }

    #[test]
    fn all_ignored_gives_zero_with_count_zero() {
        let mut d = vec![1.0; 6];
        let s = cross_entropy(&[1.0; 6], 3, &[-100i64, -100], &CrossEntropyOptions::default(), Some(&mut d)).unwrap();
        assert_eq!((s.mean(), s.count), (0.0, 0));
        assert!(d.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn large_logits_are_stable_and_sums_combine() {
        let logits = [1000.0f32, 0.0, -1000.0, 1000.0];
        let s = cross_entropy(&logits, 2, &[1u32, 0], &CrossEntropyOptions::default(), None).unwrap();
        assert!((s.total - 3000.0).abs() < 1e-3, "{}", s.total);
        let mut acc = LossSum::default();
        acc.add(cross_entropy(&logits[..2], 2, &[1u32], &CrossEntropyOptions::default(), None).unwrap());
        acc.add(cross_entropy(&logits[2..], 2, &[0u32], &CrossEntropyOptions::default(), None).unwrap());
        assert_eq!(acc, s);
    }

    #[test]
    fn errors_name_position_and_value() {
        let o = CrossEntropyOptions::default();
        let e = cross_entropy(&[0.0; 6], 3, &[0i64, 3], &o, None).unwrap_err().to_string();
        assert_eq!(e, "targets[1]: expected a class id in 0..3 or the ignore index -100, got 3");
        let e = cross_entropy(&[0.0; 6], 3, &[0i64, -1], &o, None).unwrap_err().to_string();
        assert!(e.contains("targets[1]") && e.contains("got -1"), "{e}");
        let e = cross_entropy(&[0.0, 0.0, 0.0, 0.0, f32::INFINITY, 0.0], 3, &[0i64, 1], &o, None).unwrap_err();
        assert_eq!(e.to_string(), "logits[1, 1]: every logit must be finite, got inf");
        let e = cross_entropy(&[0.0; 5], 3, &[0i64, 1], &o, None).unwrap_err().to_string();
        assert_eq!(e, "logits: expected length 6, got 5");
        let bad_w = CrossEntropyOptions { ignore_index: None, class_weights: Some(vec![1.0, -1.0, 1.0]) };
        let e = cross_entropy(&[0.0; 6], 3, &[0i64, 1], &bad_w, None).unwrap_err().to_string();
        assert!(e.starts_with("class_weights[1]"), "{e}");
    }

    #[test]
    fn mse_value_gradient_and_mask() {
        let pred = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let target = [0.0f32, 2.0, 1.0, 4.0, 5.0, 9.0];
        let mut d = vec![9.0; 6];
        let s = mse(&pred, &target, 2, None, Some(&mut d)).unwrap();
        assert_eq!((s.total, s.count), (14.0, 6));
        assert!((s.mean() - 14.0 / 6.0).abs() < 1e-12);
        assert!((d[0] - 2.0 / 6.0).abs() < 1e-7 && (d[5] + 1.0).abs() < 1e-7, "{d:?}");
        let s = mse(&pred, &target, 2, Some(&[true, false, true]), Some(&mut d)).unwrap();
        assert_eq!((s.total, s.count), (10.0, 4));
        assert_eq!(&d[2..4], &[0.0, 0.0]);
        assert!((d[5] + 1.5).abs() < 1e-7, "{d:?}");
        // Finite differences of the masked mean.
        let h = 1e-3f32;
        for k in [0usize, 4, 5] {
            let mut p = pred;
            p[k] += h;
            let fp = mse(&p, &target, 2, Some(&[true, false, true]), None).unwrap().mean();
            p[k] -= 2.0 * h;
            let fm = mse(&p, &target, 2, Some(&[true, false, true]), None).unwrap().mean();
            assert!(((fp - fm) / (2.0 * h as f64) - d[k] as f64).abs() < 1e-3, "dpred[{k}]");
        }
        let e = mse(&[1.0, f32::NAN], &[0.0, 0.0], 1, None, None).unwrap_err().to_string();
        assert_eq!(e, "pred: every value must be finite, got NaN at index 1");
        let e = mse(&pred, &target, 4, None, None).unwrap_err().to_string();
        assert!(e.contains("multiple of width 4"), "{e}");
    }
}
