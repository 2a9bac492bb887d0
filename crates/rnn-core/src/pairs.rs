//! Pairs of sequences (sequence-to-sequence data): a source and a target id row each, and the
//! data order of their training: each epoch a seeded shuffle, then length buckets — the shuffled
//! rows are cut into pools of [`BUCKET_BATCHES`] batches, each pool sorted by (source, target)
//! length and cut into batches, and the batches shuffled — so the rows of a batch have similar
//! lengths and padding costs little, while every epoch still mixes the data differently. The
//! order depends only on `(seed, epoch)`, so a resumed run sees the batches it would have seen.

use crate::batch::epoch_seed;
use crate::error::{check_len, Error, Result};
use crate::rng::Rng;

/// Batches per length-sorted pool: large enough that a pool's batches are nearly uniform in
/// length, small enough that batches of very different lengths still come in random order.
pub const BUCKET_BATCHES: usize = 32;

/// Source and target rows of ids (no bos/eos: the model adds them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PairSet {
    pub source: Vec<Vec<i32>>,
    pub target: Vec<Vec<i32>>,
}

/// One padded batch of pairs, batch-first: `source` `[B, Ts]`, `target` `[B, Tt]` (padding ids
/// 0, never read).
#[derive(Debug, Clone, PartialEq)]
pub struct PairBatch {
    pub rows: usize,
    pub source: Vec<i32>,
    pub source_steps: usize,
    pub source_lengths: Vec<usize>,
    pub target: Vec<i32>,
    pub target_steps: usize,
    pub target_lengths: Vec<usize>,
}

impl PairSet {
    pub fn len(&self) -> usize {
        self.source.len()
    }

    pub fn is_empty(&self) -> bool {
        self.source.is_empty()
    }

    /// Every source non-empty, every id inside its vocabulary, as many targets as sources.
    pub fn validate(&self, source_vocab: usize, target_vocab: usize) -> Result<()> {
        check_len("targets", self.target.len(), self.source.len())?;
        for (side, rows, vocab) in [("source", &self.source, source_vocab), ("target", &self.target, target_vocab)] {
            for (r, row) in rows.iter().enumerate() {
                if side == "source" && row.is_empty() {
                    return Err(Error::Range(format!("source[{r}]: a source must have at least one token")));
                }
                if let Some(s) = row.iter().position(|&v| v < 0 || v as usize >= vocab) {
                    return Err(Error::Range(format!(
                        "{side}[{r}][{s}]: id {} is outside the vocabulary [0, {vocab})",
                        row[s]
                    )));
                }
            }
        }
        Ok(())
    }

    /// The rows `rows`, in that order.
    pub fn subset(&self, rows: &[usize]) -> PairSet {
        PairSet {
            source: rows.iter().map(|&r| self.source[r].clone()).collect(),
            target: rows.iter().map(|&r| self.target[r].clone()).collect(),
        }
    }

    /// The batches of epoch `epoch`: row indices, each at most `batch_size` long (the module's
    /// bucketed order). `batch_size` ≥ 1.
    pub fn epoch_batches(&self, seed: u64, epoch: u64, batch_size: usize) -> Vec<Vec<usize>> {
        let batch_size = batch_size.max(1);
        let mut rng = Rng::new(epoch_seed(seed, epoch));
        let mut order: Vec<usize> = (0..self.len()).collect();
        rng.shuffle(&mut order);
        let mut batches = Vec::with_capacity(self.len().div_ceil(batch_size));
        for pool in order.chunks_mut(batch_size * BUCKET_BATCHES) {
            // Stable: rows of equal lengths keep their shuffled order.
            pool.sort_by_key(|&r| (self.source[r].len(), self.target[r].len()));
            batches.extend(pool.chunks(batch_size).map(<[usize]>::to_vec));
        }
        rng.shuffle(&mut batches);
        batches
    }

    /// The padded batch of `rows` (in that order).
    pub fn gather(&self, rows: &[usize]) -> PairBatch {
        let ts = rows.iter().map(|&r| self.source[r].len()).max().unwrap_or(0);
        let tt = rows.iter().map(|&r| self.target[r].len()).max().unwrap_or(0);
        let mut source = vec![0; rows.len() * ts];
        let mut target = vec![0; rows.len() * tt];
        for (i, &r) in rows.iter().enumerate() {
            source[i * ts..i * ts + self.source[r].len()].copy_from_slice(&self.source[r]);
            target[i * tt..i * tt + self.target[r].len()].copy_from_slice(&self.target[r]);
        }
        PairBatch {
            rows: rows.len(),
            source,
            source_steps: ts,
            source_lengths: rows.iter().map(|&r| self.source[r].len()).collect(),
            target,
            target_steps: tt,
            target_lengths: rows.iter().map(|&r| self.target[r].len()).collect(),
        }
    }
}

