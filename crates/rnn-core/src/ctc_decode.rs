//! Decoding a CTC model's per-frame outputs into label sequences: greedy (the best class of each
//! frame, repeats merged, blanks dropped) and prefix beam search (Hannun et al. 2014, without a
//! language model), optionally constrained to a lexicon: a trie of the allowed words over the
//! output labels, so that every transcript is a sequence of words from the list.
//!
//! Input: one row's frames, `[T, C]` row-major logits or log-probabilities (greedy reads only
//! their order; beam search takes the log-softmax of each frame itself).

use crate::error::{Error, Result};
use std::collections::HashMap;

/// The labels of the best path: each frame's first maximum, repeats merged, blanks dropped.
pub fn greedy(frames: &[f32], classes: usize, blank: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut prev = None;
    for frame in frames.chunks_exact(classes) {
        let k = crate::metrics::argmax(frame);
        if Some(k) != prev && k != blank {
            out.push(k);
        }
        prev = Some(k);
    }
    out
}

/// Words as label sequences in a trie; with a word separator label (the space), a transcript is
/// words joined by single separators, else exactly one word of the list.
#[derive(Debug, Clone)]
pub struct Lexicon {
    /// Node 0 is the root (no letter read yet).
    nodes: Vec<TrieNode>,
    separator: Option<usize>,
}

#[derive(Debug, Clone, Default)]
struct TrieNode {
    /// `(label, node)`, a handful per node.
    children: Vec<(usize, usize)>,
    /// A word ends here.
    word_end: bool,
}

impl Lexicon {
    /// A lexicon of `words` (each a non-empty label sequence without the separator or the blank).
    pub fn new(words: &[Vec<usize>], separator: Option<usize>, blank: usize) -> Result<Self> {
        if words.is_empty() {
            return Err(Error::Range("lexicon: expected at least one word, got none".into()));
        }
        let mut nodes = vec![TrieNode::default()];
        for (w, word) in words.iter().enumerate() {
            if word.is_empty() {
                return Err(Error::Range(format!("lexicon[{w}]: expected a non-empty word")));
            }
            if word.iter().any(|&l| Some(l) == separator || l == blank) {
                return Err(Error::Range(format!("lexicon[{w}]: a word cannot hold the word separator or the blank")));
            }
            let mut node = 0;
            for &l in word {
                node = match nodes[node].children.iter().find(|&&(c, _)| c == l) {
                    Some(&(_, n)) => n,
                    None => {
                        nodes.push(TrieNode::default());
                        let n = nodes.len() - 1;
                        nodes[node].children.push((l, n));
                        n
                    }
                };
            }
            nodes[node].word_end = true;
        }
        Ok(Lexicon { nodes, separator })
    }

    /// The node after reading `label` at `node`, if the lexicon allows it there: a letter that
    /// continues a word, or the separator right after a whole word (back to the root).
    fn next(&self, node: usize, label: usize) -> Option<usize> {
        if Some(label) == self.separator {
            return (node != 0 && self.nodes[node].word_end).then_some(0);
        }
        self.nodes[node].children.iter().find(|&&(c, _)| c == label).map(|&(_, n)| n)
    }

    /// Whether a transcript may end at `node`: after a whole word, or empty (a trailing
    /// separator leaves the root, which ends nothing).
    fn may_end(&self, node: usize, empty: bool) -> bool {
        if node == 0 {
            empty
        } else {
            self.nodes[node].word_end
        }
    }
}

/// Options of [`beam_search`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeamOptions {
    /// Prefixes kept after each frame (≥ 1).
    pub beam_width: usize,
    pub blank: usize,
}

/// One decoded transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    pub labels: Vec<usize>,
    /// `ln p(labels | x)` summed over the alignments the search kept.
    pub log_prob: f64,
}

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

/// A prefix of the search with its probability split by the class of its last frame.
#[derive(Debug, Clone)]
struct Prefix {
    labels: Vec<usize>,
    /// ln p(prefix, last frame blank).
    blank: f64,
    /// ln p(prefix, last frame its last label).
    label: f64,
    /// Lexicon node after the prefix (0 without a lexicon).
    node: usize,
}

impl Prefix {
    fn total(&self) -> f64 {
        log_add(self.blank, self.label)
    }
}

