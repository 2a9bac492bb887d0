//! Gradient clipping over the flat gradient buffer.
//!
//! [`clip_grad_norm`] follows `torch.nn.utils.clip_grad_norm_` (L2 norm over all gradients;
//! `coef = max_norm / (norm + 1e-6)`; gradients scaled by `coef` when it is below 1), with the
//! norm accumulated in f64. Unlike PyTorch's default it refuses a non-finite norm instead of
//! scaling every gradient by NaN, and leaves the gradients untouched so the caller can skip the
//! batch or stop with a clear error.

use crate::error::{Error, Result};

/// The global L2 norm of `grads`, accumulated in f64.
pub fn global_norm(grads: &[f32]) -> f64 {
    grads.iter().map(|&g| (g as f64) * (g as f64)).sum::<f64>().sqrt()
}

/// Scales `grads` so their global L2 norm is at most `max_norm`, as PyTorch does; returns the
/// norm before clipping. Errors when `max_norm` is not a finite number > 0, or when the norm is
/// not finite (naming the first non-finite gradient index).
pub fn clip_grad_norm(grads: &mut [f32], max_norm: f32) -> Result<f64> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(Error::Range(format!("max_norm: expected a finite number > 0, got {max_norm}")));
    }
    let norm = global_norm(grads);
    if !norm.is_finite() {
        let detail = match grads.iter().position(|g| !g.is_finite()) {
            Some(i) => format!("gradient {i} is {}", grads[i]),
            None => "the sum of squares overflowed".to_string(),
        };
        return Err(Error::NonFinite(format!("gradient norm: expected a finite norm, got {norm} ({detail})")));
    }
    let coef = max_norm as f64 / (norm + 1e-6);
    if coef < 1.0 {
        let c = coef as f32;
        grads.iter_mut().for_each(|g| *g *= c);
    }
    Ok(norm)
}

/// Clamps every gradient into `[-clip_value, clip_value]` (`torch.nn.utils.clip_grad_value_`).
/// NaN gradients are reported, not clamped.
pub fn clip_grad_value(grads: &mut [f32], clip_value: f32) -> Result<()> {
    if !(clip_value.is_finite() && clip_value > 0.0) {
        return Err(Error::Range(format!("clip_value: expected a finite number > 0, got {clip_value}")));
    }
    if let Some(i) = grads.iter().position(|g| g.is_nan()) {
        return Err(Error::NonFinite(format!("gradients: expected numbers, got NaN at index {i}")));
    }
    grads.iter_mut().for_each(|g| *g = g.clamp(-clip_value, clip_value));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_is_the_f64_norm() {
        // 3-4-5 triangle, and a buffer where f32 accumulation would lose the small terms.
        assert_eq!(global_norm(&[3.0, 4.0]), 5.0);
        let mut g = vec![1e-4f32; 1_000_000];
        g[999_999] = 1e3;
        let t = 1e-4f32 as f64;
        let want = (1e6f64 + 999_999.0 * t * t).sqrt();
        let f32_norm = g.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((f32_norm as f64 - want).abs() > 1e-6, "the case should defeat f32 accumulation");
        assert!((global_norm(&g) - want).abs() < 1e-9, "{} vs {want}", global_norm(&g));
    }

    #[test]
    fn clipping_scales_as_pytorch() {
        let mut g = vec![3.0f32, -4.0];
        let n = clip_grad_norm(&mut g, 1.0).unwrap();
        assert_eq!(n, 5.0);
        let coef = (1.0 / (5.0 + 1e-6)) as f32;
        assert_eq!(g, vec![3.0 * coef, -4.0 * coef]);
        assert!((global_norm(&g) - 1.0).abs() < 1e-6);
        // Below the threshold nothing changes (PyTorch multiplies by the clamped coef 1.0).
        let mut small = vec![0.3f32, 0.4];
        assert!((clip_grad_norm(&mut small, 1.0).unwrap() - 0.5).abs() < 1e-7);
        assert_eq!(small, vec![0.3, 0.4]);
    }

    #[test]
    fn non_finite_norm_is_reported_and_grads_untouched() {
        let mut g = vec![1.0f32, f32::NAN, 2.0];
        let e = clip_grad_norm(&mut g, 1.0).unwrap_err();
        assert_eq!(e.code(), "ERR_RNNKIT_NON_FINITE");
        assert!(e.to_string().contains("gradient 1 is NaN"), "{e}");
        assert_eq!((g[0], g[2]), (1.0, 2.0));
        let e = clip_grad_norm(&mut [1.0], 0.0).unwrap_err().to_string();
        assert_eq!(e, "max_norm: expected a finite number > 0, got 0");
    }

    #[test]
    fn clip_by_value() {
        let mut g = vec![-3.0f32, 0.5, 2.0, f32::INFINITY];
        clip_grad_value(&mut g, 1.0).unwrap();
        assert_eq!(g, vec![-1.0, 0.5, 1.0, 1.0]);
        assert!(clip_grad_value(&mut [f32::NAN], 1.0).unwrap_err().to_string().contains("index 0"));
        assert!(clip_grad_value(&mut [1.0], -1.0).is_err());
    }
}
