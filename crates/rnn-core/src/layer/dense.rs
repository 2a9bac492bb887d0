//! Dense (fully connected) layer `y = x Wᵀ + b` over rows: `x` `[N, in]`, `W` `[out, in]`
//! (PyTorch `nn.Linear` layout), `b` `[out]`, `y` `[N, out]`. The model's head (`head.weight`,
//! `head.bias`) is one; Elman's input-to-output term `W_xo x_t` (`skip.weight`, no bias) is
//! another, added into the same logits with `accumulate = true`.

use crate::error::{check_len, checked_size, Error, Result};
use crate::kernels::gemm::{matmul, GemmShape, Merge, Op};
use crate::kernels::packed::PackedB;
use crate::kernels::precision::{PackedOperand, Precision, WeightMatrix};

/// Where [`Dense::backward`] adds its gradients (None: that gradient is not wanted).
#[derive(Debug)]
pub struct DenseGrads<'a> {
    /// `[out, in]`
    pub dw: &'a mut [f32],
    /// `[out]`
    pub db: Option<&'a mut [f32]>,
    /// `[N, in]`
    pub dx: Option<&'a mut [f32]>,
}

/// Sizes of a dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dense {
    pub inputs: usize,
    pub outputs: usize,
}

impl Dense {
    /// `y = x Wᵀ + b` (overwrite) or `y += x Wᵀ + b` (`accumulate`), for `n` rows.
    pub fn forward(
        &self,
        x: &[f32],
        n: usize,
        w: &[f32],
        b: Option<&[f32]>,
        y: &mut [f32],
        accumulate: bool,
    ) -> Result<()> {
        let (i, o) = (self.inputs, self.outputs);
        check_len("x", x.len(), checked_size("x", &[n, i])?)?;
        check_len("weight", w.len(), checked_size("weight", &[o, i])?)?;
        check_len("y", y.len(), checked_size("y", &[n, o])?)?;
        if let Some(b) = b {
            check_len("bias", b.len(), o)?;
        }
        if i == 0 || o == 0 {
            return Err(Error::Range(format!("dense: expected inputs and outputs >= 1, got {i} and {o}")));
        }
        // y [N, out] (+)= x [N, in] · Wᵀ, W stored [out, in] (read transposed, no copy).
        let merge = if accumulate { Merge::ACCUMULATE } else { Merge::OVERWRITE };
        matmul(Op::Plain, Op::Transposed, GemmShape { m: n, n: o, k: i }, x, w, merge, y);
        add_bias(y, b);
        Ok(())
    }

    /// [`forward`](Self::forward) with the weight already packed as `w_t` = `Wᵀ` `[in, out]`
    /// ([`PackedB`] or a [`WeightMatrix`], by [`Dense::pack`] / [`Dense::pack_at`]): for layers
    /// applied many times to few rows (the head at every generated token).
    pub fn forward_packed(
        &self,
        x: &[f32],
        n: usize,
        w_t: &impl PackedOperand,
        b: Option<&[f32]>,
        y: &mut [f32],
        accumulate: bool,
    ) -> Result<()> {
        let (i, o) = (self.inputs, self.outputs);
        check_len("x", x.len(), checked_size("x", &[n, i])?)?;
        check_len("y", y.len(), checked_size("y", &[n, o])?)?;
        if (w_t.k(), w_t.n()) != (i, o) {
            return Err(Error::Shape(format!(
                "dense: the packed weight is [{}, {}], expected [{i}, {o}]",
                w_t.k(),
                w_t.n()
            )));
        }
        if let Some(b) = b {
            check_len("bias", b.len(), o)?;
        }
        w_t.multiply(n, x, if accumulate { 1.0 } else { 0.0 }, y, crate::parallel::threads());
        add_bias(y, b);
        Ok(())
    }

    /// `Wᵀ` packed for [`forward_packed`](Self::forward_packed), from `w` stored `[out, in]`.
    pub fn pack(&self, w: &[f32]) -> Result<PackedB> {
        check_len("weight", w.len(), checked_size("weight", &[self.outputs, self.inputs])?)?;
        Ok(PackedB::new(self.inputs, self.outputs, w, 1, self.inputs))
    }

    /// [`pack`](Self::pack) at `precision`.
    pub fn pack_at(&self, w: &[f32], precision: Precision) -> Result<WeightMatrix> {
        check_len("weight", w.len(), checked_size("weight", &[self.outputs, self.inputs])?)?;
        WeightMatrix::new(precision, self.inputs, self.outputs, w, 1, self.inputs)
    }

