//! Running a trained sequence-to-sequence network on many sources: decoding (greedy or beam,
//! rows sorted by length and batched so that padding costs little, outputs in input order),
//! the attention of a decode, and evaluation on pairs — the teacher-forced loss and token
//! accuracy, and the exact match of the decoded outputs. The one place these are computed: the
//! bindings and the CLI present them.

use crate::beam::BeamConfig;
use crate::error::{Error, Result};
use crate::loss::LossSum;
use crate::model::seq2seq::Seq2Seq;
use crate::pairs::PairSet;
use std::sync::atomic::{AtomicBool, Ordering};

/// Sources per decoding batch: greedy decoding runs them as one batch of rows.
pub const DECODE_BATCH: usize = 256;

/// Pairs per teacher-forced evaluation batch.
const EVAL_BATCH: usize = 64;

/// Without `max_length`, an output may have `DEFAULT_RATIO · source length + DEFAULT_EXTRA`
/// tokens: the digits of a number written out in English take about ten characters each.
pub const DEFAULT_RATIO: usize = 12;
pub const DEFAULT_EXTRA: usize = 16;

/// How outputs are decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeOptions {
    /// 1: greedy; more: beam search with this many hypotheses per source.
    pub beams: usize,
    /// GNMT length penalty α of beam search (0: none).
    pub length_penalty: f64,
    /// The most tokens of an output (eos not counted); None: relative to the source
    /// ([`DEFAULT_RATIO`], [`DEFAULT_EXTRA`]).
    pub max_length: Option<usize>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { beams: 1, length_penalty: 0.6, max_length: None }
    }
}

impl DecodeOptions {
    pub fn validate(&self) -> Result<()> {
        if self.beams == 0 || self.beams > 64 {
            return Err(Error::Range(format!("beams: expected an integer in 1..=64, got {}", self.beams)));
        }
        if !(self.length_penalty.is_finite() && self.length_penalty >= 0.0) {
            return Err(Error::Range(format!(
                "lengthPenalty: expected a finite number >= 0, got {}",
                self.length_penalty
            )));
        }
        if self.max_length == Some(0) {
            return Err(Error::Range("maxLength: expected an integer >= 1, got 0".into()));
        }
        Ok(())
    }

    /// The most output tokens for a source of `len` tokens.
    pub fn limit(&self, len: usize) -> usize {
        self.max_length.unwrap_or(DEFAULT_RATIO * len + DEFAULT_EXTRA)
    }
}

/// Decodes every source (ids of the source vocabulary, none empty); the outputs without `eos`,
/// in input order. `cancel` is checked between batches and, with beams, before every step.
pub fn decode(net: &Seq2Seq, sources: &[Vec<i32>], opts: &DecodeOptions, cancel: &AtomicBool) -> Result<Vec<Vec<u32>>> {
    opts.validate()?;
    let set = PairSet { source: sources.to_vec(), target: vec![Vec::new(); sources.len()] };
    set.validate(net.config.source_vocab, net.config.target_vocab).map_err(|e| within("sources", e))?;
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&r| sources[r].len());
    let mut out = vec![Vec::new(); sources.len()];
    let limit = |len: usize| -> usize { opts.limit(len) };
    let beam =
        BeamConfig { beams: opts.beams, max_tokens: 1, length_penalty: opts.length_penalty, stop_tokens: vec![] };
    for chunk in order.chunks(DECODE_BATCH) {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Aborted);
        }
        let b = set.gather(chunk);
        let decoded = if opts.beams == 1 {
            net.greedy(&b.source, b.rows, b.source_steps, &b.source_lengths, &limit)?
        } else {
            net.beam(&b.source, b.source_steps, &b.source_lengths, &limit, &beam, cancel)?
        };
        for (&r, o) in chunk.iter().zip(decoded) {
            out[r] = o;
        }
    }
    Ok(out)
}

/// The attention weights of decoding `source` into `output` (a decode's result, eos not
/// included): `[output.len() + 1, source.len()]` row-major, one row per output token and the
/// final eos, each a distribution over the source tokens.
pub fn attention(net: &Seq2Seq, source: &[i32], output: &[u32]) -> Result<Vec<f32>> {
    let set = PairSet { source: vec![source.to_vec()], target: vec![output.iter().map(|&t| t as i32).collect()] };
    set.validate(net.config.source_vocab, net.config.target_vocab).map_err(|e| within("pair", e))?;
    Ok(net.attention_weights(&set.gather(&[0]))?.remove(0))
}

/// The teacher-forced figures of a pair set: the summed cross-entropy, and how many target
/// positions (each target's tokens and its eos) the most likely token predicts.
#[derive(Debug, Clone, Copy, Default)]
pub struct TeacherForced {
    pub loss: LossSum,
    pub correct: usize,
    pub count: usize,
}

