//! Training data and how it is cut into batches.
//!
//! Two shapes of data:
//! - a **token stream** (language models): cut into windows of `seq_len + 1` tokens (inputs are
//!   the first `seq_len`, targets the last `seq_len`), either at shuffled offsets (full BPTT: each
//!   window starts from a zero state) or as `B` contiguous **lanes** read in order (truncated
//!   BPTT: each batch continues the previous one, state carried and detached);
//! - **sequences** (classification, tagging, regression): padded rows with a length each, batched
//!   in a shuffled order.
//!
//! The order of an epoch depends only on `(seed, epoch)`, so a run resumed from a checkpoint at
//! (epoch, batch index) sees exactly the batches it would have seen.

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::token_store::{TokenSlice, TokenSource, TokenStore};
use serde::{Deserialize, Serialize};

/// What happens to the last, smaller batch of an epoch (when the windows or rows do not divide
/// into whole batches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LastBatch {
    /// Kept as a smaller batch.
    #[default]
    Keep,
    /// Dropped: every batch has `batch_size` rows.
    Drop,
    /// Token streams only: filled up to `batch_size` rows of padding (pad id inputs, targets
    /// [`IGNORE_INDEX`]), so every batch has the same shape.
    Pad,
}

impl LastBatch {
    /// Batches of `batch_size` out of `items`.
    pub fn batches(self, items: usize, batch_size: usize) -> usize {
        match self {
            LastBatch::Drop => items / batch_size,
            LastBatch::Keep | LastBatch::Pad => items.div_ceil(batch_size),
        }
    }

    /// The name used in options and errors.
    pub fn name(self) -> &'static str {
        match self {
            LastBatch::Keep => "keep",
            LastBatch::Drop => "drop",
            LastBatch::Pad => "pad",
        }
    }
}

/// Inputs of a batch, batch-first.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchInput {
    /// Token ids `[B, T]`.
    Tokens(Vec<i32>),
    /// Dense features `[B, T, I]`.
    Dense(Vec<f32>),
}

/// Targets of a batch, batch-first.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchTargets {
    /// One class id per position `[B, T]` (language model, tagging); `IGNORE_INDEX` = not counted.
    PerStep(Vec<i32>),
    /// One class id per row `[B]` (classification).
    PerRow(Vec<i32>),
    /// Real values per position `[B, T, O]` (many-to-many regression).
    ValuesPerStep(Vec<f32>),
    /// Real values per row `[B, O]` (many-to-one regression).
    ValuesPerRow(Vec<f32>),
    /// A label sequence per row (speech, CTC): `labels` `[B, S]` padded (entries past a row's
    /// length are 0), `lengths` `[B]` each ≤ S = `max_len`.
    Transcripts { labels: Vec<i32>, max_len: usize, lengths: Vec<usize> },
}

/// Target id of a position that does not count (padding), as in PyTorch.
pub const IGNORE_INDEX: i32 = -100;

/// One batch, batch-first.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub input: BatchInput,
    pub targets: BatchTargets,
    /// Rows B.
    pub rows: usize,
    /// Steps T (padded length).
    pub steps: usize,
    /// Real length of each row, when rows differ (`None` = all `steps`).
    pub lengths: Option<Vec<usize>>,
}

/// How a token stream is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// Shuffled windows, each starting `stride` tokens after the previous one in the stream.
    Windows { stride: usize },
    /// `B` contiguous lanes read in order; the state carries from one batch to the next.
    Lanes,
}

/// A language-model token stream and its batching.
#[derive(Debug, Clone)]
pub struct TokenStream {
    /// The ids, stored compactly and shared (cloning a stream copies no ids).
    tokens: TokenSlice,
    batch_size: usize,
    seq_len: usize,
    mode: StreamMode,
    last: LastBatch,
    /// Input id of padding rows (`LastBatch::Pad`).
    pad_id: i32,
}

impl TokenStream {
    /// Validates sizes against the stream and the vocabulary.
    pub fn new(
        tokens: Vec<i32>,
        vocab_size: usize,
        batch_size: usize,
        seq_len: usize,
        mode: StreamMode,
    ) -> Result<Self> {
        let tokens = TokenStore::from_ids(&tokens, vocab_size)?.into_shared();
        Self::from_slice(tokens, vocab_size, batch_size, seq_len, mode)
    }

