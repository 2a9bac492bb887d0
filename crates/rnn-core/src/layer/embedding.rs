//! Token embedding: a lookup of rows of `weight` `[V, E]` (`embed.weight`).
//!
//! The model API is batch-first, the engine time-major: `forward` reads ids `[B, T]` and writes
//! `[T, B, E]` directly, so no transpose pass is needed. `backward` scatter-adds the output
//! gradient into the rows of the weight gradient, in a fixed order (deterministic sums).

use crate::error::{check_len, checked_size, Error, Result};
use crate::ids::Id;

/// Sizes of an embedding table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedding {
    pub vocab: usize,
    pub dim: usize,
}

impl Embedding {
    /// Checks every id (`[B, T]`, batch-first) before any work, naming row, step and value.
    fn check_ids<I: Id>(&self, ids: &[I], batch: usize, steps: usize) -> Result<()> {
        check_len("ids", ids.len(), checked_size("ids", &[batch, steps])?)?;
        for (k, id) in ids.iter().enumerate() {
            let v = id.to_i64();
            if !(0..self.vocab as i64).contains(&v) {
                return Err(Error::Range(format!(
                    "ids[row {}, step {}]: expected a token id in 0..{}, got {v}",
                    k / steps,
                    k % steps,
                    self.vocab
                )));
            }
        }
        Ok(())
    }

    /// `out[t, b, :] = weight[ids[b, t], :]`; `weight` `[V, E]`, `ids` `[B, T]`, `out` `[T, B, E]`.
    pub fn forward<I: Id>(&self, weight: &[f32], ids: &[I], batch: usize, steps: usize, out: &mut [f32]) -> Result<()> {
        let e = self.dim;
        check_len("embed.weight", weight.len(), checked_size("embed.weight", &[self.vocab, e])?)?;
        check_len("out", out.len(), checked_size("out", &[steps, batch, e])?)?;
        self.check_ids(ids, batch, steps)?;
        for t in 0..steps {
            for b in 0..batch {
                let id = ids[b * steps + t].to_i64() as usize;
                let dst = (t * batch + b) * e;
                out[dst..dst + e].copy_from_slice(&weight[id * e..(id + 1) * e]);
            }
        }
        Ok(())
    }

    /// `dweight[ids[b, t], :] += dout[t, b, :]` (accumulates; repeated ids sum), in order of t
    /// then b. `dout` `[T, B, E]`.
    pub fn backward<I: Id>(
        &self,
        dweight: &mut [f32],
        ids: &[I],
        batch: usize,
        steps: usize,
        dout: &[f32],
    ) -> Result<()> {
        let e = self.dim;
        check_len("d embed.weight", dweight.len(), checked_size("d embed.weight", &[self.vocab, e])?)?;
        check_len("dout", dout.len(), checked_size("dout", &[steps, batch, e])?)?;
        self.check_ids(ids, batch, steps)?;
        for t in 0..steps {
            for b in 0..batch {
                let id = ids[b * steps + t].to_i64() as usize;
                let src = (t * batch + b) * e;
                for (d, g) in dweight[id * e..(id + 1) * e].iter_mut().zip(&dout[src..src + e]) {
                    *d += g;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_writes_time_major_rows() {
        let emb = Embedding { vocab: 4, dim: 2 };
        let w: Vec<f32> = (0..8).map(|v| v as f32).collect(); // row r = [2r, 2r+1]
        let ids = [3u32, 0, 1, 2, 2, 3]; // B = 2, T = 3: row 0 = 3 0 1, row 1 = 2 2 3
        let mut out = vec![0.0; 12];
        emb.forward(&w, &ids, 2, 3, &mut out).unwrap();
        // t0: (b0 id 3, b1 id 2); t1: (0, 2); t2: (1, 3)
        assert_eq!(out, vec![6., 7., 4., 5., 0., 1., 4., 5., 2., 3., 6., 7.]);
    }

    #[test]
    fn backward_scatter_adds_including_repeats() {
        let emb = Embedding { vocab: 4, dim: 2 };
        let ids = [3i64, 0, 1, 2, 2, 3];
        let dout: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut dw = vec![1.0; 8];
        emb.backward(&mut dw, &ids, 2, 3, &dout).unwrap();
        // id 3 at (t0,b0) → dout[0..2] and (t2,b1) → dout[10..12]; id 2 at (t0,b1) and (t1,b1).
        let want = [1. + 4., 1. + 5., 1. + 8., 1. + 9., 1. + 2. + 6., 1. + 3. + 7., 1. + 0. + 10., 1. + 1. + 11.];
        assert_eq!(dw, want);
    }

    #[test]
    fn bad_ids_name_row_step_and_value() {
        let emb = Embedding { vocab: 4, dim: 2 };
        let mut out = vec![0.0; 12];
        let e = emb.forward(&[0.0; 8], &[0i32, 1, 2, 3, 4, 0], 2, 3, &mut out).unwrap_err().to_string();
        assert_eq!(e, "ids[row 1, step 1]: expected a token id in 0..4, got 4");
        let e = emb.forward(&[0.0; 8], &[0i32, -1, 2, 3, 1, 0], 2, 3, &mut out).unwrap_err().to_string();
        assert_eq!(e, "ids[row 0, step 1]: expected a token id in 0..4, got -1");
        let e = emb.forward(&[0.0; 8], &[0i32; 5], 2, 3, &mut out).unwrap_err().to_string();
        assert_eq!(e, "ids: expected length 6, got 5");
        let e = emb.forward(&[0.0; 8], &[0i32; 5], usize::MAX, 3, &mut out).unwrap_err();
        assert_eq!(e.code(), "ERR_RNNKIT_RANGE", "{e}");
        assert!(e.to_string().contains("overflow"), "{e}");
        let mut dw = vec![0.0; 8];
        assert!(emb.backward(&mut dw, &[9u32; 6], 2, 3, &[1.0; 12]).is_err());
        assert!(dw.iter().all(|&v| v == 0.0), "a refused backward must not write");
    }
}