/// [`TeacherForced`] of `pairs`, in batches of rows of similar length; `cancel`, when given, is
/// checked between batches ([`Error::Aborted`] once set).
pub fn teacher_forced(net: &Seq2Seq, pairs: &PairSet, cancel: Option<&AtomicBool>) -> Result<TeacherForced> {
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by_key(|&r| (pairs.source[r].len(), pairs.target[r].len()));
    let v = net.config.target_vocab;
    let eos = net.config.eos as i32;
    let mut out = TeacherForced::default();
    for chunk in order.chunks(EVAL_BATCH) {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Aborted);
        }
        let b = pairs.gather(chunk);
        let (logits, loss) = net.logits_and_loss(&b)?;
        out.loss.add(loss);
        for (i, &r) in chunk.iter().enumerate() {
            let target = &pairs.target[r];
            for t in 0..=target.len() {
                let row = &logits[(t * b.rows + i) * v..(t * b.rows + i + 1) * v];
                let best = row.iter().enumerate().fold(0, |best, (j, &x)| if x > row[best] { j } else { best });
                let want = if t < target.len() { target[t] } else { eos };
                out.correct += (best as i32 == want) as usize;
                out.count += 1;
            }
        }
    }
    Ok(out)
}

/// The figures of [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seq2SeqEvaluation {
    /// Mean teacher-forced cross-entropy per target token (eos included).
    pub loss: f64,
    /// Teacher-forced: the share of target tokens (eos included) the most likely token predicts.
    pub token_accuracy: f64,
    /// The share of pairs whose decoded output is the target exactly.
    pub exact_match: f64,
    /// Pairs, and target tokens (eos included).
    pub pairs: usize,
    pub tokens: usize,
}

/// Evaluates on `pairs`: teacher-forced loss and token accuracy, then the exact match of the
/// outputs decoded with `opts`.
pub fn evaluate(
    net: &Seq2Seq,
    pairs: &PairSet,
    opts: &DecodeOptions,
    cancel: &AtomicBool,
) -> Result<Seq2SeqEvaluation> {
    if pairs.is_empty() {
        return Err(Error::Range("data: expected at least one pair".into()));
    }
    pairs.validate(net.config.source_vocab, net.config.target_vocab).map_err(|e| within("data", e))?;
    let tf = teacher_forced(net, pairs, Some(cancel))?;
    let outputs = decode(net, &pairs.source, opts, cancel)?;
    let exact =
        outputs.iter().zip(&pairs.target).filter(|(o, t)| o.iter().map(|&x| x as i32).eq(t.iter().copied())).count();
    Ok(Seq2SeqEvaluation {
        loss: tf.loss.mean(),
        token_accuracy: tf.correct as f64 / tf.count as f64,
        exact_match: exact as f64 / pairs.len() as f64,
        pairs: pairs.len(),
        tokens: tf.count,
    })
}

