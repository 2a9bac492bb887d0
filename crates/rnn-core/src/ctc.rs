//! Connectionist temporal classification (Graves et al. 2006): the loss of a label sequence given
//! per-frame class scores, summed over every alignment (a frame emits a label or the blank;
//! repeats are merged, then blanks dropped), with its hand-derived gradient. `torch.nn.CTCLoss`'s
//! semantics: blank index, reductions none/sum/mean (mean: each row's loss divided by its target
//! length, clamped to ≥ 1, then averaged over rows), `zero_infinity`.
//!
//! Shapes: logits `[T, B, C]` time-major (the network's per-step outputs, row `t·B + b`), per-row
//! input lengths `[B]` (frames), targets `[B, S]` padded (row-major) with per-row lengths `[B]`.
//! The log-softmax is taken here, so the gradient is w.r.t. the logits.
//!
//! Forward–backward in log space (f64 throughout: alphas and betas are sums of thousands of
//! products of probabilities). Over the extended target `l'` (blanks around and between the S
//! labels, `L = 2S + 1` states), with `y_t(k)` the softmax and `lp = log y`:
//! - `α_t(s) = (α_{t-1}(s) + α_{t-1}(s-1) + [l'_s ≠ blank ∧ l'_s ≠ l'_{s-2}]·α_{t-1}(s-2)) · y_t(l'_s)`,
//! - `β_t(s) = (β_{t+1}(s) + β_{t+1}(s+1) + [l'_s ≠ blank ∧ l'_s ≠ l'_{s+2}]·β_{t+1}(s+2)) · y_t(l'_s)`,
//! - `p(l|x) = α_{T-1}(L-1) + α_{T-1}(L-2)`, loss `-ln p`, and since both α and β include
//!   `y_t(l'_s)`, `∂loss/∂u_t(k) = y_t(k) − Σ_{s: l'_s = k} α_t(s)β_t(s) / (y_t(k)·p)` (through
//!   the softmax; frames past a row's input length get 0).
//!
//! An infeasible row (a target that needs more frames than the input has: S plus one per repeated
//! neighbour) has loss +∞; with `zero_infinity` its loss and gradient are 0. Without it the loss
//! stays +∞ (training refuses it) and its gradient is 0, where PyTorch writes NaN.

use crate::error::{check_len, checked_size, Error, Result};

/// How the per-row losses are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// Per-row losses; the gradient is that of their sum.
    None,
    /// Sum over rows.
    Sum,
    /// Mean over rows of each row's loss divided by its target length (≥ 1), as PyTorch.
    Mean,
}

impl Reduction {
    pub fn name(self) -> &'static str {
        match self {
            Reduction::None => "none",
            Reduction::Sum => "sum",
            Reduction::Mean => "mean",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "none" => Reduction::None,
            "sum" => Reduction::Sum,
            "mean" => Reduction::Mean,
            _ => return Err(Error::Range(format!("reduction: expected \"none\", \"sum\" or \"mean\", got \"{s}\""))),
        })
    }
}

/// Options of [`ctc_loss`] (PyTorch's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtcOptions {
    /// The blank's class index.
    pub blank: usize,
    pub reduction: Reduction,
    /// An infeasible row's loss (+∞) and gradient become 0.
    pub zero_infinity: bool,
}

impl Default for CtcOptions {
    fn default() -> Self {
        CtcOptions { blank: 0, reduction: Reduction::Mean, zero_infinity: false }
    }
}

/// Target label sequences of a batch.
#[derive(Debug, Clone, Copy)]
pub struct CtcTargets<'a> {
    /// `[B, S]` labels, row-major; entries past a row's length are not read.
    pub labels: &'a [i32],
    /// S, the padded target length.
    pub max_len: usize,
    /// `[B]` real target lengths, each ≤ S.
    pub lengths: &'a [usize],
}

/// The loss of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct CtcLoss {
    /// Each row's negative log-likelihood (`+∞` when infeasible, 0 then with `zero_infinity`).
    pub rows: Vec<f64>,
    /// The reduced loss (reduction `None`: the sum of the rows).
    pub value: f64,
}

/// `ln(eᵃ + eᵇ)` without overflow; −∞ is the empty sum.
#[inline]
fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