    /// A stream over stored ids (already checked against their vocabulary, which must be
    /// `vocab_size`); sizes validated as by [`TokenStream::new`].
    pub fn from_slice(
        tokens: TokenSlice,
        vocab_size: usize,
        batch_size: usize,
        seq_len: usize,
        mode: StreamMode,
    ) -> Result<Self> {
        if tokens.vocab_size() != vocab_size {
            return Err(Error::Config(format!(
                "tokens: ids of a vocabulary of {}, expected {vocab_size}",
                tokens.vocab_size()
            )));
        }
        if batch_size == 0 {
            return Err(Error::Range("batchSize: expected an integer >= 1, got 0".into()));
        }
        if seq_len == 0 {
            return Err(Error::Range("seqLen: expected an integer >= 1, got 0".into()));
        }
        if let StreamMode::Windows { stride: 0 } = mode {
            return Err(Error::Range("stride: expected an integer >= 1, got 0".into()));
        }
        let needed = match mode {
            StreamMode::Windows { .. } => seq_len + 1,
            StreamMode::Lanes => batch_size * (seq_len + 1),
        };
        if tokens.len() < needed {
            return Err(Error::Range(format!(
                "tokens: the training text has {} tokens; batchSize {batch_size} and seqLen {seq_len} need at least {needed}",
                tokens.len()
            )));
        }
        Ok(TokenStream { tokens, batch_size, seq_len, mode, last: LastBatch::Keep, pad_id: 0 })
    }

    /// The same stream with another last-batch policy (`pad_id`: the input id of padding rows,
    /// required for `LastBatch::Pad`).
    pub fn with_last(mut self, last: LastBatch, pad_id: Option<i32>, vocab_size: usize) -> Result<Self> {
        if last == LastBatch::Pad {
            let id = pad_id.ok_or_else(|| Error::Config("padId: required when last is \"pad\"".into()))?;
            if id < 0 || id as usize >= vocab_size {
                return Err(Error::Range(format!("padId: expected an id in [0, {vocab_size}), got {id}")));
            }
            self.pad_id = id;
        }
        self.last = last;
        Ok(self)
    }

    /// The last-batch policy.
    pub fn last(&self) -> LastBatch {
        self.last
    }

    /// Tokens between window starts (Windows mode; `seq_len` in Lanes mode).
    fn stride(&self) -> usize {
        match self.mode {
            StreamMode::Windows { stride } => stride,
            StreamMode::Lanes => self.seq_len,
        }
    }

    /// Windows in one epoch (Windows mode): window k covers tokens `[k·stride, k·stride + seqLen]`.
    pub fn windows(&self) -> usize {
        self.window_count(self.stride())
    }

    /// The token ids.
    pub fn tokens(&self) -> &TokenSlice {
        &self.tokens
    }

    /// Tokens in the stream.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the stream is empty (never, once constructed).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Batch rows.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Steps per batch.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// The cutting mode.
    pub fn mode(&self) -> StreamMode {
        self.mode
    }

    /// Number of windows (Windows mode) in one epoch.
    fn window_count(&self, stride: usize) -> usize {
        (self.tokens.len() - (self.seq_len + 1)) / stride + 1
    }

    /// Tokens per lane (Lanes mode).
    fn lane_len(&self) -> usize {
        self.tokens.len() / self.batch_size
    }

    /// Batches in one epoch. Windows mode follows the last-batch policy; Lanes mode drops the
    /// tail of each lane shorter than `seq_len + 1`.
    pub fn batches_per_epoch(&self) -> usize {
        match self.mode {
            StreamMode::Windows { stride } => self.last.batches(self.window_count(stride), self.batch_size),
            StreamMode::Lanes => (self.lane_len() - 1) / self.seq_len,
        }
    }