fn within(name: &str, e: Error) -> Error {
    match e {
        Error::Range(m) => Error::Range(format!("{name}: {m}")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CellKind;
    use crate::layer::attention::AttentionKind;
    use crate::model::seq2seq::Seq2SeqConfig;
    use crate::model::seq2seq_train::Seq2SeqTrainer;
    use crate::rng::Rng;
    use crate::train::{StopReason, TrainEvent, TrainOptions};

    fn reverse_task(n: usize, seed: u64) -> PairSet {
        let mut rng = Rng::new(seed);
        let mut s = PairSet::default();
        for _ in 0..n {
            let len = 2 + rng.below(4);
            let src: Vec<i32> = (0..len).map(|_| rng.below(6) as i32).collect();
            s.target.push(src.iter().rev().map(|&x| x + 2).collect());
            s.source.push(src);
        }
        s
    }

    fn net(attention: AttentionKind) -> Seq2Seq {
        let cfg = Seq2SeqConfig {
            cell: CellKind::Gru,
            source_vocab: 6,
            target_vocab: 8,
            embed_dim: 16,
            hidden_size: 32,
            num_layers: 1,
            bidirectional: true,
            attention,
            attention_size: 16,
            bos: 0,
            eos: 1,
        };
        Seq2Seq::init(cfg, &mut Rng::new(5)).unwrap()
    }

    fn options(v: serde_json::Value) -> TrainOptions {
        let mut base =
            serde_json::json!({"batch_size": 32, "optimizer": {"type": "adam", "lr": 0.01}, "clip_norm": 5.0});
        base.as_object_mut().unwrap().extend(v.as_object().unwrap().clone());
        TrainOptions::from_json(&base).unwrap()
    }

    #[test]
    fn fit_learns_reversal_and_evaluate_measures_it() {
        let (train, valid) = (reverse_task(1500, 1), reverse_task(100, 2));
        let mut m = net(AttentionKind::General);
        let before = evaluate(&m, &valid, &DecodeOptions::default(), &AtomicBool::new(false)).unwrap();
        let mut t = Seq2SeqTrainer::new(&m, options(serde_json::json!({"epochs": 8, "log_every": 10}))).unwrap();
        let mut events = Vec::new();
        let mut on_event = |e: TrainEvent| events.push(e);
        let mut checkpoint = |_: &Seq2Seq, _: &Seq2SeqTrainer| -> Result<String> { Ok("unused".into()) };
        let h = t.fit(&mut m, &train, Some(&valid), &AtomicBool::new(false), &mut on_event, &mut checkpoint).unwrap();
        assert_eq!(h.stop_reason, StopReason::Completed);
        assert_eq!((t.position.epoch, t.position.step), (8, 8 * 1500u64.div_ceil(32)));
        assert_eq!(h.val_loss.len(), 8, "one validation per epoch");
        assert!(events.iter().any(|e| matches!(e, TrainEvent::Step { .. })));
        let after = evaluate(&m, &valid, &DecodeOptions::default(), &AtomicBool::new(false)).unwrap();
        assert!(after.loss < before.loss / 4.0, "loss {} → {}", before.loss, after.loss);
        assert!(after.exact_match >= 0.9, "exact match {}", after.exact_match);
        assert!(after.token_accuracy >= 0.95 && after.token_accuracy > before.token_accuracy + 0.5);
        assert_eq!((after.pairs, after.tokens), (100, valid.target.iter().map(|t| t.len() + 1).sum()));
        // Outputs come back in input order whatever the length sort did.
        let out = decode(&m, &valid.source, &DecodeOptions::default(), &AtomicBool::new(false)).unwrap();
        let one = decode(&m, &valid.source[7..8], &DecodeOptions::default(), &AtomicBool::new(false)).unwrap();
        assert_eq!(out[7], one[0]);
        let beam = DecodeOptions { beams: 3, ..DecodeOptions::default() };
        let beamed = evaluate(&m, &valid, &beam, &AtomicBool::new(false)).unwrap();
        assert!(beamed.exact_match >= after.exact_match - 0.05);
        let w = attention(&m, &valid.source[0], &out[0]).unwrap();
        assert_eq!(w.len(), (out[0].len() + 1) * valid.source[0].len());
        for row in w.chunks(valid.source[0].len()) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn limits_cancel_early_stopping_and_refusals() {
        let (train, valid) = (reverse_task(200, 3), reverse_task(20, 4));
        let mut m = net(AttentionKind::Additive);
        let mut t = Seq2SeqTrainer::new(&m, options(serde_json::json!({"max_steps": 3}))).unwrap();
        let mut sink = |_: TrainEvent| {};
        let mut written = 0;
        let mut checkpoint = |_: &Seq2Seq, _: &Seq2SeqTrainer| -> Result<String> {
            written += 1;
            Ok("c".into())
        };
        let h = t.fit(&mut m, &train, None, &AtomicBool::new(false), &mut sink, &mut checkpoint).unwrap();
        assert_eq!((h.stop_reason, h.steps_done, t.position.step), (StopReason::MaxSteps, 3, 3));
        // A second call continues the step counter; cancel stops before any step.
        let mut checkpoint = |_: &Seq2Seq, _: &Seq2SeqTrainer| -> Result<String> { Ok("c".into()) };
        let h = t.fit(&mut m, &train, None, &AtomicBool::new(true), &mut sink, &mut checkpoint).unwrap();
        assert_eq!((h.stop_reason, h.steps_done, t.position.step), (StopReason::Aborted, 0, 3));
        // Early stopping, patience 1, an impossible margin: stops at the second validation.
        let es = serde_json::json!({"epochs": 50, "validate_every": 2, "checkpoint_every": 4, "early_stopping": {"patience": 1, "min_delta": 1e9}});
        t.set_options(&m, options(es)).unwrap();
        let mut checkpoint = |_: &Seq2Seq, _: &Seq2SeqTrainer| -> Result<String> {
            written += 1;
            Ok("c".into())
        };
        let h = t.fit(&mut m, &train, Some(&valid), &AtomicBool::new(false), &mut sink, &mut checkpoint).unwrap();
        assert_eq!((h.stop_reason, h.steps_done, h.val_loss.len()), (StopReason::EarlyStopping, 3, 2));
        assert_eq!(h.best_step, Some(4), "steps 4 and 6 validated, the first is the best");
        assert_eq!(written, 1, "checkpoint_every: 4 wrote once in four steps");
        // Early stopping without validation data, tbptt and bad decode options are refused.
        let mut checkpoint = |_: &Seq2Seq, _: &Seq2SeqTrainer| -> Result<String> { Ok("c".into()) };
        let err = t.fit(&mut m, &train, None, &AtomicBool::new(false), &mut sink, &mut checkpoint).unwrap_err();
        assert!(err.to_string().contains("earlyStopping"), "{err}");
        assert!(Seq2SeqTrainer::new(&m, options(serde_json::json!({"tbptt": true}))).is_err());
        let bad = DecodeOptions { beams: 0, ..DecodeOptions::default() };
        assert!(decode(&m, &valid.source, &bad, &AtomicBool::new(false)).unwrap_err().to_string().contains("beams"));
        let err = decode(&m, &[vec![9]], &DecodeOptions::default(), &AtomicBool::new(false)).unwrap_err();
        assert!(err.to_string().contains("sources"), "{err}");
        assert!(matches!(
            decode(&m, &valid.source, &DecodeOptions::default(), &AtomicBool::new(true)),
            Err(Error::Aborted)
        ));
    }
}