impl PairBatch {
    /// Shapes, lengths and id ranges against the model's vocabularies.
    pub fn check(&self, source_vocab: usize, target_vocab: usize) -> Result<()> {
        if self.rows == 0 || self.source_steps == 0 {
            return Err(Error::Range(format!(
                "batch: expected at least one row and one source step, got {} × {}",
                self.rows, self.source_steps
            )));
        }
        check_len("source", self.source.len(), self.rows * self.source_steps)?;
        check_len("target", self.target.len(), self.rows * self.target_steps)?;
        check_len("source lengths", self.source_lengths.len(), self.rows)?;
        check_len("target lengths", self.target_lengths.len(), self.rows)?;
        if let Some(r) = self.source_lengths.iter().position(|&l| l == 0 || l > self.source_steps) {
            return Err(Error::Range(format!(
                "source lengths: row {r} has length {}, expected 1..={}",
                self.source_lengths[r], self.source_steps
            )));
        }
        if let Some(r) = self.target_lengths.iter().position(|&l| l > self.target_steps) {
            return Err(Error::Range(format!(
                "target lengths: row {r} has length {}, expected 0..={}",
                self.target_lengths[r], self.target_steps
            )));
        }
        for (side, ids, vocab) in [("source", &self.source, source_vocab), ("target", &self.target, target_vocab)] {
            if let Some(i) = ids.iter().position(|&v| v < 0 || v as usize >= vocab) {
                return Err(Error::Range(format!("{side}: id {} is outside the vocabulary [0, {vocab})", ids[i])));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> PairSet {
        PairSet {
            source: (0..n).map(|i| vec![1; 1 + (i * 7) % 13]).collect(),
            target: (0..n).map(|i| vec![2; (i * 3) % 5]).collect(),
        }
    }

    #[test]
    fn every_row_once_per_epoch_seeded_and_bucketed() {
        let s = set(1000);
        let a = s.epoch_batches(7, 0, 10);
        assert_eq!(a, s.epoch_batches(7, 0, 10), "the order is a function of (seed, epoch)");
        assert_ne!(a, s.epoch_batches(7, 1, 10), "epochs differ");
        let mut all: Vec<usize> = a.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        // Bucketing: the padding of bucketed batches is far below that of random ones.
        let pad = |batches: &[Vec<usize>]| -> usize {
            batches
                .iter()
                .map(|b| {
                    let m = b.iter().map(|&r| s.source[r].len()).max().unwrap();
                    b.iter().map(|&r| m - s.source[r].len()).sum::<usize>()
                })
                .sum()
        };
        let mut shuffled: Vec<usize> = (0..1000).collect();
        Rng::new(3).shuffle(&mut shuffled);
        let random: Vec<Vec<usize>> = shuffled.chunks(10).map(<[usize]>::to_vec).collect();
        assert!(pad(&a) * 5 < pad(&random), "bucketed {} vs random {}", pad(&a), pad(&random));
    }

    #[test]
    fn gather_pads_and_check_refuses_bad_batches() {
        let s = PairSet { source: vec![vec![1, 2, 3], vec![4]], target: vec![vec![], vec![5, 6]] };
        s.validate(4, 7).unwrap_err();
        s.validate(6, 7).unwrap();
        let b = s.gather(&[1, 0]);
        assert_eq!((b.source.clone(), b.source_lengths.clone()), (vec![4, 0, 0, 1, 2, 3], vec![1, 3]));
        assert_eq!((b.target.clone(), b.target_lengths.clone()), (vec![5, 6, 0, 0], vec![2, 0]));
        b.check(6, 7).unwrap();
        assert!(b.check(6, 6).is_err());
        let mut bad = b.clone();
        bad.source_lengths[0] = 0;
        assert!(bad.check(6, 7).is_err());
        assert!(PairSet { source: vec![vec![]], target: vec![vec![]] }.validate(2, 2).is_err());
    }
}
