//! Batched beam search over any [`StepModel`]: the `beams` best continuations of all live
//! hypotheses by cumulative log-probability, with the GNMT length penalty on finished ones.
//!
//! Nothing here knows about the network: a language model plugs in through [`StepModel`]
//! (`model/inference.rs` implements it with one batched network step for all live beams).

use crate::error::{check_finite, check_len, Error, Result};
use crate::sample::{desc, log_softmax_finite};
use std::sync::atomic::{AtomicBool, Ordering};

/// A network seen by beam search: it advances a batch of independent states by one token each.
pub trait StepModel {
    /// Everything the model needs to continue one hypothesis (e.g. the recurrent h and c).
    type State: Clone;

    /// Advances `states[b]` by `tokens[b]` for every b (one batched call for all live beams) and
    /// writes the logits of the next token of beam b to `logits_out[b·V .. (b+1)·V]`.
    fn step(&mut self, states: &mut [Self::State], tokens: &[u32], logits_out: &mut [f32]) -> Result<()>;

    /// V, the number of logits per state.
    fn vocab_size(&self) -> usize;
}

/// Parameters of [`beam_search`].
#[derive(Debug, Clone, PartialEq)]
pub struct BeamConfig {
    /// Beam width, ≥ 1. With 1 the search is exactly greedy decoding.
    pub beams: usize,
    /// Maximum number of generated tokens per hypothesis (stop token included), ≥ 1.
    pub max_tokens: usize,
    /// GNMT length-penalty exponent α (Wu et al. 2016): a finished hypothesis of `len` tokens
    /// scores `logprob / ((5 + len) / 6)^α`. 0 ranks by raw log-probability; α > 0 favours
    /// longer hypotheses. `len` counts generated tokens including the stop token.
    pub length_penalty: f64,
    /// Token ids that end a hypothesis (e.g. end-of-sequence). The stop token is included in
    /// the returned tokens and in the log-probability.
    pub stop_tokens: Vec<u32>,
}

impl BeamConfig {
    /// The widest beam accepted: every step keeps `beams` hypotheses and ranks `beams²`
    /// candidates, so the width bounds the memory and time of a step.
    pub const MAX_BEAMS: usize = 256;

    /// Checks every field, naming the first bad one and its value.
    pub fn validate(&self) -> Result<()> {
        if self.beams == 0 || self.beams > Self::MAX_BEAMS {
            return Err(Error::Range(format!(
                "beams: expected an integer in [1, {}], got {}",
                Self::MAX_BEAMS,
                self.beams
            )));
        }
        if self.max_tokens == 0 {
            return Err(Error::Range("max_tokens: expected at least 1, got 0".into()));
        }
        if !self.length_penalty.is_finite() {
            return Err(Error::NonFinite(format!("length_penalty: must be finite, got {}", self.length_penalty)));
        }
        Ok(())
    }

    /// The GNMT length normaliser `((5 + len) / 6)^α`.
    fn normaliser(&self, len: usize) -> f64 {
        ((5.0 + len as f64) / 6.0).powf(self.length_penalty)
    }

    /// The score of a hypothesis of `len` tokens with log-probability `logprob`.
    pub fn score(&self, logprob: f64, len: usize) -> f64 {
        logprob / self.normaliser(len)
    }
}

/// One candidate continuation during beam search.
struct Candidate {
    /// Log-probability of the parent hypothesis plus that of `token`.
    logprob: f64,
    /// The raw logit of `token`, a tie-break that keeps beams = 1 identical to argmax even when
    /// two distinct f32 logits round to the same f64 log-probability.
    logit: f32,
    beam: usize,
    token: u32,
}

