//! A token stream's ids held compactly: appended chunk by chunk as a text is read (so a corpus
//! never exists whole as a JavaScript string or an `Int32Array`), each id checked against the
//! vocabulary once, and stored in the narrowest width the vocabulary allows — 1 byte per id when
//! V ≤ 256 (characters, bytes), 2 when V ≤ 65,536, else 4. A stored stream is shared
//! ([`TokenSlice`]: an `Arc` and a range), so a dataset's train and validation parts and the
//! training thread read one copy.

use std::sync::Arc;

use crate::error::{Error, Result};

/// The ids in their stored width.
#[derive(Debug, Clone)]
enum Ids {
    U8(Vec<u8>),
    U16(Vec<u16>),
    I32(Vec<i32>),
}

/// Token ids of one stream under construction, every id in `[0, vocab_size)`.
#[derive(Debug, Clone)]
pub struct TokenStore {
    ids: Ids,
    vocab_size: usize,
}

impl TokenStore {
    /// An empty stream of ids of a vocabulary of `vocab_size`.
    pub fn new(vocab_size: usize) -> Self {
        let ids = if vocab_size <= 1 << 8 {
            Ids::U8(Vec::new())
        } else if vocab_size <= 1 << 16 {
            Ids::U16(Vec::new())
        } else {
            Ids::I32(Vec::new())
        };
        TokenStore { ids, vocab_size }
    }

    /// A stream holding `ids` (checked as by [`TokenStore::push`]).
    pub fn from_ids(ids: &[i32], vocab_size: usize) -> Result<Self> {
        let mut store = TokenStore::new(vocab_size);
        store.push(ids)?;
        Ok(store)
    }

    /// Appends `ids`; an id outside the vocabulary is an error naming its position in the whole
    /// stream, and leaves the stream as it was.
    pub fn push(&mut self, ids: &[i32]) -> Result<()> {
        let v = self.vocab_size;
        if let Some(i) = ids.iter().position(|&t| t < 0 || t as usize >= v) {
            return Err(Error::Range(format!(
                "tokens: id {} at position {} is outside the vocabulary [0, {v})",
                ids[i],
                self.len() + i
            )));
        }
        // In range, so each cast below is lossless.
        match &mut self.ids {
            Ids::U8(s) => s.extend(ids.iter().map(|&t| t as u8)),
            Ids::U16(s) => s.extend(ids.iter().map(|&t| t as u16)),
            Ids::I32(s) => s.extend_from_slice(ids),
        }
        Ok(())
    }

    /// Ids stored.
    pub fn len(&self) -> usize {
        match &self.ids {
            Ids::U8(s) => s.len(),
            Ids::U16(s) => s.len(),
            Ids::I32(s) => s.len(),
        }
    }

    /// Whether no id is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The vocabulary size the ids were checked against.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Bytes per stored id (1, 2 or 4).
    pub fn bytes_per_id(&self) -> usize {
        match &self.ids {
            Ids::U8(_) => 1,
            Ids::U16(_) => 2,
            Ids::I32(_) => 4,
        }
    }

    /// The whole stream, shared and read-only.
    pub fn into_shared(mut self) -> TokenSlice {
        match &mut self.ids {
            Ids::U8(s) => s.shrink_to_fit(),
            Ids::U16(s) => s.shrink_to_fit(),
            Ids::I32(s) => s.shrink_to_fit(),
        }
        let hi = self.len();
        TokenSlice { store: Arc::new(self), lo: 0, hi }
    }

    fn extend_range(&self, lo: usize, hi: usize, out: &mut Vec<i32>) {
        match &self.ids {
            Ids::U8(s) => out.extend(s[lo..hi].iter().map(|&t| t as i32)),
            Ids::U16(s) => out.extend(s[lo..hi].iter().map(|&t| t as i32)),
            Ids::I32(s) => out.extend_from_slice(&s[lo..hi]),
        }
    }
}

/// A contiguous part of a stored stream (cheap to clone: the ids are shared).
#[derive(Debug, Clone)]
pub struct TokenSlice {
    store: Arc<TokenStore>,
    lo: usize,
    hi: usize,
}

