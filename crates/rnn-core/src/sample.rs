//! Token sampling for text generation: greedy, temperature, top-k, top-p (nucleus), repetition
//! penalty, presence and frequency penalties (OpenAI's); a stable log-softmax (shared with beam search, `beam.rs`). Stop strings are matched
//! on decoded text by the TypeScript layer (`src/generate.ts`), which owns tokenizers.
//!
//! Nothing here knows about the network: [`sample_next`] only sees a logit vector and the tokens
//! generated so far.
//!
//! Processing order of [`sample_next`] (the order of Hugging Face `generate` logits processors):
//! repetition penalty → presence/frequency penalties → temperature → top-k → top-p → draw. Probabilities are computed in f64 so
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
    /// Always take the most likely token (after the penalties); ties → lowest id.
    pub greedy: bool,
    /// OpenAI's presence penalty, in [-2, 2]: subtracted once from the logit of every token id
    /// present in the context. 0 = off.
    pub presence_penalty: f32,
    /// OpenAI's frequency penalty, in [-2, 2]: subtracted from a token's logit once per
    /// occurrence in the context. 0 = off.
    pub frequency_penalty: f32,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            greedy: false,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
        }
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
        for (name, v) in [("presence_penalty", self.presence_penalty), ("frequency_penalty", self.frequency_penalty)] {
            finite(name, v)?;
            if !(-2.0..=2.0).contains(&v) {
                return Err(Error::Range(format!("{name}: expected a value in [-2, 2] (0 = off), got {v}")));
            }
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
    /// Occurrences of each token id in the context (presence/frequency penalties).
    counts: Vec<u32>,
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
pub(crate) fn desc<T: PartialOrd>(a: T, b: T) -> Ordering {
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

/// Applies the repetition penalty, the presence/frequency penalties, temperature, top-k and top-p
/// to `logits` given the context (prompt and generated tokens, `context`), leaving the resulting
/// distribution in `scratch`.
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

    let SampleScratch { logits: pen, weights, order, seen, counts } = scratch;
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
    if cfg.presence_penalty != 0.0 || cfg.frequency_penalty != 0.0 {
        // OpenAI's definition: logit[t] -= frequency · count[t] + presence · (count[t] > 0).
        counts.clear();
        counts.resize(v, 0);
        for &t in context {
            counts[t as usize] += 1;
        }
        for (l, &c) in pen.iter_mut().zip(counts.iter()) {
            if c > 0 {
                *l -= cfg.frequency_penalty * c as f32 + cfg.presence_penalty;
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

/// Buffers reused by [`append_logprobs`].
#[derive(Debug, Default, Clone)]
pub struct LogprobScratch {
    /// `[V]` log-probabilities of one position.
    logprobs: Vec<f64>,
    /// Token ids, partially ordered most likely first.
    order: Vec<u32>,
}

/// The model's log-probabilities at one position, as OpenAI's `logprobs` report them: the
/// log-softmax of the raw logits (the model's own distribution, before the sampler's penalties,
/// temperature and filters). Appends `[logprob(token), id₁, lp₁, …, id_top, lp_top]` to `out`,
/// the `top` most likely ids first (ties → lowest id; `top` is capped at the vocabulary size).
/// Ids travel as f64, exact below 2^53.
pub fn append_logprobs(
    logits: &[f32],
    token: u32,
    top: usize,
    scratch: &mut LogprobScratch,
    out: &mut Vec<f64>,
) -> Result<()> {
    let v = logits.len();
    if token as usize >= v {
        return Err(Error::Range(format!("token: id {token} is outside the vocabulary of {v} logits")));
    }
    let LogprobScratch { logprobs, order } = scratch;
    logprobs.clear();
    logprobs.resize(v, 0.0);
    log_softmax(logits, logprobs)?;
    out.push(logprobs[token as usize]);
    let top = top.min(v);
    if top > 0 {
        order.clear();
        order.extend(0..v as u32);
        let by_rank = |a: &u32, b: &u32| desc(logprobs[*a as usize], logprobs[*b as usize]).then(a.cmp(b));
        if top < v {
            order.select_nth_unstable_by(top - 1, by_rank);
        }
        order[..top].sort_unstable_by(by_rank);
        for &t in &order[..top] {
            out.push(t as f64);
            out.push(logprobs[t as usize]);
        }
    }
    Ok(())
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
pub(crate) fn log_softmax_finite(logits: &[f32], out: &mut [f64]) {
    debug_assert!(!logits.is_empty() && logits.len() == out.len());
    let max = logits[argmax(logits)] as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    // sum ≥ 1 (the maximum contributes exp(0)), so the log is finite and ≥ 0.
    let lse = sum.ln();
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = (l as f64 - max) - lse;
    }
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
    fn logprobs_are_the_raw_log_softmax_with_the_top_ids_first() {
        let logits = [0.5f32, 2.0, -1.0, 2.0, 1.0];
        let expected: Vec<f64> = softmax(&logits.map(|l| l as f64)).iter().map(|p| p.ln()).collect();
        let mut scratch = LogprobScratch::default();
        let mut out = Vec::new();
        append_logprobs(&logits, 2, 3, &mut scratch, &mut out).unwrap();
        // The chosen token, then ids 1 and 3 (a tie: lower id first), then 4.
        let want = [expected[2], 1.0, expected[1], 3.0, expected[3], 4.0, expected[4]];
        assert_close(&out, &want, 1e-12);
        // top 0 appends the chosen token's only; a top beyond V lists all V.
        out.clear();
        append_logprobs(&logits, 0, 0, &mut scratch, &mut out).unwrap();
        assert_close(&out, &[expected[0]], 1e-12);
        out.clear();
        append_logprobs(&logits, 0, 9, &mut scratch, &mut out).unwrap();
        assert_eq!(out.len(), 1 + 2 * 5);
        assert!(append_logprobs(&logits, 5, 1, &mut scratch, &mut out).is_err());
        assert!(append_logprobs(&[f32::NAN, 0.0], 0, 1, &mut scratch, &mut out).is_err());
    }

    #[test]
    fn presence_and_frequency_penalties_follow_openai() {
        let logits = [2.0f32, -1.0, 0.5, 1.0, 0.0];
        // Token 1 twice, tokens 0 and 4 once, tokens 2 and 3 never.
        let context = [0, 1, 1, 4];
        let c = SamplerConfig { presence_penalty: 0.5, frequency_penalty: 0.25, ..cfg() };
        let expected = softmax(&[2.0 - 0.75, -1.0 - 1.0, 0.5, 1.0, -0.75]);
        assert_close(&dense(&logits, &context, &c), &expected, 1e-6);
        // Negative values reward repetition; after the repetition penalty (2.0 → 1.0 for token 0).
        let c = SamplerConfig { presence_penalty: -1.0, repetition_penalty: 2.0, ..cfg() };
        let expected = softmax(&[2.0, -1.0, 0.5, 1.0, 1.0]);
        assert_close(&dense(&logits, &context, &c), &expected, 1e-6);
        // Greedy sees the penalised logits: token 0 (2.0 - 1.5) falls below token 3.
        let c = SamplerConfig { frequency_penalty: 1.5, greedy: true, ..cfg() };
        assert_eq!(dense(&logits, &context, &c), vec![0.0, 0.0, 0.0, 1.0, 0.0]);
        for (bad, field) in [
            (SamplerConfig { presence_penalty: 2.5, ..cfg() }, "presence_penalty"),
            (SamplerConfig { frequency_penalty: -3.0, ..cfg() }, "frequency_penalty"),
            (SamplerConfig { frequency_penalty: f32::NAN, ..cfg() }, "frequency_penalty"),
        ] {
            assert!(bad.validate().unwrap_err().to_string().starts_with(field));
        }
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
        assert_eq!(
            full.iter().map(|&q| q > 0.0).collect::<Vec<_>>(),
            [true, true, true, true, true, false, false, false]
        );
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
}
