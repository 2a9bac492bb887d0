//! The prompt state cache: an RNN's whole context is its recurrent state, so the state after a
//! prompt prefix stands for the prefix. Requests that share a long prefix (a system prompt, a
//! conversation's earlier turns) restore the state cached after it and read only the rest.
//!
//! Prompts are read in chunks of [`CHECKPOINT_TOKENS`] ids at absolute positions (0..64,
//! 64..128, …) whether or not the cache is on, and the state (with the next-token logits) is
//! cached at each chunk boundary, keyed by the ids before it. A prompt that shares a prefix with
//! a cached one restores the state at the longest shared boundary and reads the chunks after it
//! exactly as a cold read would, so a cached answer equals an uncached one bit for bit.
//!
//! Bounded in bytes (states, logits and keys counted), least recently used entries evicted
//! first: the policy of ai00_server's prompt cache (a trie of token prefixes, entries carrying
//! the state and the model output, evicted by last use), with a byte bound instead of a count
//! because a state's size depends on the architecture.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hasher};

use crate::error::Result;
use crate::layer::recurrent::StackState;
use crate::model::inference::InferenceScratch;
use crate::model::network::Network;

/// Ids per prompt chunk, and the spacing of the cached states: a hit reads at most this many
/// ids of the shared prefix again, a prompt shorter than this is never cached.
pub const CHECKPOINT_TOKENS: usize = 64;

/// Counts of a [`StateCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCacheStats {
    /// States held now.
    pub entries: usize,
    /// Bytes they take (states, logits, keys).
    pub bytes: usize,
    /// The bound on `bytes`; 0 = the cache is off.
    pub max_bytes: usize,
    /// Prompts of at least [`CHECKPOINT_TOKENS`] ids that restored a cached state.
    pub hits: u64,
    /// Prompts of at least [`CHECKPOINT_TOKENS`] ids that found none.
    pub misses: u64,
    /// Prompt ids not read again thanks to hits.
    pub reused_tokens: u64,
    /// States dropped to stay within `max_bytes`.
    pub evictions: u64,
}

/// What one [`StateCache::feed_part`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// Ids not read thanks to a cached state (only when reading from position 0).
    pub skipped: usize,
    /// Ids read.
    pub read: usize,
    /// Where the prompt's reading stands now (its length once read).
    pub position: usize,
}

/// One cached state: the ids it follows, the state `[L·D, 1, H]` and the logits `[V]` after them.
struct Entry {
    key: Vec<i32>,
    state: StackState,
    logits: Vec<f32>,
    bytes: usize,
    /// Position in the recency order (larger = used more recently).
    tick: u64,
}

/// An LRU cache of recurrent states after prompt prefixes, bounded in bytes.
#[derive(Default)]
pub struct StateCache {
    /// By hash of the key; a lookup compares the ids too, so a collision is only a miss.
    entries: HashMap<u64, Entry>,
    /// Recency order: tick → hash of the entry last used at that tick.
    order: BTreeMap<u64, u64>,
    next_tick: u64,
    stats: StateCacheStats,
}

/// Hash of every [`CHECKPOINT_TOKENS`]-aligned prefix of `prompt` (index k: the first
/// `(k + 1) · CHECKPOINT_TOKENS` ids), computed in one pass.
fn boundary_hashes(prompt: &[i32]) -> Vec<u64> {
    let mut hasher = DefaultHasher::new();
    let mut out = Vec::with_capacity(prompt.len() / CHECKPOINT_TOKENS);
    for chunk in prompt.chunks_exact(CHECKPOINT_TOKENS) {
        for &t in chunk {
            hasher.write_i32(t);
        }
        out.push(hasher.clone().finish());
    }
    out
}

impl StateCache {
    /// An empty cache holding at most `max_bytes` (0: off; prompts are still read in chunks).
    pub fn new(max_bytes: usize) -> Self {
        StateCache { stats: StateCacheStats { max_bytes, ..Default::default() }, ..Default::default() }
    }

    /// Changes the bound, evicting at once what no longer fits.
    pub fn set_max_bytes(&mut self, max_bytes: usize) {
        self.stats.max_bytes = max_bytes;
        self.evict_to(max_bytes);
    }

    pub fn stats(&self) -> StateCacheStats {
        StateCacheStats { entries: self.entries.len(), ..self.stats }
    }

    /// Reads `prompt` (not empty) from the zero state into `state` (`[L·D, 1, H]`, zero on
    /// entry), leaving the next-token logits in `logits` `[V]`: from the state cached after its
    /// longest cached prefix, chunk by chunk, caching the state at each chunk boundary passed.
    /// Returns how many prompt ids were skipped.
    pub fn feed(
        &mut self,
        net: &Network,
        prompt: &[i32],
        state: &mut StackState,
        scratch: &mut InferenceScratch,
        logits: &mut [f32],
    ) -> Result<usize> {
        Ok(self.feed_part(net, prompt, 0, usize::MAX, state, scratch, logits)?.skipped)
    }