/// The CTC loss of `logits` `[T, B, C]` against `targets`, and, when `dlogits` (`[T, B, C]`) is
/// given, the gradient of the reduced loss w.r.t. the logits (overwritten).
///
/// Errors: sizes that do not agree, an input length outside `1..=T`, a target length above S, a
/// label outside `0..C` or equal to the blank (naming row and position), a non-finite logit
/// (naming `[t, b, class]`), a blank outside `0..C`.
#[allow(clippy::too_many_arguments)]
pub fn ctc_loss(
    logits: &[f32],
    steps: usize,
    batch: usize,
    classes: usize,
    input_lengths: &[usize],
    targets: CtcTargets,
    opts: &CtcOptions,
    dlogits: Option<&mut [f32]>,
) -> Result<CtcLoss> {
    if classes < 2 {
        return Err(Error::Range(format!("classes: expected at least 2 (a label and the blank), got {classes}")));
    }
    if opts.blank >= classes {
        return Err(Error::Range(format!("blank: expected an index in 0..{classes}, got {}", opts.blank)));
    }
    let size = checked_size("logits", &[steps, batch, classes])?;
    check_len("logits", logits.len(), size)?;
    check_len("input_lengths", input_lengths.len(), batch)?;
    check_len("target_lengths", targets.lengths.len(), batch)?;
    check_len("targets", targets.labels.len(), checked_size("targets", &[batch, targets.max_len])?)?;
    for (b, &n) in input_lengths.iter().enumerate() {
        if n == 0 || n > steps {
            return Err(Error::Range(format!("input_lengths[{b}]: expected 1..={steps}, got {n}")));
        }
    }
    for (b, &n) in targets.lengths.iter().enumerate() {
        if n > targets.max_len {
            return Err(Error::Range(format!("target_lengths[{b}]: expected 0..={}, got {n}", targets.max_len)));
        }
        let row = &targets.labels[b * targets.max_len..b * targets.max_len + n];
        if let Some(s) = row.iter().position(|&l| l < 0 || l as usize >= classes || l as usize == opts.blank) {
            return Err(Error::Range(format!(
                "targets[{b}, {s}]: expected a label in 0..{classes} other than the blank ({}), got {}",
                opts.blank, row[s]
            )));
        }
    }
    if let Some(i) = logits.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite(format!(
            "logits[{}, {}, {}]: every value must be finite, got {}",
            i / (batch * classes),
            (i / classes) % batch,
            i % classes,
            logits[i]
        )));
    }
    if let Some(d) = dlogits.as_deref() {
        check_len("dlogits", d.len(), size)?;
    }
    let want_grad = dlogits.is_some();
    let mut rows: Vec<RowWork> = (0..batch).map(|b| RowWork { row: b, nll: 0.0, grad: Vec::new() }).collect();
    crate::parallel::for_each_mut(&mut rows, |w| {
        let b = w.row;
        let n = targets.lengths[b];
        let labels = &targets.labels[b * targets.max_len..b * targets.max_len + n];
        let frame = |t: usize| &logits[(t * batch + b) * classes..(t * batch + b + 1) * classes];
        let (nll, grad) = row_loss(frame, input_lengths[b], classes, labels, opts.blank, want_grad);
        w.nll = nll;
        w.grad = grad;
    });
    let mut losses = Vec::with_capacity(batch);
    for w in &rows {
        losses.push(if w.nll.is_infinite() && opts.zero_infinity { 0.0 } else { w.nll });
    }
    let divisor = |b: usize| targets.lengths[b].max(1) as f64;
    let value = match opts.reduction {
        Reduction::None | Reduction::Sum => losses.iter().sum(),
        Reduction::Mean => losses.iter().enumerate().map(|(b, l)| l / divisor(b)).sum::<f64>() / batch.max(1) as f64,
    };
    if let Some(d) = dlogits {
        d.fill(0.0);
        for w in &rows {
            if w.nll.is_infinite() {
                continue; // zero_infinity, or PyTorch's NaN written as 0 (the loss says +∞)
            }
            let scale = match opts.reduction {
                Reduction::None | Reduction::Sum => 1.0,
                Reduction::Mean => 1.0 / (divisor(w.row) * batch as f64),
            };
            for (t, g) in w.grad.chunks_exact(classes).enumerate() {
                let out = &mut d[(t * batch + w.row) * classes..(t * batch + w.row + 1) * classes];
                for (o, &v) in out.iter_mut().zip(g) {
                    *o = (v * scale) as f32;
                }
            }
        }
    }
    Ok(CtcLoss { rows: losses, value })
}

/// One row's share of the work: its negative log-likelihood and gradient `[T_b, C]`.
struct RowWork {
    row: usize,
    nll: f64,
    grad: Vec<f64>,
}

