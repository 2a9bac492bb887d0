//! Pooling over time for many-to-one models: reduces the recurrent outputs of the real steps of
//! each row to one vector.
//!
//! Shapes: `y` is time-major `[T, B, F]` with `F = D·H` (forward direction's H first); `pooled`
//! is `[B, F]`. Padded steps (`t >= len[b]`) are never read.

use crate::config::Pooling;

/// Reduces `y` over time. `argmax` (`[B, F]`) records the step each max came from, for backward.
pub struct TimePooling {
    pub kind: Pooling,
    /// Hidden size H of one direction (splits F for `Last` on bidirectional outputs).
    pub hidden: usize,
    /// Directions D.
    pub directions: usize,
}

impl TimePooling {
    /// `pooled[b] = pool_t y[t, b]` over `t < lengths[b]`.
    pub fn forward(
        &self,
        y: &[f32],
        steps: usize,
        rows: usize,
        lengths: &[usize],
        pooled: &mut [f32],
        argmax: &mut Vec<usize>,
    ) {
        let f = self.hidden * self.directions;
        debug_assert_eq!(y.len(), steps * rows * f);
        debug_assert_eq!(pooled.len(), rows * f);
        argmax.clear();
        if self.kind == Pooling::Max {
            argmax.resize(rows * f, 0);
        }
        for b in 0..rows {
            let len = lengths[b];
            let out = &mut pooled[b * f..(b + 1) * f];
            let at = |t: usize| &y[(t * rows + b) * f..(t * rows + b + 1) * f];
            match self.kind {
                Pooling::Last => {
                    // The forward direction has seen the whole row at its last real step; the
                    // reverse direction has seen it at step 0 (its own last step).
                    let h = self.hidden;
                    out[..h].copy_from_slice(&at(len - 1)[..h]);
                    if self.directions == 2 {
                        out[h..].copy_from_slice(&at(0)[h..]);
                    }
                }
                Pooling::Mean => {
                    out.iter_mut().for_each(|v| *v = 0.0);
                    for t in 0..len {
                        out.iter_mut().zip(at(t)).for_each(|(o, v)| *o += v);
                    }
                    let inv = 1.0 / len as f32;
                    out.iter_mut().for_each(|v| *v *= inv);
                }
                Pooling::Max => {
                    out.copy_from_slice(at(0));
                    let idx = &mut argmax[b * f..(b + 1) * f];
                    for t in 1..len {
                        for (j, &v) in at(t).iter().enumerate() {
                            if v > out[j] {
                                out[j] = v;
                                idx[j] = t;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds the gradient of `pooled` into `dy` (`[T, B, F]`, zero where nothing was read).
    pub fn backward(
        &self,
        dpooled: &[f32],
        steps: usize,
        rows: usize,
        lengths: &[usize],
        argmax: &[usize],
        dy: &mut [f32],
    ) {
        let f = self.hidden * self.directions;
        debug_assert_eq!(dy.len(), steps * rows * f);
        for b in 0..rows {
            let len = lengths[b];
            let g = &dpooled[b * f..(b + 1) * f];
            let row = |t: usize| (t * rows + b) * f;
            match self.kind {
                Pooling::Last => {
                    let h = self.hidden;
                    let at = row(len - 1);
                    dy[at..at + h].iter_mut().zip(&g[..h]).for_each(|(d, v)| *d += v);
                    if self.directions == 2 {
                        let at = row(0);
                        dy[at + h..at + f].iter_mut().zip(&g[h..]).for_each(|(d, v)| *d += v);
                    }
                }
                Pooling::Mean => {
                    let inv = 1.0 / len as f32;
                    for t in 0..len {
                        let at = row(t);
                        dy[at..at + f].iter_mut().zip(g).for_each(|(d, v)| *d += v * inv);
                    }
                }
                Pooling::Max => {
                    for (j, &v) in g.iter().enumerate() {
                        dy[row(argmax[b * f + j]) + j] += v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central-difference check of `sum(pooled * r)` for every pooling kind, uni- and bidirectional.
    #[test]
    fn backward_matches_finite_differences() {
        let (t, b, h) = (4usize, 3usize, 2usize);
        let lengths = [4usize, 2, 1];
        for directions in [1usize, 2] {
            let f = h * directions;
            for kind in [Pooling::Last, Pooling::Mean, Pooling::Max] {
                let pool = TimePooling { kind, hidden: h, directions };
                // distinct values so the max is unique and the difference quotient is exact
                let y: Vec<f32> = (0..t * b * f).map(|i| ((i * 37 % 23) as f32) * 0.1 - 1.0).collect();
                let r: Vec<f32> = (0..b * f).map(|i| (i as f32) * 0.3 - 0.7).collect();
                let mut pooled = vec![0.0; b * f];
                let mut argmax = Vec::new();
                let objective = |y: &[f32], pooled: &mut [f32], argmax: &mut Vec<usize>| -> f64 {
                    pool.forward(y, t, b, &lengths, pooled, argmax);
                    pooled.iter().zip(&r).map(|(p, r)| (p * r) as f64).sum()
                };
                objective(&y, &mut pooled, &mut argmax);
                let mut dy = vec![0.0; y.len()];
                pool.backward(&r, t, b, &lengths, &argmax, &mut dy);
                let eps = 1e-3f32;
                for i in 0..y.len() {
                    let (mut yp, mut ym) = (y.clone(), y.clone());
                    yp[i] += eps;
                    ym[i] -= eps;
                    let num = (objective(&yp, &mut pooled, &mut argmax) - objective(&ym, &mut pooled, &mut argmax))
                        / (2.0 * eps as f64);
                    assert!((num - dy[i] as f64).abs() < 1e-3, "{kind:?} D={directions} i={i}: {num} vs {}", dy[i]);
                }
                // padded steps are never read
                for (bi, &len) in lengths.iter().enumerate() {
                    for step in len..t {
                        assert!(dy[(step * b + bi) * f..(step * b + bi + 1) * f].iter().all(|&v| v == 0.0));
                    }
                }
            }
        }
    }
}
