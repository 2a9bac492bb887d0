//! Token sampling for text generation: greedy, temperature, top-k, top-p (nucleus), repetition
//! penalty; a stable log-softmax; batched beam search over any [`StepModel`]. Stop strings are
//! matched on decoded text by the TypeScript layer (`src/generate.ts`), which owns tokenizers.
//!
//! Nothing here knows about the network: a language model plugs into beam search through
//! [`StepModel`], and [`sample_next`] only sees a logit vector and the tokens generated so far.
//!
//! Processing order of [`sample_next`] (the order of Hugging Face `generate` logits processors):
//! repetition penalty → temperature → top-k → top-p → draw. Probabilities are computed in f64 so
//! that the cumulative sums of the draw and of the nucleus cut are not limited by f32 rounding.

use crate::error::{check_finite, check_len, Error, Result};
use crate::rng::Rng;
use std::cmp::Ordering;

/// How [`sample_next`] turns logits into a token.
///
/// The JSON form uses these field names; missing fields take the [`Default`] values (plain
/// sampling at temperature 1 with no filtering) and unknown fields are rejected.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplerConfig {
    /// Divides the logits before the softmax. Must be finite and ≥ 0; 0 means greedy (argmax).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (ties broken by the lowest id); 0 = off.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p`, in (0, 1];
    /// 1 = off. Applied after top-k, on the renormalised top-k distribution.
    pub top_p: f32,
    /// CTRL / Hugging Face repetition penalty, > 0: every token id present in the context has
    /// its logit divided by the penalty if positive, multiplied by it otherwise. 1 = off.
    pub repetition_penalty: f32,
    /// Always take the most likely token (after the repetition penalty); ties → lowest id.
    pub greedy: bool,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig { temperature: 1.0, top_k: 0, top_p: 1.0, repetition_penalty: 1.0, greedy: false }
    }
}

impl SamplerConfig {
    /// Checks every field, naming the first bad one and its value.
    pub fn validate(&self) -> Result<()> {
        let finite = |name: &str, v: f32| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(Error::NonFinite(format!("{name}: must be finite, got {v}")))
            }
        };
        finite("temperature", self.temperature)?;
        if self.temperature < 0.0 {
            return Err(Error::Range(format!(
                "temperature: expected a value >= 0 (0 = greedy), got {}",
                self.temperature
            )));
        }
        finite("top_p", self.top_p)?;
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::Range(format!("top_p: expected a value in (0, 1], got {}", self.top_p)));
        }
        finite("repetition_penalty", self.repetition_penalty)?;
        if self.repetition_penalty <= 0.0 {
            return Err(Error::Range(format!(
                "repetition_penalty: expected a value > 0 (1 = off), got {}",
                self.repetition_penalty
            )));
        }
        Ok(())
    }

    /// Whether the configuration always picks the argmax.
    pub fn is_greedy(&self) -> bool {
        self.greedy || self.temperature == 0.0
    }
}

/// Buffers reused across [`sample_next`] calls so that generating a token allocates nothing once
/// they have grown to the vocabulary size.
#[derive(Debug, Default, Clone)]
pub struct SampleScratch {
    /// Logits after the repetition penalty.
    logits: Vec<f32>,
    /// Unnormalised tempered probabilities, indexed by token id.
    weights: Vec<f64>,
    /// Token ids; the first `kept` are the support of the distribution, in draw order.
    order: Vec<u32>,
    /// Marks context tokens already penalised, so a repeated token is penalised once.
    seen: Vec<bool>,
}

impl SampleScratch {
    pub fn new() -> Self {
        Self::default()
    }
}

/// The distribution [`sample_next`] draws from, borrowed from the scratch buffers.
#[derive(Debug, Clone, Copy)]
pub struct Distribution<'a> {
    /// Token ids with non-filtered probability, in the order the draw walks them: by id when no
    /// filter is active, most likely first (ties → lowest id) when top-k or top-p is active.
    kept: &'a [u32],
    /// Unnormalised probabilities indexed by token id (only `kept` ids are meaningful).
    weights: &'a [f64],
    /// Sum of the weights of `kept`.
    total: f64,
}