    /// Reads part of `prompt` (not empty): from position `from` (0: a prompt not read yet, whose
    /// longest cached prefix is restored first; else where the previous part ended, `state` and
    /// `logits` as it left them) until at least `budget` ids were read or the prompt ends. The
    /// chunks are the ones [`StateCache::feed`] reads (absolute multiples of
    /// [`CHECKPOINT_TOKENS`]), so a prompt read in parts ends bit for bit where one read at once
    /// ends; with a `budget` that is a multiple of [`CHECKPOINT_TOKENS`], exactly `budget` ids
    /// are read unless the prompt ends first. This is what lets a long prompt be read a few
    /// chunks per generation step while other sequences keep generating.
    #[allow(clippy::too_many_arguments)]
    pub fn feed_part(
        &mut self,
        net: &Network,
        prompt: &[i32],
        from: usize,
        budget: usize,
        state: &mut StackState,
        scratch: &mut InferenceScratch,
        logits: &mut [f32],
    ) -> Result<Fed> {
        let on = self.stats.max_bytes > 0;
        let hashes = if on { boundary_hashes(prompt) } else { Vec::new() };
        let mut start = from;
        let mut skipped = 0;
        if from == 0 {
            for (k, &hash) in hashes.iter().enumerate().rev() {
                let len = (k + 1) * CHECKPOINT_TOKENS;
                if let Some(e) = self.entries.get_mut(&hash).filter(|e| e.key == prompt[..len]) {
                    state.clone_from(&e.state);
                    logits.copy_from_slice(&e.logits);
                    self.order.remove(&e.tick);
                    e.tick = self.next_tick;
                    self.order.insert(self.next_tick, hash);
                    self.next_tick += 1;
                    start = len;
                    break;
                }
            }
            skipped = start;
            if !hashes.is_empty() {
                if start > 0 {
                    self.stats.hits += 1;
                    self.stats.reused_tokens += start as u64;
                } else {
                    self.stats.misses += 1;
                }
            }
        }
        let mut read = 0;
        while start < prompt.len() && read < budget {
            // Chunks end at absolute multiples of CHECKPOINT_TOKENS (the last one at the end).
            let end = ((start / CHECKPOINT_TOKENS + 1) * CHECKPOINT_TOKENS).min(prompt.len());
            net.feed(&prompt[start..end], 1, end - start, state, scratch, logits)?;
            if on && end.is_multiple_of(CHECKPOINT_TOKENS) {
                self.insert(hashes[end / CHECKPOINT_TOKENS - 1], &prompt[..end], state, logits);
            }
            read += end - start;
            start = end;
        }
        Ok(Fed { skipped, read, position: start })
    }

    fn insert(&mut self, hash: u64, key: &[i32], state: &StackState, logits: &[f32]) {
        let floats = state.h.len() + state.c.as_ref().map_or(0, Vec::len) + logits.len();
        let bytes = 4 * (floats + key.len()) + std::mem::size_of::<Entry>();
        if bytes > self.stats.max_bytes {
            return;
        }
        if let Some(old) = self.entries.remove(&hash) {
            self.order.remove(&old.tick);
            self.stats.bytes -= old.bytes;
        }
        self.evict_to(self.stats.max_bytes - bytes);
        let tick = self.next_tick;
        self.next_tick += 1;
        self.order.insert(tick, hash);
        self.entries
            .insert(hash, Entry { key: key.to_vec(), state: state.clone(), logits: logits.to_vec(), bytes, tick });
        self.stats.bytes += bytes;
    }