    /// The order of windows in `epoch` (Windows mode): a permutation seeded by `(seed, epoch)`.
    pub fn epoch_order(&self, seed: u64, epoch: u64) -> Vec<usize> {
        match self.mode {
            StreamMode::Windows { stride } => {
                let mut order: Vec<usize> = (0..self.window_count(stride)).map(|w| w * stride).collect();
                Rng::new(epoch_seed(seed, epoch)).shuffle(&mut order);
                order
            }
            StreamMode::Lanes => Vec::new(),
        }
    }

    /// Batch `index` of an epoch whose order came from [`TokenStream::epoch_order`].
    pub fn batch(&self, order: &[usize], index: usize) -> Batch {
        let t = self.seq_len;
        let starts: Vec<usize> = match self.mode {
            StreamMode::Windows { .. } => {
                let lo = index * self.batch_size;
                let hi = (lo + self.batch_size).min(order.len());
                order[lo..hi].to_vec()
            }
            StreamMode::Lanes => {
                let lane = self.lane_len();
                (0..self.batch_size).map(|b| b * lane + index * t).collect()
            }
        };
        let rows = if self.last == LastBatch::Pad { self.batch_size } else { starts.len() };
        let mut inputs = Vec::with_capacity(rows * t);
        let mut targets = Vec::with_capacity(rows * t);
        for &s in &starts {
            self.tokens.extend_range(s, s + t, &mut inputs);
            self.tokens.extend_range(s + 1, s + t + 1, &mut targets);
        }
        // Padding rows of a short last batch: valid ids in, nothing counted out.
        inputs.resize(rows * t, self.pad_id);
        targets.resize(rows * t, IGNORE_INDEX);
        Batch {
            input: BatchInput::Tokens(inputs),
            targets: BatchTargets::PerStep(targets),
            rows,
            steps: t,
            lengths: None,
        }
    }
}

/// Padded sequences with a target each (classification, tagging, regression).
#[derive(Debug, Clone)]
pub struct SequenceSet {
    /// `[N, T, ...]` inputs.
    pub input: BatchInput,
    /// Targets for all N rows (same variants as a batch).
    pub targets: BatchTargets,
    /// Rows N.
    pub rows: usize,
    /// Padded length T.
    pub steps: usize,
    /// Real length of each row, 1..=T.
    pub lengths: Vec<usize>,
    /// Dense feature size (0 for tokens).
    pub features: usize,
    /// Width of real-valued targets (0 for class targets).
    pub outputs: usize,
}

impl SequenceSet {
    /// Checks that every part agrees with `rows`, `steps` and the lengths.
    pub fn validate(&self) -> Result<()> {
        let (n, t) = (self.rows, self.steps);
        if n == 0 {
            return Err(Error::Range("data: expected at least one row, got 0".into()));
        }
        if t == 0 {
            return Err(Error::Range("data: every row needs at least one step".into()));
        }
        crate::error::check_len("lengths", self.lengths.len(), n)?;
        if let Some(r) = self.lengths.iter().position(|&l| l == 0 || l > t) {
            return Err(Error::Range(format!("lengths: row {r} has length {}, expected 1..={t}", self.lengths[r])));
        }
        match &self.input {
            BatchInput::Tokens(v) => crate::error::check_len("inputs", v.len(), n * t)?,
            BatchInput::Dense(v) => {
                crate::error::check_len("inputs", v.len(), n * t * self.features)?;
                crate::error::check_finite("inputs", v)?;
            }
        }
        match &self.targets {
            BatchTargets::PerStep(v) => crate::error::check_len("targets", v.len(), n * t),
            BatchTargets::PerRow(v) => crate::error::check_len("targets", v.len(), n),
            BatchTargets::ValuesPerStep(v) => {
                crate::error::check_len("targets", v.len(), n * t * self.outputs)?;
                crate::error::check_finite("targets", v)
            }
            BatchTargets::ValuesPerRow(v) => {
                crate::error::check_len("targets", v.len(), n * self.outputs)?;
                crate::error::check_finite("targets", v)
            }
            BatchTargets::Transcripts { labels, max_len, lengths } => {
                crate::error::check_len("transcripts", labels.len(), n * max_len)?;
                crate::error::check_len("transcript lengths", lengths.len(), n)?;
                match lengths.iter().position(|l| l > max_len) {
                    Some(r) => Err(Error::Range(format!(
                        "transcripts[{r}]: length {} exceeds the padded length {max_len}",
                        lengths[r]
                    ))),
                    None => Ok(()),
                }
            }
        }
    }