    /// Given `dy` `[N, out]`: `dW += dyᵀ x` `[out, in]`, `db += Σ_rows dy` `[out]`, and
    /// `dx += dy W` `[N, in]` into `grads` (all accumulate, since a tensor may receive gradient
    /// from several paths, e.g. the embedding output feeds both the recurrent stack and the skip
    /// term).
    pub fn backward(&self, x: &[f32], n: usize, w: &[f32], dy: &[f32], grads: DenseGrads) -> Result<()> {
        let DenseGrads { dw, db, dx } = grads;
        let (i, o) = (self.inputs, self.outputs);
        check_len("x", x.len(), checked_size("x", &[n, i])?)?;
        check_len("weight", w.len(), checked_size("weight", &[o, i])?)?;
        check_len("dy", dy.len(), checked_size("dy", &[n, o])?)?;
        check_len("d weight", dw.len(), o * i)?;
        if let Some(db) = &db {
            check_len("d bias", db.len(), o)?;
        }
        if let Some(dx) = &dx {
            check_len("dx", dx.len(), n * i)?;
        }
        if n == 0 {
            return Ok(());
        }
        // dW [out, in] += dyᵀ · x, dy stored [N, out] (read transposed).
        matmul(Op::Transposed, Op::Plain, GemmShape { m: o, n: i, k: n }, dy, x, Merge::ACCUMULATE, dw);
        if let Some(db) = db {
            for row in dy.chunks_exact(o) {
                db.iter_mut().zip(row).for_each(|(d, g)| *d += g);
            }
        }
        if let Some(dx) = dx {
            // dx [N, in] += dy [N, out] · W [out, in].
            matmul(Op::Plain, Op::Plain, GemmShape { m: n, n: i, k: o }, dy, w, Merge::ACCUMULATE, dx);
        }
        Ok(())
    }
}

/// `y [N, out] += b` broadcast over rows (no-op without a bias).
fn add_bias(y: &mut [f32], b: Option<&[f32]>) {
    if let Some(b) = b {
        for row in y.chunks_exact_mut(b.len()) {
            row.iter_mut().zip(b).for_each(|(v, bb)| *v += bb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random(n: usize, rng: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| rng.normal()).collect()
    }

    #[test]
    fn forward_matches_naive_and_accumulates() {
        let (n, i, o) = (5, 7, 3);
        let mut rng = Rng::new(11);
        let (x, w, b) = (random(n * i, &mut rng), random(o * i, &mut rng), random(o, &mut rng));
        let d = Dense { inputs: i, outputs: o };
        let mut y = vec![f32::NAN; n * o];
        d.forward(&x, n, &w, Some(&b), &mut y, false).unwrap();
        for r in 0..n {
            for j in 0..o {
                let want: f32 = b[j] + (0..i).map(|k| x[r * i + k] * w[j * i + k]).sum::<f32>();
                assert!((y[r * o + j] - want).abs() < 1e-5, "y[{r},{j}]");
            }
        }
        // The skip term adds x Wᵀ (no bias) into existing logits.
        let before = y.clone();
        d.forward(&x, n, &w, None, &mut y, true).unwrap();
        for k in 0..n * o {
            assert!((y[k] - (2.0 * before[k] - b[k % o])).abs() < 1e-5, "accumulated y[{k}]");
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        // L = Σ y ⊙ R, so dL/dy = R; check dW, db, dx numerically in f64 from f32 forwards.
        let (n, i, o) = (4, 5, 3);
        let mut rng = Rng::new(12);
        let (x, w, b, r) =
            (random(n * i, &mut rng), random(o * i, &mut rng), random(o, &mut rng), random(n * o, &mut rng));
        let d = Dense { inputs: i, outputs: o };
        let loss = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
            let mut y = vec![0.0; n * o];
            d.forward(x, n, w, Some(b), &mut y, false).unwrap();
            y.iter().zip(&r).map(|(a, c)| (*a as f64) * (*c as f64)).sum()
        };
        let (mut dw, mut db, mut dx) = (vec![0.5; o * i], vec![0.5; o], vec![0.5; n * i]);
        d.backward(&x, n, &w, &r, DenseGrads { dw: &mut dw, db: Some(&mut db), dx: Some(&mut dx) }).unwrap();
        let h = 1e-2f32;
        let num = |f: &dyn Fn(f32) -> f64| (f(h) - f(-h)) / (2.0 * h as f64);
        for k in 0..o * i {
            let g = num(&|e| {
                let mut w2 = w.clone();
                w2[k] += e;
                loss(&x, &w2, &b)
            });
            assert!((g - (dw[k] - 0.5) as f64).abs() < 1e-3, "dW[{k}]: {g} vs {}", dw[k] - 0.5);
        }
        for k in 0..o {
            let g = num(&|e| {
                let mut b2 = b.clone();
                b2[k] += e;
                loss(&x, &w, &b2)
            });
            assert!((g - (db[k] - 0.5) as f64).abs() < 1e-3, "db[{k}]");
        }
        for k in 0..n * i {
            let g = num(&|e| {
                let mut x2 = x.clone();
                x2[k] += e;
                loss(&x2, &w, &b)
            });
            assert!((g - (dx[k] - 0.5) as f64).abs() < 1e-3, "dx[{k}]");
        }
    }

    #[test]
    fn shape_errors_name_the_argument() {
        let d = Dense { inputs: 3, outputs: 2 };
        let mut y = vec![0.0; 4];
        let e = d.forward(&[0.0; 6], 2, &[0.0; 5], None, &mut y, false).unwrap_err().to_string();
        assert_eq!(e, "weight: expected length 6, got 5");
        let e = d.forward(&[0.0; 6], 2, &[0.0; 6], Some(&[0.0; 3]), &mut y, false).unwrap_err().to_string();
        assert_eq!(e, "bias: expected length 2, got 3");
        let mut dw = vec![0.0; 6];
        let grads = DenseGrads { dw: &mut dw, db: None, dx: None };
        let e = d.backward(&[0.0; 6], 2, &[0.0; 6], &[0.0; 3], grads).unwrap_err().to_string();
        assert_eq!(e, "dy: expected length 4, got 3");
    }
}