/// Beam search from a model state that has consumed the prompt and whose next-token logits are
/// `first_logits`.
///
/// At every step the `beams` best continuations of all live hypotheses (by cumulative
/// log-probability; ties → lower beam index, higher logit, lower token id) are kept. Those
/// ending with a stop token leave the beam as finished hypotheses (so with beams = 1 this is
/// exactly greedy decoding); those reaching `max_tokens` finish too. The search stops early once
/// `beams` hypotheses are finished and no live one can still beat the worst of them (the bound
/// accounts for the length penalty), which does not change the result.
///
/// `cancel` is checked before every step: once set, the search stops with [`Error::Aborted`]
/// (a search of `max_tokens` up to 10⁶ steps must not outlive its caller's abort).
///
/// Returns at most `beams` hypotheses `(tokens, score, logprob)`, best score first.
pub fn beam_search<M: StepModel>(
    model: &mut M,
    initial_state: M::State,
    first_logits: &[f32],
    cfg: &BeamConfig,
    cancel: &AtomicBool,
) -> Result<Vec<(Vec<u32>, f64, f64)>> {
    cfg.validate()?;
    let v = model.vocab_size();
    if v == 0 || v > u32::MAX as usize {
        return Err(Error::Shape(format!("vocab_size: expected 1 to {}, got {v}", u32::MAX)));
    }
    check_len("first_logits", first_logits.len(), v)?;
    check_finite("first_logits", first_logits)?;
    if let Some(&t) = cfg.stop_tokens.iter().find(|&&t| t as usize >= v) {
        return Err(Error::Range(format!("stop_tokens: token id {t} is outside the vocabulary of {v}")));
    }

    let mut states = vec![initial_state];
    let mut sequences: Vec<Vec<u32>> = vec![Vec::new()];
    let mut logprobs = vec![0.0f64];
    let mut logits = first_logits.to_vec();
    let mut row_logprobs = vec![0.0f64; v];
    let mut ranked: Vec<u32> = Vec::with_capacity(v);
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut finished: Vec<(Vec<u32>, f64, f64)> = Vec::new();

    for step in 0..cfg.max_tokens {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Aborted);
        }
        if step > 0 {
            check_finite("logits from StepModel::step", &logits)?;
        }
        candidates.clear();
        // The global top `beams` contains at most `beams` continuations of any one hypothesis,
        // so each hypothesis only contributes its own top `beams` tokens.
        let per_beam = cfg.beams.min(v);
        for (b, row) in logits.chunks_exact(v).enumerate() {
            log_softmax_finite(row, &mut row_logprobs);
            let by_rank = |a: &u32, c: &u32| {
                let (a, c) = (*a as usize, *c as usize);
                desc(row_logprobs[a], row_logprobs[c]).then(desc(row[a], row[c])).then(a.cmp(&c))
            };
            ranked.clear();
            ranked.extend(0..v as u32);
            if per_beam < v {
                ranked.select_nth_unstable_by(per_beam - 1, by_rank);
            }
            candidates.extend(ranked[..per_beam].iter().map(|&t| Candidate {
                logprob: logprobs[b] + row_logprobs[t as usize],
                logit: row[t as usize],
                beam: b,
                token: t,
            }));
        }
        candidates.sort_unstable_by(|a, c| {
            desc(a.logprob, c.logprob)
                .then(a.beam.cmp(&c.beam))
                .then(desc(a.logit, c.logit))
                .then(a.token.cmp(&c.token))
        });
        candidates.truncate(cfg.beams);

        let last = step + 1 == cfg.max_tokens;
        let mut next_states = Vec::with_capacity(candidates.len());
        let mut next_sequences = Vec::with_capacity(candidates.len());
        let mut next_logprobs = Vec::with_capacity(candidates.len());
        let mut next_tokens = Vec::with_capacity(candidates.len());
        for c in &candidates {
            let mut seq = Vec::with_capacity(sequences[c.beam].len() + 1);
            seq.extend_from_slice(&sequences[c.beam]);
            seq.push(c.token);
            if last || cfg.stop_tokens.contains(&c.token) {
                let score = cfg.score(c.logprob, seq.len());
                finished.push((seq, score, c.logprob));
            } else {
                next_states.push(states[c.beam].clone());
                next_sequences.push(seq);
                next_logprobs.push(c.logprob);
                next_tokens.push(c.token);
            }
        }
        if next_states.is_empty() {
            break;
        }
        if finished.len() >= cfg.beams && !can_improve(cfg, &finished, &next_sequences, &next_logprobs) {
            break;
        }

        logits.clear();
        logits.resize(next_states.len() * v, 0.0);
        model.step(&mut next_states, &next_tokens, &mut logits)?;
        states = next_states;
        sequences = next_sequences;
        logprobs = next_logprobs;
    }

    // Stable: among equal scores the hypothesis found first stays first, which is what makes
    // the early stop in `can_improve` (strictly better only) leave the result unchanged.
    finished.sort_by(|a, c| desc(a.1, c.1));
    finished.truncate(cfg.beams);
    Ok(finished)
}

/// Whether any live hypothesis could still finish with a score strictly above the `beams`-th
/// best finished score. Log-probabilities only decrease (every step adds a log-probability
/// ≤ 0), so a live hypothesis of `len` tokens and log-probability `lp` ≤ 0 can at best score
/// `lp / n` where n is the largest normaliser over the lengths it can still reach; the GNMT
/// normaliser is monotone in the length, so that maximum is at one end of the range.
fn can_improve(
    cfg: &BeamConfig,
    finished: &[(Vec<u32>, f64, f64)],
    live_sequences: &[Vec<u32>],
    live_logprobs: &[f64],
) -> bool {
    let mut scores: Vec<f64> = finished.iter().map(|f| f.1).collect();
    let (_, kth, _) = scores.select_nth_unstable_by(cfg.beams - 1, |a, b| desc(*a, *b));
    let kth = *kth;
    live_sequences.iter().zip(live_logprobs).any(|(seq, &lp)| {
        let n = cfg.normaliser(seq.len() + 1).max(cfg.normaliser(cfg.max_tokens));
        lp / n > kth
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beam_config_errors_name_the_field() {
        let ok = BeamConfig { beams: 2, max_tokens: 3, length_penalty: 0.6, stop_tokens: vec![] };
        ok.validate().unwrap();
        for (bad, field) in [
            (BeamConfig { beams: 0, ..ok.clone() }, "beams"),
            (BeamConfig { beams: BeamConfig::MAX_BEAMS + 1, ..ok.clone() }, "beams"),
            (BeamConfig { max_tokens: 0, ..ok.clone() }, "max_tokens"),
            (BeamConfig { length_penalty: f64::NAN, ..ok.clone() }, "length_penalty"),
        ] {
            assert!(bad.validate().unwrap_err().to_string().starts_with(&format!("{field}:")));
        }
        // GNMT: ((5 + 7) / 6)^0.6 = 2^0.6.
        assert!((ok.score(-1.0, 7) + 2.0f64.powf(-0.6)).abs() < 1e-15);
    }
}