    /// Batches of `batch_size` rows in one epoch under the last-batch policy.
    pub fn batches_per_epoch(&self, batch_size: usize, last: LastBatch) -> usize {
        last.batches(self.rows, batch_size)
    }

    /// The rows `rows` (in that order) as a set of their own.
    pub fn subset(&self, rows: &[usize]) -> SequenceSet {
        let mut batch = self.gather(rows);
        // `gather` trims to the longest of `rows`; targets of padded steps become IGNORE_INDEX,
        // which is what the set's own padding would hold for the loss.
        let lengths = batch.lengths.take().unwrap_or_default();
        SequenceSet {
            input: batch.input,
            targets: batch.targets,
            rows: rows.len(),
            steps: batch.steps,
            lengths,
            features: self.features,
            outputs: self.outputs,
        }
    }

    /// Row order of `epoch`, seeded by `(seed, epoch)`; `shuffle = false` keeps file order.
    pub fn epoch_order(&self, seed: u64, epoch: u64, shuffle: bool) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.rows).collect();
        if shuffle {
            Rng::new(epoch_seed(seed, epoch)).shuffle(&mut order);
        }
        order
    }

    /// Batch `index` of an epoch: the rows `order[index·B ..]`, trimmed to their longest length.
    pub fn batch(&self, order: &[usize], batch_size: usize, index: usize) -> Batch {
        let lo = index * batch_size;
        let rows = &order[lo..(lo + batch_size).min(order.len())];
        self.gather(rows)
    }

    /// The batch made of `rows` (in that order), trimmed to their longest length.
    pub fn gather(&self, rows: &[usize]) -> Batch {
        let t_all = self.steps;
        let t = rows.iter().map(|&r| self.lengths[r]).max().unwrap_or(1);
        let lengths: Vec<usize> = rows.iter().map(|&r| self.lengths[r]).collect();
        let per_step = |v: &[f32], width: usize| -> Vec<f32> {
            let mut out = Vec::with_capacity(rows.len() * t * width);
            for &r in rows {
                out.extend_from_slice(&v[r * t_all * width..(r * t_all + t) * width]);
            }
            out
        };
        let input = match &self.input {
            BatchInput::Tokens(v) => {
                let mut out = Vec::with_capacity(rows.len() * t);
                for &r in rows {
                    out.extend_from_slice(&v[r * t_all..r * t_all + t]);
                }
                BatchInput::Tokens(out)
            }
            BatchInput::Dense(v) => BatchInput::Dense(per_step(v, self.features)),
        };
        let targets = match &self.targets {
            BatchTargets::PerStep(v) => {
                let mut out = Vec::with_capacity(rows.len() * t);
                for &r in rows {
                    let real = self.lengths[r];
                    out.extend((0..t).map(|s| if s < real { v[r * t_all + s] } else { IGNORE_INDEX }));
                }
                BatchTargets::PerStep(out)
            }
            BatchTargets::PerRow(v) => BatchTargets::PerRow(rows.iter().map(|&r| v[r]).collect()),
            BatchTargets::ValuesPerStep(v) => BatchTargets::ValuesPerStep(per_step(v, self.outputs)),
            BatchTargets::ValuesPerRow(v) => {
                let o = self.outputs;
                BatchTargets::ValuesPerRow(rows.iter().flat_map(|&r| v[r * o..(r + 1) * o].iter().copied()).collect())
            }
            BatchTargets::Transcripts { labels, max_len, lengths } => {
                // Trimmed to the longest transcript of these rows (at least 1 column).
                let s = rows.iter().map(|&r| lengths[r]).max().unwrap_or(0).max(1).min(*max_len);
                let mut out = Vec::with_capacity(rows.len() * s);
                for &r in rows {
                    out.extend_from_slice(&labels[r * max_len..r * max_len + s]);
                }
                BatchTargets::Transcripts {
                    labels: out,
                    max_len: s,
                    lengths: rows.iter().map(|&r| lengths[r]).collect(),
                }
            }
        };
        Batch { input, targets, rows: rows.len(), steps: t, lengths: Some(lengths) }
    }
}