/// The forward–backward of one row over its first `frames` frames (`frame(t)`: `[C]` logits).
/// Returns `-ln p(labels | x)` (+∞ when infeasible) and, with `want_grad` and a finite loss, the
/// gradient of it w.r.t. the logits `[frames, C]`.
fn row_loss<'a>(
    frame: impl Fn(usize) -> &'a [f32],
    frames: usize,
    classes: usize,
    labels: &[i32],
    blank: usize,
    want_grad: bool,
) -> (f64, Vec<f64>) {
    // log-softmax of every frame, f64: [frames, C].
    let mut lp = vec![0.0f64; frames * classes];
    for t in 0..frames {
        let x = frame(t);
        let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let sum: f64 = x.iter().map(|&v| (v as f64 - m).exp()).sum();
        let lse = m + sum.ln();
        for (o, &v) in lp[t * classes..(t + 1) * classes].iter_mut().zip(x) {
            *o = v as f64 - lse;
        }
    }
    // The extended target l': blank, l1, blank, l2, …, lS, blank.
    let ext: Vec<usize> =
        (0..2 * labels.len() + 1).map(|s| if s % 2 == 0 { blank } else { labels[s / 2] as usize }).collect();
    let states = ext.len();
    // Whether state s may be entered from s-2 (skipping a blank between two different labels).
    let skip = |s: usize| s >= 2 && ext[s] != blank && ext[s] != ext[s - 2];
    let neg = f64::NEG_INFINITY;
    let mut alpha = vec![neg; frames * states];
    alpha[0] = lp[blank];
    if states > 1 {
        alpha[1] = lp[ext[1]];
    }
    for t in 1..frames {
        let (prev, cur) = alpha.split_at_mut(t * states);
        let prev = &prev[(t - 1) * states..];
        for s in 0..states {
            let mut a = prev[s];
            if s >= 1 {
                a = log_add(a, prev[s - 1]);
            }
            if skip(s) {
                a = log_add(a, prev[s - 2]);
            }
            cur[s] = a + lp[t * classes + ext[s]];
        }
    }
    let last = (frames - 1) * states;
    let mut ll = alpha[last + states - 1];
    if states > 1 {
        ll = log_add(ll, alpha[last + states - 2]);
    }
    let nll = -ll;
    if !want_grad || nll.is_infinite() {
        return (nll, Vec::new());
    }
    let mut beta = vec![neg; frames * states];
    beta[last + states - 1] = lp[(frames - 1) * classes + blank];
    if states > 1 {
        beta[last + states - 2] = lp[(frames - 1) * classes + ext[states - 2]];
    }
    for t in (0..frames - 1).rev() {
        let (cur, next) = beta.split_at_mut((t + 1) * states);
        let cur = &mut cur[t * states..];
        for s in 0..states {
            let mut v = next[s];
            if s + 1 < states {
                v = log_add(v, next[s + 1]);
            }
            if s + 2 < states && skip(s + 2) {
                v = log_add(v, next[s + 2]);
            }
            cur[s] = v + lp[t * classes + ext[s]];
        }
    }
    // grad_t(k) = y_t(k) − exp(ln Σ_{s: l'_s = k} α_t(s)β_t(s) − lp_t(k) + nll).
    let mut grad = vec![0.0f64; frames * classes];
    let mut occupancy = vec![neg; classes];
    for t in 0..frames {
        occupancy.fill(neg);
        for s in 0..states {
            let k = ext[s];
            occupancy[k] = log_add(occupancy[k], alpha[t * states + s] + beta[t * states + s]);
        }
        for k in 0..classes {
            let l = lp[t * classes + k];
            grad[t * classes + k] = l.exp() - (occupancy[k] - l + nll).exp();
        }
    }
    (nll, grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random_logits(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..n).map(|_| rng.below(4001) as f32 / 1000.0 - 2.0).collect()
    }

    /// The loss of a single frame sequence against all alignments enumerated by brute force:
    /// every path of `T` classes whose collapse (merge repeats, drop blanks) is the target.
    fn brute_force(lp: &[f64], t: usize, c: usize, target: &[usize], blank: usize) -> f64 {
        let mut total = 0.0f64;
        let mut path = vec![0usize; t];
        loop {
            let mut collapsed = Vec::new();
            let mut prev = None;
            for &k in &path {
                if Some(k) != prev && k != blank {
                    collapsed.push(k);
                }
                prev = Some(k);
            }
            if collapsed == target {
                total += path.iter().enumerate().map(|(s, &k)| lp[s * c + k]).sum::<f64>().exp();
            }
            // next path (odometer)
            let mut i = 0;
            loop {
                if i == t {
                    return -total.ln();
                }
                path[i] += 1;
                if path[i] < c {
                    break;
                }
                path[i] = 0;
                i += 1;
            }
        }
    }

    #[test]
    fn loss_is_the_sum_over_every_alignment() {
        let (t, c) = (5, 3);
        for (seed, target) in [(1, vec![1, 2]), (2, vec![1, 1]), (3, vec![]), (4, vec![2, 1, 2])] {
            let logits = random_logits(t * c, seed);
            let labels: Vec<i32> = target.iter().map(|&l| l as i32).collect();
            let opts = CtcOptions { reduction: Reduction::Sum, ..CtcOptions::default() };
            let max_len = labels.len().max(1);
            let mut padded = labels.clone();
            padded.resize(max_len, 1);
            let targets = CtcTargets { labels: &padded, max_len, lengths: &[labels.len()] };
            let got = ctc_loss(&logits, t, 1, c, &[t], targets, &opts, None).unwrap().value;
            let mut lp = vec![0.0; t * c];
            for s in 0..t {
                let row = &logits[s * c..(s + 1) * c];
                let lse = row.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
                for k in 0..c {
                    lp[s * c + k] = row[k] as f64 - lse;
                }
            }
            let want = brute_force(&lp, t, c, &target, 0);
            assert!((got - want).abs() < 1e-9, "target {target:?}: {got} vs brute force {want}");
        }
    }

    /// Central differences of the f64 loss against the analytic gradient, on every logit of a
    /// small batch with padding, repeats, an empty target and each reduction.
    #[test]
    fn gradient_matches_finite_differences() {
        let (t, b, c) = (6, 3, 4);
        let labels = [1, 1, 2, 3, 0, 0, 2, 0, 0];
        let target_lengths = [3, 1, 0];
        let input_lengths = [6, 4, 5];
        let logits = random_logits(t * b * c, 9);
        for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean] {
            let opts = CtcOptions { reduction, ..CtcOptions::default() };
            let targets = CtcTargets { labels: &labels, max_len: 3, lengths: &target_lengths };
            let mut grad = vec![0.0; t * b * c];
            ctc_loss(&logits, t, b, c, &input_lengths, targets, &opts, Some(&mut grad)).unwrap();
            let eps = 1e-3f32;
            for i in 0..logits.len() {
                let at = |v: f32| {
                    let mut x = logits.clone();
                    x[i] = v;
                    ctc_loss(&x, t, b, c, &input_lengths, targets, &opts, None).unwrap().value
                };
                let (hi, lo) = (logits[i] + eps, logits[i] - eps);
                let numeric = (at(hi) - at(lo)) / (hi - lo) as f64;
                assert!(
                    (numeric - grad[i] as f64).abs() < 2e-4,
                    "{reduction:?} logit {i}: analytic {}, numeric {numeric}",
                    grad[i]
                );
            }
        }
    }

    #[test]
    fn infeasible_rows_are_infinite_or_zeroed() {
        // Two equal labels need 3 frames; 2 are given.
        let logits = random_logits(2 * 3, 5);
        let targets = CtcTargets { labels: &[1, 1], max_len: 2, lengths: &[2] };
        let mut grad = vec![1.0; 6];
        let opts = CtcOptions { reduction: Reduction::Sum, ..CtcOptions::default() };
        let l = ctc_loss(&logits, 2, 1, 3, &[2], targets, &opts, Some(&mut grad)).unwrap();
        assert_eq!(l.value, f64::INFINITY);
        assert!(grad.iter().all(|&g| g == 0.0));
        let opts = CtcOptions { zero_infinity: true, ..opts };
        assert_eq!(ctc_loss(&logits, 2, 1, 3, &[2], targets, &opts, None).unwrap().value, 0.0);
    }

    #[test]
    fn bad_input_is_refused_with_its_name() {
        let logits = random_logits(3 * 4, 1);
        let opts = CtcOptions::default();
        let call = |labels: &[i32], lengths: &[usize], input: &[usize], logits: &[f32]| {
            let targets = CtcTargets { labels, max_len: 2, lengths };
            ctc_loss(logits, 3, 1, 4, input, targets, &opts, None).unwrap_err().to_string()
        };
        assert!(call(&[1, 0], &[2], &[3], &logits).starts_with("targets[0, 1]:"));
        assert!(call(&[1, 4], &[2], &[3], &logits).starts_with("targets[0, 1]:"));
        assert!(call(&[1, 2], &[3], &[3], &logits).starts_with("target_lengths[0]:"));
        assert!(call(&[1, 2], &[2], &[4], &logits).starts_with("input_lengths[0]:"));
        assert!(call(&[1, 2], &[2], &[0], &logits).starts_with("input_lengths[0]:"));
        let mut bad = logits.clone();
        bad[2 * 4 + 3] = f32::NAN;
        assert!(call(&[1, 2], &[2], &[3], &bad).starts_with("logits[2, 0, 3]:"));
        let targets = CtcTargets { labels: &[1, 2], max_len: 2, lengths: &[2] };
        let opts = CtcOptions { blank: 4, ..opts };
        assert!(ctc_loss(&logits, 3, 1, 4, &[3], targets, &opts, None).unwrap_err().to_string().starts_with("blank:"));
    }
}