    /// Drops least recently used entries until at most `limit` bytes remain.
    fn evict_to(&mut self, limit: usize) {
        while self.stats.bytes > limit {
            let Some((_, hash)) = self.order.pop_first() else { break };
            if let Some(e) = self.entries.remove(&hash) {
                self.stats.bytes -= e.bytes;
                self.stats.evictions += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;
    use crate::init::{init_params, InitConfig};
    use crate::rng::Rng;
    use serde_json::json;

    fn net(cell: &str) -> Network {
        let cfg = ModelConfig::from_json(
            &json!({"cell": cell, "vocab_size": 11, "embed_dim": 6, "hidden_size": 7, "num_layers": 2}),
        )
        .unwrap();
        let params = init_params(&cfg, &InitConfig::default(), &mut Rng::new(5)).unwrap();
        Network::from_params(cfg, params).unwrap()
    }

    fn prompt(len: usize, salt: usize) -> Vec<i32> {
        (0..len).map(|k| ((k * 7 + salt * (k / 150) + 1) % 11) as i32).collect()
    }

    /// State and logits after `prompt` through `cache`, as bits, and the ids skipped.
    fn read(net: &Network, cache: &mut StateCache, prompt: &[i32]) -> (Vec<u32>, usize) {
        let mut state = net.zero_state(1);
        let mut logits = vec![0.0; 11];
        let skipped = cache.feed(net, prompt, &mut state, &mut InferenceScratch::default(), &mut logits).unwrap();
        let c = state.c.clone().unwrap_or_default();
        (state.h.iter().chain(&c).chain(&logits).map(|v| v.to_bits()).collect(), skipped)
    }

    /// A prompt sharing a prefix with a cached one restores the state at the longest shared
    /// chunk boundary and ends bit for bit where a cold read (cache off) ends; every cell.
    #[test]
    fn cached_reads_equal_cold_reads() {
        for cell in ["lstm", "gru", "rnn"] {
            let net = net(cell);
            let mut cache = StateCache::new(1 << 20);
            let first = prompt(300, 0);
            let second = prompt(330, 1); // equal to `first` for its first 150 ids
            assert_eq!(read(&net, &mut cache, &first).1, 0);
            let (warm, skipped) = read(&net, &mut cache, &second);
            assert_eq!(skipped, 128, "{cell}: the last boundary within the shared 150 ids");
            let (cold, _) = read(&net, &mut StateCache::new(0), &second);
            assert_eq!(warm, cold, "{cell}");
            // The same prompt again: everything up to its last boundary comes from the cache.
            assert_eq!(read(&net, &mut cache, &second), (cold, 320));
            let s = cache.stats();
            assert_eq!((s.hits, s.misses, s.reused_tokens), (2, 1, 448));
        }
    }

    /// A prompt read a few chunks at a time (the generation pool's chunked prefill, budgets of
    /// one and three chunks, from a cached prefix or not) ends bit for bit where one read at
    /// once ends; every cell.
    #[test]
    fn reads_in_parts_equal_one_read() {
        for cell in ["lstm", "gru", "rnn"] {
            let net = net(cell);
            let long = prompt(300, 2);
            let (whole, _) = read(&net, &mut StateCache::new(0), &long);
            for (bound, budget) in [(0, CHECKPOINT_TOKENS), (0, 3 * CHECKPOINT_TOKENS), (1 << 20, CHECKPOINT_TOKENS)] {
                let mut cache = StateCache::new(bound);
                if bound > 0 {
                    read(&net, &mut cache, &long[..150]); // caches the state at 128
                }
                let mut state = net.zero_state(1);
                let mut logits = vec![0.0; 11];
                let mut scratch = InferenceScratch::default();
                let mut at = 0;
                let mut parts = 0;
                while at < long.len() {
                    let fed = cache.feed_part(&net, &long, at, budget, &mut state, &mut scratch, &mut logits).unwrap();
                    assert!(fed.read <= budget && fed.read > 0, "{cell}: {fed:?}");
                    assert_eq!(fed.skipped, if at == 0 && bound > 0 { 128 } else { 0 });
                    at = fed.position;
                    parts += 1;
                }
                let expected = (long.len() - if bound > 0 { 128 } else { 0 }).div_ceil(budget);
                assert_eq!(parts, expected, "{cell}: budget {budget}");
                let c = state.c.clone().unwrap_or_default();
                let bits: Vec<u32> = state.h.iter().chain(&c).chain(&logits).map(|v| v.to_bits()).collect();
                assert_eq!(bits, whole, "{cell}: budget {budget}, cache bound {bound}");
            }
        }
    }

    /// The byte bound holds, least recently used states go first, and a bound of 0 caches nothing.
    #[test]
    fn bounded_in_bytes_lru_first() {
        let net = net("lstm");
        let probe = {
            let mut c = StateCache::new(1 << 20);
            read(&net, &mut c, &prompt(64, 0));
            c.stats().bytes
        };
        // Room for three 64-id entries (longer keys cost more, so only short prompts here).
        let mut cache = StateCache::new(3 * probe + probe / 2);
        let p: Vec<Vec<i32>> = (0..4).map(|i: i32| (0..64).map(|k| (k + i) % 11).collect()).collect();
        for q in &p[..3] {
            read(&net, &mut cache, q);
        }
        assert_eq!(cache.stats().entries, 3);
        read(&net, &mut cache, &p[0]); // p[0] is now the most recently used
        read(&net, &mut cache, &p[3]); // evicts p[1]
        let s = cache.stats();
        assert!(s.bytes <= s.max_bytes && s.entries == 3 && s.evictions == 1, "{s:?}");
        assert_eq!(read(&net, &mut cache, &p[0]).1, 64);
        assert_eq!(read(&net, &mut cache, &p[2]).1, 64);
        assert_eq!(read(&net, &mut cache, &p[1]).1, 0, "evicted");
        cache.set_max_bytes(0);
        assert_eq!((cache.stats().entries, cache.stats().bytes), (0, 0));
        let mut off = StateCache::new(0);
        read(&net, &mut off, &p[0]);
        assert_eq!(read(&net, &mut off, &p[0]).1, 0);
        assert_eq!(off.stats(), StateCacheStats::default());
    }
}