impl TokenSlice {
    /// An empty slice of a vocabulary of `vocab_size`.
    pub fn empty(vocab_size: usize) -> Self {
        TokenStore::new(vocab_size).into_shared()
    }

    /// Ids in the slice.
    pub fn len(&self) -> usize {
        self.hi - self.lo
    }

    /// Whether the slice is empty.
    pub fn is_empty(&self) -> bool {
        self.hi == self.lo
    }

    /// The vocabulary size the ids were checked against.
    pub fn vocab_size(&self) -> usize {
        self.store.vocab_size
    }

    /// Bytes per stored id (1, 2 or 4).
    pub fn bytes_per_id(&self) -> usize {
        self.store.bytes_per_id()
    }

    /// The first `mid` ids and the rest (`mid <= len`), sharing this slice's store.
    pub fn split_at(&self, mid: usize) -> (TokenSlice, TokenSlice) {
        assert!(mid <= self.len(), "split_at: {mid} is past the slice's {} ids", self.len());
        let cut = self.lo + mid;
        (
            TokenSlice { store: self.store.clone(), lo: self.lo, hi: cut },
            TokenSlice { store: self.store.clone(), lo: cut, hi: self.hi },
        )
    }

    /// All ids as `i32` (a copy).
    pub fn to_vec(&self) -> Vec<i32> {
        let mut out = Vec::with_capacity(self.len());
        self.extend_range(0, self.len(), &mut out);
        out
    }
}

/// Read access to a token stream by ranges: an `i32` slice or a [`TokenSlice`], so evaluation
/// reads compact ids without widening the whole stream first.
pub trait TokenSource {
    /// Ids in the stream.
    fn len(&self) -> usize;
    /// Whether the stream is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Appends ids `[lo, hi)` to `out` as `i32`.
    fn extend_range(&self, lo: usize, hi: usize, out: &mut Vec<i32>);
}

impl TokenSource for [i32] {
    fn len(&self) -> usize {
        <[i32]>::len(self)
    }
    fn extend_range(&self, lo: usize, hi: usize, out: &mut Vec<i32>) {
        out.extend_from_slice(&self[lo..hi]);
    }
}

impl TokenSource for Vec<i32> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn extend_range(&self, lo: usize, hi: usize, out: &mut Vec<i32>) {
        out.extend_from_slice(&self[lo..hi]);
    }
}

impl TokenSource for TokenSlice {
    fn len(&self) -> usize {
        TokenSlice::len(self)
    }
    fn extend_range(&self, lo: usize, hi: usize, out: &mut Vec<i32>) {
        assert!(lo <= hi && hi <= self.len(), "extend_range: [{lo}, {hi}) is outside the slice's {} ids", self.len());
        self.store.extend_range(self.lo + lo, self.lo + hi, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_follows_the_vocabulary_and_ids_round_trip() {
        for (vocab, width) in [(2, 1), (256, 1), (257, 2), (65_536, 2), (65_537, 4)] {
            let ids: Vec<i32> = (0..1000).map(|i| (i * 7919 % vocab as i64) as i32).collect();
            let mut store = TokenStore::new(vocab);
            for part in ids.chunks(37) {
                store.push(part).unwrap();
            }
            assert_eq!(store.bytes_per_id(), width, "vocab {vocab}");
            let all = store.into_shared();
            assert_eq!(all.to_vec(), ids);
            let (a, b) = all.split_at(400);
            let mut out = Vec::new();
            b.extend_range(10, 20, &mut out);
            assert_eq!(out, &ids[410..420]);
            assert_eq!(a.to_vec(), &ids[..400]);
        }
    }

    #[test]
    fn an_id_outside_the_vocabulary_names_its_stream_position() {
        let mut store = TokenStore::new(10);
        store.push(&[1, 2, 3]).unwrap();
        let e = store.push(&[4, 10]).unwrap_err();
        assert!(e.to_string().contains("id 10 at position 4"), "{e}");
        assert_eq!(store.len(), 3, "a refused chunk is not appended");
        assert!(store.push(&[-1]).is_err());
    }
}