/// Prefix beam search over `frames` `[T, C]` logits. Returns the kept transcripts, best first
/// (with a lexicon, only those that end after a whole word; none when no kept prefix does).
pub fn beam_search(
    frames: &[f32],
    classes: usize,
    opts: &BeamOptions,
    lexicon: Option<&Lexicon>,
) -> Result<Vec<Hypothesis>> {
    if opts.beam_width == 0 {
        return Err(Error::Range("beamWidth: expected an integer >= 1, got 0".into()));
    }
    if opts.blank >= classes {
        return Err(Error::Range(format!("blank: expected an index in 0..{classes}, got {}", opts.blank)));
    }
    if !frames.len().is_multiple_of(classes) {
        return Err(Error::Shape(format!(
            "frames: expected a multiple of {classes} values (frames × classes), got {}",
            frames.len()
        )));
    }
    let neg = f64::NEG_INFINITY;
    let mut beams = vec![Prefix { labels: Vec::new(), blank: 0.0, label: neg, node: 0 }];
    let mut lp = vec![0.0f64; classes];
    let mut index: HashMap<Vec<usize>, usize> = HashMap::new();
    for frame in frames.chunks_exact(classes) {
        let m = frame.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = m + frame.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        for (o, &v) in lp.iter_mut().zip(frame) {
            *o = v as f64 - lse;
        }
        let mut next: Vec<Prefix> = Vec::with_capacity(beams.len() * classes);
        index.clear();
        let mut slot = |next: &mut Vec<Prefix>, labels: Vec<usize>, node: usize| -> usize {
            *index.entry(labels.clone()).or_insert_with(|| {
                next.push(Prefix { labels, blank: neg, label: neg, node });
                next.len() - 1
            })
        };
        for p in &beams {
            let total = p.total();
            // A blank frame, or the last label repeated (merged): the same prefix.
            let same = slot(&mut next, p.labels.clone(), p.node);
            next[same].blank = log_add(next[same].blank, total + lp[opts.blank]);
            let last = p.labels.last().copied();
            if let Some(l) = last {
                next[same].label = log_add(next[same].label, p.label + lp[l]);
            }
            for (k, &lk) in lp.iter().enumerate() {
                if k == opts.blank || lk == neg {
                    continue;
                }
                let node = match lexicon {
                    Some(lex) => match lex.next(p.node, k) {
                        Some(n) => n,
                        None => continue,
                    },
                    None => 0,
                };
                let mut labels = p.labels.clone();
                labels.push(k);
                let i = slot(&mut next, labels, node);
                // A repeated label starts a new one only after a blank.
                let from = if Some(k) == last { p.blank } else { total };
                next[i].label = log_add(next[i].label, from + lk);
            }
        }
        next.sort_by(|a, b| b.total().total_cmp(&a.total()).then_with(|| a.labels.cmp(&b.labels)));
        next.truncate(opts.beam_width);
        beams = next;
    }
    Ok(beams
        .into_iter()
        .filter(|p| lexicon.is_none_or(|lex| lex.may_end(p.node, p.labels.is_empty())))
        .map(|p| Hypothesis { log_prob: p.total(), labels: p.labels })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames of log-probabilities from per-frame probability rows.
    fn frames(rows: &[&[f32]]) -> Vec<f32> {
        rows.iter().flat_map(|r| r.iter().map(|p| p.ln())).collect()
    }

    #[test]
    fn greedy_merges_repeats_and_drops_blanks() {
        // classes: blank, a, b. Best path a a _ a b b _ → a a b.
        let x = frames(&[
            &[0.1, 0.8, 0.1],
            &[0.1, 0.8, 0.1],
            &[0.8, 0.1, 0.1],
            &[0.1, 0.8, 0.1],
            &[0.1, 0.1, 0.8],
            &[0.1, 0.1, 0.8],
            &[0.8, 0.1, 0.1],
        ]);
        assert_eq!(greedy(&x, 3, 0), vec![1, 1, 2]);
    }

    /// Prefix beam search sums the alignments of a prefix, which can beat the best path: two
    /// frames, p(blank) = 0.4 and p(a) = 0.3, p(b) = 0.3 each. Best path: blank blank (0.16),
    /// but "a" has a a, a _, _ a: 0.09 + 0.12 + 0.12 = 0.33.
    #[test]
    fn beam_search_sums_alignments_where_greedy_takes_one_path() {
        let x = frames(&[&[0.4, 0.3, 0.3], &[0.4, 0.3, 0.3]]);
        assert_eq!(greedy(&x, 3, 0), Vec::<usize>::new());
        let h = beam_search(&x, 3, &BeamOptions { beam_width: 8, blank: 0 }, None).unwrap();
        assert_eq!(h[0].labels.len(), 1);
        assert!((h[0].log_prob - 0.33f64.ln()).abs() < 1e-6, "{}", h[0].log_prob);
        // With every prefix kept the probabilities of all transcripts sum to 1.
        let total: f64 = h.iter().map(|h| h.log_prob.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}");
    }

    #[test]
    fn a_lexicon_keeps_only_its_words() {
        // classes: blank, a, b, space(3). Words "ab", "b". The frames favour "a a" (not a word).
        let lex = Lexicon::new(&[vec![1, 2], vec![2]], Some(3), 0).unwrap();
        let x = frames(&[&[0.05, 0.8, 0.1, 0.05], &[0.35, 0.05, 0.15, 0.45], &[0.05, 0.6, 0.3, 0.05]]);
        let opts = BeamOptions { beam_width: 16, blank: 0 };
        let free = beam_search(&x, 4, &opts, None).unwrap();
        assert_eq!(free[0].labels, vec![1, 3, 1]);
        let constrained = beam_search(&x, 4, &opts, Some(&lex)).unwrap();
        for h in constrained.iter().filter(|h| !h.labels.is_empty()) {
            let text: Vec<&[usize]> = h.labels.split(|&l| l == 3).collect();
            assert!(text.iter().all(|w| w == &[1, 2] || w == &[2]), "{:?}", h.labels);
        }
        assert_eq!(constrained[0].labels, vec![1, 2]);
    }

    #[test]
    fn bad_lexicons_and_options_are_refused() {
        assert!(Lexicon::new(&[], Some(3), 0).is_err());
        assert!(Lexicon::new(&[vec![]], Some(3), 0).unwrap_err().to_string().starts_with("lexicon[0]"));
        assert!(Lexicon::new(&[vec![1, 3]], Some(3), 0).is_err());
        let opts = BeamOptions { beam_width: 0, blank: 0 };
        assert!(beam_search(&[0.0; 6], 3, &opts, None).unwrap_err().to_string().starts_with("beamWidth"));
    }
}