/// Mixes the run seed and the epoch into one seed (SplitMix64 finaliser), so epochs differ and a
/// resumed run recomputes the same order.
pub(crate) fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    let mut z = seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(n: usize) -> Vec<i32> {
        (0..n as i32).map(|i| i % 7).collect()
    }

    #[test]
    fn windows_cover_the_stream_with_shifted_targets() {
        let s = TokenStream::new(stream(50), 7, 4, 5, StreamMode::Windows { stride: 5 }).unwrap();
        let order = s.epoch_order(1, 0);
        assert_eq!(order.len(), (50 - 6) / 5 + 1);
        let mut seen = Vec::new();
        for i in 0..s.batches_per_epoch() {
            let b = s.batch(&order, i);
            let (BatchInput::Tokens(x), BatchTargets::PerStep(y)) = (&b.input, &b.targets) else { panic!() };
            for r in 0..b.rows {
                for t in 0..5 {
                    // the target of position t is the input of position t + 1 in the stream
                    assert_eq!((x[r * 5 + t] + 1) % 7, y[r * 5 + t]);
                }
                seen.push(x[r * 5]);
            }
        }
        assert_eq!(seen.len(), order.len());
    }

    #[test]
    fn epoch_order_is_reproducible_and_changes_with_epoch() {
        let s = TokenStream::new(stream(200), 7, 4, 5, StreamMode::Windows { stride: 3 }).unwrap();
        assert_eq!(s.epoch_order(9, 2), s.epoch_order(9, 2));
        assert_ne!(s.epoch_order(9, 2), s.epoch_order(9, 3));
        assert_ne!(s.epoch_order(9, 2), s.epoch_order(10, 2));
    }

    #[test]
    fn lanes_continue_from_one_batch_to_the_next() {
        let tokens: Vec<i32> = (0..100).collect();
        let s = TokenStream::new(tokens, 100, 2, 4, StreamMode::Lanes).unwrap();
        assert_eq!(s.batches_per_epoch(), (50 - 1) / 4);
        let b0 = s.batch(&[], 0);
        let b1 = s.batch(&[], 1);
        let (BatchInput::Tokens(x0), BatchInput::Tokens(x1)) = (&b0.input, &b1.input) else { panic!() };
        assert_eq!(&x0[..4], &[0, 1, 2, 3]);
        assert_eq!(&x0[4..], &[50, 51, 52, 53]);
        assert_eq!(&x1[..4], &[4, 5, 6, 7]);
    }

    #[test]
    fn bad_streams_are_refused_with_names() {
        let e = TokenStream::new(vec![0, 1, 9], 5, 1, 1, StreamMode::Lanes).unwrap_err();
        assert!(e.to_string().contains("id 9 at position 2"), "{e}");
        let e = TokenStream::new(stream(5), 7, 1, 8, StreamMode::Windows { stride: 1 }).unwrap_err();
        assert!(e.to_string().contains("need at least 9"), "{e}");
        assert!(TokenStream::new(stream(50), 7, 0, 4, StreamMode::Lanes).is_err());
    }

    #[test]
    fn sequence_batches_trim_to_the_longest_row_and_ignore_padding() {
        let set = SequenceSet {
            input: BatchInput::Tokens(vec![1, 2, 3, 0, 4, 0, 0, 0, 5, 6, 0, 0]),
            targets: BatchTargets::PerStep(vec![1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]),
            rows: 3,
            steps: 4,
            lengths: vec![3, 1, 2],
            features: 0,
            outputs: 0,
        };
        set.validate().unwrap();
        let b = set.gather(&[1, 2]);
        assert_eq!(b.steps, 2);
        assert_eq!(b.input, BatchInput::Tokens(vec![4, 0, 5, 6]));
        assert_eq!(b.targets, BatchTargets::PerStep(vec![2, IGNORE_INDEX, 3, 3]));
        assert_eq!(b.lengths, Some(vec![1, 2]));
        let bad = SequenceSet { lengths: vec![3, 0, 2], ..set };
        assert!(bad.validate().unwrap_err().to_string().contains("row 1"));
    }
}