impl Distribution<'_> {
    /// `(token, probability)` for every token that can be drawn, in draw order. Probabilities
    /// sum to 1 up to rounding; tokens outside the support are not listed.
    pub fn iter(&self) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.kept.iter().map(|&t| (t, self.weights[t as usize] / self.total))
    }

    /// Draws one token by inverse transform: one uniform in [0, total), walked against the f64
    /// cumulative sum.
    pub fn sample(&self, rng: &mut Rng) -> u32 {
        let u = rng.uniform_f64() * self.total;
        let mut cum = 0.0f64;
        // Rounding can leave `u` at or above the last partial sum; the last token with non-zero
        // weight is then the right answer (a zero-weight token must never be drawn).
        let mut last_positive = self.kept[0];
        for &t in self.kept {
            let w = self.weights[t as usize];
            if w > 0.0 {
                cum += w;
                last_positive = t;
                if u < cum {
                    return t;
                }
            }
        }
        last_positive
    }
}

/// `a` before `b` when `a` is larger: a descending order for finite values, where -0.0 and 0.0
/// are equal (as for `>`), so the id tie-break decides between them as it does for argmax.
fn desc<T: PartialOrd>(a: T, b: T) -> Ordering {
    if a > b {
        Ordering::Less
    } else if a < b {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// Index of the first maximum (as `torch.argmax`): ties go to the lowest id.
fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate().skip(1) {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// Applies the repetition penalty, temperature, top-k and top-p to `logits` given the tokens
/// generated so far (`context`), leaving the resulting distribution in `scratch`.
///
/// Errors: invalid `cfg`, empty or non-finite `logits`, a context id outside the vocabulary.
pub fn distribution<'s>(
    logits: &[f32],
    context: &[u32],
    cfg: &SamplerConfig,
    scratch: &'s mut SampleScratch,
) -> Result<Distribution<'s>> {
    cfg.validate()?;
    let v = logits.len();
    if v == 0 {
        return Err(Error::Shape("logits: expected at least one token, got an empty vector".into()));
    }
    if v > u32::MAX as usize {
        return Err(Error::Shape(format!("logits: at most {} tokens are supported, got {v}", u32::MAX)));
    }
    check_finite("logits", logits)?;
    if let Some((i, &t)) = context.iter().enumerate().find(|&(_, &t)| t as usize >= v) {
        return Err(Error::Range(format!(
            "context: token id {t} at index {i} is outside the vocabulary of {v} logits"
        )));
    }

    let SampleScratch { logits: pen, weights, order, seen } = scratch;
    pen.clear();
    pen.extend_from_slice(logits);
    if cfg.repetition_penalty != 1.0 {
        seen.clear();
        seen.resize(v, false);
        for &t in context {
            let t = t as usize;
            if !seen[t] {
                seen[t] = true;
                let l = pen[t];
                pen[t] = if l > 0.0 { l / cfg.repetition_penalty } else { l * cfg.repetition_penalty };
            }
        }
    }
    weights.clear();
    weights.resize(v, 0.0);
    order.clear();

    let best = argmax(pen);
    if cfg.is_greedy() {
        weights[best] = 1.0;
        order.push(best as u32);
        return Ok(Distribution { kept: &order[..], weights: &weights[..], total: 1.0 });
    }

    // Subtracting the maximum keeps exp() in range; the maximum's weight is exactly 1, so the
    // support always has positive mass however small the temperature.
    let max = pen[best] as f64;
    let temperature = cfg.temperature as f64;
    for (w, &l) in weights.iter_mut().zip(pen.iter()) {
        *w = ((l as f64 - max) / temperature).exp();
    }
    order.extend(0..v as u32);

    // Rank by the penalised logit rather than by weight: weights of very unlikely tokens underflow
    // to equal zeros, logits keep their order. Ties → lowest id, so the result is deterministic.
    let by_rank = |a: &u32, b: &u32| desc(pen[*a as usize], pen[*b as usize]).then(a.cmp(b));
    let mut kept = v;
    if cfg.top_k > 0 && cfg.top_k < v {
        kept = cfg.top_k;
        order.select_nth_unstable_by(kept - 1, by_rank);
        order[..kept].sort_unstable_by(by_rank);
    }
    let mut total: f64 = order[..kept].iter().map(|&t| weights[t as usize]).sum();
    if cfg.top_p < 1.0 {
        if kept == v {
            order.sort_unstable_by(by_rank);
        }
        // Keep a token while the mass of the more likely tokens before it is still below top_p;
        // the first token always qualifies (mass 0 < top_p), so the support is never empty.
        let threshold = cfg.top_p as f64 * total;
        let mut cum = 0.0f64;
        let mut n = 0;
        for &t in &order[..kept] {
            if cum >= threshold {
                break;
            }
            cum += weights[t as usize];
            n += 1;
        }
        kept = n;
        total = cum;
    }
    order.truncate(kept);
    Ok(Distribution { kept: &order[..], weights: &weights[..], total })
}

/// Chooses the next token: [`distribution`] then one draw from `rng` (greedy configurations
/// consume no randomness). Allocates nothing once `scratch` has grown to the vocabulary size.
pub fn sample_next(
    logits: &[f32],
    context: &[u32],
    cfg: &SamplerConfig,
    rng: &mut Rng,
    scratch: &mut SampleScratch,
) -> Result<u32> {
    let dist = distribution(logits, context, cfg, scratch)?;
    if cfg.is_greedy() {
        return Ok(dist.kept[0]);
    }
    Ok(dist.sample(rng))
}

/// Numerically stable log-softmax in f64: `out[i] = l[i] - max - ln Σ exp(l[j] - max)`.
pub fn log_softmax(logits: &[f32], out: &mut [f64]) -> Result<()> {
    if logits.is_empty() {
        return Err(Error::Shape("logits: expected at least one value, got an empty vector".into()));
    }
    check_len("out", out.len(), logits.len())?;
    check_finite("logits", logits)?;
    log_softmax_finite(logits, out);
    Ok(())
}

/// [`log_softmax`] for non-empty, finite logits of the same length as `out`.
fn log_softmax_finite(logits: &[f32], out: &mut [f64]) {
    debug_assert!(!logits.is_empty() && logits.len() == out.len());
    let max = logits[argmax(logits)] as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    // sum ≥ 1 (the maximum contributes exp(0)), so the log is finite and ≥ 0.
    let lse = sum.ln();
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = (l as f64 - max) - lse;
    }
}

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
    /// Checks every field, naming the first bad one and its value.
    pub fn validate(&self) -> Result<()> {
        if self.beams == 0 {
            return Err(Error::Range("beams: expected at least 1, got 0".into()));
        }
        if self.max_tokens == 0 {
            return Err(Error::Range("max_tokens: expected at least 1, got 0".into()));
        }
        if !self.length_penalty.is_finite() {
            return Err(Error::NonFinite(format!(
                "length_penalty: must be finite, got {}",
                self.length_penalty
            )));
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
/// Returns at most `beams` hypotheses `(tokens, score, logprob)`, best score first.
pub fn beam_search<M: StepModel>(
    model: &mut M,
    initial_state: M::State,
    first_logits: &[f32],
    cfg: &BeamConfig,
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

    fn cfg() -> SamplerConfig {
        SamplerConfig::default()
    }

    /// The distribution as a dense vector indexed by token id (0 outside the support).
    fn dense(logits: &[f32], context: &[u32], cfg: &SamplerConfig) -> Vec<f64> {
        let mut scratch = SampleScratch::new();
        let dist = distribution(logits, context, cfg, &mut scratch).unwrap();
        let mut p = vec![0.0; logits.len()];
        for (t, q) in dist.iter() {
            p[t as usize] = q;
        }
        p
    }

    /// Reference softmax written directly from the definition (no max subtraction needed for
    /// the small logits used here).
    fn softmax(values: &[f64]) -> Vec<f64> {
        let sum: f64 = values.iter().map(|v| v.exp()).sum();
        values.iter().map(|v| v.exp() / sum).collect()
    }

    fn assert_close(actual: &[f64], expected: &[f64], tol: f64) {
        assert_eq!(actual.len(), expected.len());
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!((a - e).abs() <= tol, "index {i}: got {a}, expected {e}\n{actual:?}\n{expected:?}");
        }
    }

    #[test]
    fn default_config_is_valid_and_json_fills_defaults() {
        cfg().validate().unwrap();
        let c: SamplerConfig = serde_json::from_str(r#"{"top_k": 5, "temperature": 0.5}"#).unwrap();
        assert_eq!(c, SamplerConfig { top_k: 5, temperature: 0.5, ..cfg() });
        let back: SamplerConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        let unknown = serde_json::from_str::<SamplerConfig>(r#"{"top_q": 0.5}"#).unwrap_err();
        assert!(unknown.to_string().contains("top_q"), "{unknown}");
    }

    #[test]
    fn bad_config_names_field_and_value() {
        let cases: Vec<(SamplerConfig, &str, &str, &str)> = vec![
            (SamplerConfig { temperature: -0.5, ..cfg() }, "temperature", "-0.5", "ERR_RNNKIT_RANGE"),
            (SamplerConfig { temperature: f32::NAN, ..cfg() }, "temperature", "NaN", "ERR_RNNKIT_NON_FINITE"),
            (SamplerConfig { temperature: f32::INFINITY, ..cfg() }, "temperature", "inf", "ERR_RNNKIT_NON_FINITE"),
            (SamplerConfig { top_p: 0.0, ..cfg() }, "top_p", "0", "ERR_RNNKIT_RANGE"),
            (SamplerConfig { top_p: 1.5, ..cfg() }, "top_p", "1.5", "ERR_RNNKIT_RANGE"),
            (SamplerConfig { top_p: f32::NAN, ..cfg() }, "top_p", "NaN", "ERR_RNNKIT_NON_FINITE"),
            (SamplerConfig { repetition_penalty: 0.0, ..cfg() }, "repetition_penalty", "0", "ERR_RNNKIT_RANGE"),
            (SamplerConfig { repetition_penalty: -2.0, ..cfg() }, "repetition_penalty", "-2", "ERR_RNNKIT_RANGE"),
            (
                SamplerConfig { repetition_penalty: f32::NEG_INFINITY, ..cfg() },
                "repetition_penalty",
                "-inf",
                "ERR_RNNKIT_NON_FINITE",
            ),
        ];
        for (c, field, value, code) in cases {
            let err = c.validate().unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with(&format!("{field}:")) && msg.contains(value), "{msg}");
            assert_eq!(err.code(), code, "{msg}");
            // sample_next validates too: a config built in code cannot bypass the checks.
            let mut scratch = SampleScratch::new();
            let err = sample_next(&[0.0, 1.0], &[], &c, &mut Rng::new(0), &mut scratch).unwrap_err();
            assert!(err.to_string().starts_with(&format!("{field}:")));
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let mut s = SampleScratch::new();
        let mut rng = Rng::new(0);
        let err = sample_next(&[0.0, f32::NAN, 1.0], &[], &cfg(), &mut rng, &mut s).unwrap_err();
        assert_eq!(err.code(), "ERR_RNNKIT_NON_FINITE");
        assert!(err.to_string().contains("index 1"), "{err}");
        let greedy = SamplerConfig { greedy: true, ..cfg() };
        let err = sample_next(&[f32::INFINITY, 1.0], &[], &greedy, &mut rng, &mut s).unwrap_err();
        assert_eq!(err.code(), "ERR_RNNKIT_NON_FINITE");
        let err = sample_next(&[], &[], &cfg(), &mut rng, &mut s).unwrap_err();
        assert_eq!(err.code(), "ERR_RNNKIT_SHAPE");
        let err = sample_next(&[0.0, 1.0], &[1, 2], &cfg(), &mut rng, &mut s).unwrap_err();
        assert!(err.to_string().contains("token id 2 at index 1"), "{err}");
    }

    #[test]
    fn greedy_is_first_argmax() {
        let mut s = SampleScratch::new();
        let mut rng = Rng::new(0);
        let logits = [0.5, 2.0, -1.0, 2.0, 1.9];
        for c in [SamplerConfig { greedy: true, ..cfg() }, SamplerConfig { temperature: 0.0, ..cfg() }] {
            assert_eq!(sample_next(&logits, &[], &c, &mut rng, &mut s).unwrap(), 1);
            // -0.0 == 0.0: the lower id wins, as with `>` in torch.argmax.
            assert_eq!(sample_next(&[-1.0, -0.0, 0.0], &[], &c, &mut rng, &mut s).unwrap(), 1);
            assert_eq!(sample_next(&[0.0, -0.0], &[], &c, &mut rng, &mut s).unwrap(), 0);
        }
        // Greedy consumes no randomness.
        let before = rng.state(0);
        sample_next(&logits, &[], &SamplerConfig { greedy: true, ..cfg() }, &mut rng, &mut s).unwrap();
        assert_eq!(rng.state(0), before);
    }

    #[test]
    fn repetition_penalty_divides_positive_and_multiplies_negative_logits_once() {
        let logits = [2.0f32, -1.0, 0.5, 1.0, 0.0];
        // Token 1 appears twice: it must be penalised once, not squared.
        let context = [0, 1, 1, 4];
        let c = SamplerConfig { repetition_penalty: 2.0, ..cfg() };
        let expected = softmax(&[1.0, -2.0, 0.5, 1.0, 0.0]);
        assert_close(&dense(&logits, &context, &c), &expected, 1e-12);
        // A penalty below 1 rewards repetition with the same rule.
        let c = SamplerConfig { repetition_penalty: 0.5, ..cfg() };
        let expected = softmax(&[4.0, -0.5, 0.5, 1.0, 0.0]);
        assert_close(&dense(&logits, &context, &c), &expected, 1e-12);
        // Penalty then temperature (HF order): logits 1.0 / 0.5 = 2.0, etc.
        let c = SamplerConfig { repetition_penalty: 2.0, temperature: 0.5, ..cfg() };
        let expected = softmax(&[2.0, -4.0, 1.0, 2.0, 0.0]);
        assert_close(&dense(&logits, &context, &c), &expected, 1e-12);
        // Greedy sees the penalised logits: with penalty 2 token 0 (2.0 → 1.0) ties token 3 and
        // wins as the lower id; with penalty 4 (2.0 → 0.5) token 3 is the maximum.
        let c = SamplerConfig { repetition_penalty: 2.0, greedy: true, ..cfg() };
        assert_eq!(dense(&logits, &context, &c), vec![1.0, 0.0, 0.0, 0.0, 0.0]);
        let c = SamplerConfig { repetition_penalty: 4.0, greedy: true, ..cfg() };
        assert_eq!(dense(&logits, &context, &c), vec![0.0, 0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn top_k_keeps_the_k_largest_with_lowest_id_ties() {
        let logits = [0.1f32, 3.0, 1.0, 3.0, 1.0, -2.0];
        let c = SamplerConfig { top_k: 3, ..cfg() };
        let p = dense(&logits, &[], &c);
        // The third place is a tie between ids 2 and 4: the lower id is kept.
        let kept = softmax(&[3.0, 1.0, 3.0]);
        assert_close(&p, &[0.0, kept[0], kept[1], kept[2], 0.0, 0.0], 1e-12);
        // top_k ≥ vocabulary size is no filter.
        let all = dense(&logits, &[], &SamplerConfig { top_k: 6, ..cfg() });
        assert_close(&all, &softmax(&logits.map(f64::from)), 1e-12);
        // Support order is most likely first.
        let mut s = SampleScratch::new();
        let order: Vec<u32> = distribution(&logits, &[], &c, &mut s).unwrap().iter().map(|x| x.0).collect();
        assert_eq!(order, vec![1, 3, 2]);
    }

    #[test]
    fn top_p_keeps_the_smallest_prefix_reaching_p() {
        // Probabilities 0.5, 0.25, 0.125, 0.125 exactly (logits are logs of them).
        let logits = [0.5f64, 0.25, 0.125, 0.125].map(|p| p.ln() as f32);
        let support = |top_p: f32| {
            let p = dense(&logits, &[], &SamplerConfig { top_p, ..cfg() });
            p.iter().map(|&q| q > 0.0).collect::<Vec<_>>()
        };
        assert_eq!(support(0.4), vec![true, false, false, false]);
        assert_eq!(support(0.6), vec![true, true, false, false]);
        assert_eq!(support(0.8), vec![true, true, true, false]);
        assert_eq!(support(1.0), vec![true, true, true, true]);
        // Either side of the cumulative masses 0.5 and 0.75: the cut is exactly "mass before
        // the token < top_p".
        assert_eq!(support(0.49), vec![true, false, false, false]);
        assert_eq!(support(0.51), vec![true, true, false, false]);
        assert_eq!(support(0.74), vec![true, true, false, false]);
        assert_eq!(support(0.76), vec![true, true, true, false]);
        // At least one token survives however small p is.
        assert_eq!(support(1e-9), vec![true, false, false, false]);
        let p = dense(&logits, &[], &SamplerConfig { top_p: 0.6, ..cfg() });
        assert_close(&p, &[2.0 / 3.0, 1.0 / 3.0, 0.0, 0.0], 1e-6);
    }

    #[test]
    fn top_p_applies_to_the_renormalised_top_k() {
        // Probabilities 0.2, 0.2, then 0.1 six times. top-k = 3 keeps ids 0, 1, 2 (lowest id
        // among the tied 0.1s) and renormalises them to 0.4, 0.4, 0.2; a 0.65 nucleus of that
        // is ids 0 and 1. Measured against the unrenormalised mass (0.5 in total) the nucleus
        // would never reach 0.65 and would keep all three.
        let logits = [0.2f64, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1].map(|p| p.ln() as f32);
        let c = SamplerConfig { top_k: 3, top_p: 0.65, ..cfg() };
        let p = dense(&logits, &[], &c);
        assert_close(&p, &[0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 1e-6);
        // Without top-k the same nucleus needs 0.2 + 0.2 + 0.1 + 0.1 + 0.1 = 0.7 ≥ 0.65.
        let full = dense(&logits, &[], &SamplerConfig { top_p: 0.65, ..cfg() });
        assert_eq!(full.iter().map(|&q| q > 0.0).collect::<Vec<_>>(), [true, true, true, true, true, false, false, false]);
    }

    #[test]
    fn log_softmax_is_stable_and_normalised() {
        // exp(3e38) overflows anything; with the maximum subtracted the two equal maxima each
        // get ln(1/2) and the minimum gets its exact distance below them.
        let (hi, lo) = (3.0e38f32, -3.0e38f32);
        let mut out = [0.0f64; 3];
        log_softmax(&[hi, lo, hi], &mut out).unwrap();
        let ln2 = 2.0f64.ln();
        assert_eq!(out, [-ln2, (lo as f64 - hi as f64) - ln2, -ln2]);
        let logits = [0.3f32, -1.2, 2.5, 0.0];
        let mut out = [0.0f64; 4];
        log_softmax(&logits, &mut out).unwrap();
        let naive: Vec<f64> = softmax(&logits.map(f64::from)).iter().map(|p| p.ln()).collect();
        assert_close(&out, &naive, 1e-12);
        assert_eq!(log_softmax(&logits, &mut [0.0; 3]).unwrap_err().code(), "ERR_RNNKIT_SHAPE");
        assert_eq!(log_softmax(&[f32::NAN], &mut [0.0]).unwrap_err().code(), "ERR_RNNKIT_NON_FINITE");
    }

    #[test]
    fn beam_config_errors_name_the_field() {
        let ok = BeamConfig { beams: 2, max_tokens: 3, length_penalty: 0.6, stop_tokens: vec![] };
        ok.validate().unwrap();
        for (bad, field) in [
            (BeamConfig { beams: 0, ..ok.clone() }, "beams"),
            (BeamConfig { max_tokens: 0, ..ok.clone() }, "max_tokens"),
            (BeamConfig { length_penalty: f64::NAN, ..ok.clone() }, "length_penalty"),
        ] {
            assert!(bad.validate().unwrap_err().to_string().starts_with(&format!("{field}:")));
        }
        // GNMT: ((5 + 7) / 6)^0.6 = 2^0.6.
        assert!((ok.score(-1.0, 7) + 2.0f64.powf(-0.6)).abs() < 1e-15);
    }

}
