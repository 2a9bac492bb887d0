//! Central finite differences of the whole `Network` forward + `network_loss` (the mean loss a
//! training step differentiates), for every task and shape the PyTorch parity fixtures do not
//! cover: classification with last/mean/max pooling (uni- and bidirectional, variable lengths,
//! class weights), tagging (bidirectional, per-step, masked), regression per step and many-to-one
//! on dense inputs, a language model with dropout (the same mask redrawn from a fixed seed for
//! every evaluation) and the Elman skip term, speech (CTC over frame-stacked dense frames, a
//! bidirectional 2-layer GRU, variable frame and transcript lengths). Every parameter of these small models is perturbed
//! (tensors above `MAX_PER_TENSOR` values would be sampled).
//!
//! Numerics: the forward runs in f32, the loss is a mean summed in f64. With EPS = 5e-3 the
//! truncation error O(EPS²·L''') stays near 1e-5, and the f32 rounding of the loss (~1e-7
//! relative on a loss of ~1) divided by 2·EPS is ~1e-5 too; the tolerance below is ten times
//! that, while a wrong formula errs by the size of the gradient (see the last two tests).

use rnn_core::alphabet::Alphabet;
use rnn_core::batch::{Batch, BatchInput, BatchTargets, IGNORE_INDEX};
use rnn_core::config::SpeechConfig;
use rnn_core::config::{CellKind, InputKind, ModelConfig, Pooling, Task};
use rnn_core::init::{init_params, InitConfig};
use rnn_core::model::network::{ForwardCache, Network};
use rnn_core::model::objective::{batch_loss, network_loss};
use rnn_core::params::Params;
use rnn_core::rng::Rng;

const EPS: f32 = 5e-3;
/// Pass when `|numeric − analytic| ≤ ABS_TOL + REL_TOL · max(|numeric|, |analytic|)`.
const ABS_TOL: f64 = 2e-4;
const REL_TOL: f64 = 1e-2;
/// A perturbation whose one-sided differences disagree by more than this (relative to EPS)
/// crossed a kink of max pooling (an argmax changed): the loss is not differentiable there at
/// this scale, so that value is skipped; at most `MAX_SKIPPED` of the values may be.
const KINK_GAP: f64 = 1e-2;
const MAX_SKIPPED: f64 = 0.1;
/// Values checked per tensor at most (a random subset beyond).
const MAX_PER_TENSOR: usize = 200;

const V: usize = 7; // vocabulary (token inputs)
const E: usize = 3; // embedding width
const H: usize = 4; // hidden size
const T: usize = 5; // padded steps
const B: usize = 4; // rows
const LENGTHS: [usize; B] = [5, 3, 1, 4];

/// One network, one batch and how its loss is formed.
struct Case {
    name: String,
    net: Network,
    batch: Batch,
    class_weights: Option<Vec<f32>>,
    /// Dropout seed: every evaluation draws the same masks from `Rng::new(seed)`.
    dropout_seed: Option<u64>,
}

impl Case {
    fn new(name: &str, cfg: ModelConfig, batch: Batch, class_weights: Option<Vec<f32>>, seed: u64) -> Case {
        cfg.validate().expect("test config");
        let dropout_seed = (cfg.dropout > 0.0).then_some(seed ^ 0xD0);
        let params = init_params(&cfg, &InitConfig::default(), &mut Rng::new(seed)).unwrap();
        let net = Network::from_params(cfg, params).unwrap();
        Case { name: name.into(), net, batch, class_weights, dropout_seed }
    }

    /// The mean loss of the batch at the current parameters.
    fn loss(&self) -> f64 {
        let mut cache = ForwardCache::default();
        let mut rng = self.dropout_seed.map(Rng::new);
        let (out, _) = self.net.forward(&self.batch, None, rng.as_mut(), &mut cache).unwrap();
        network_loss(&self.net, &out, &self.batch, self.class_weights.as_deref(), None).unwrap().sum.mean()
    }

    /// The hand-derived gradient of the mean loss w.r.t. every parameter, with the loss weighted
    /// by `class_weights` (normally the case's own).
    fn analytic(&self, class_weights: Option<&[f32]>) -> Params {
        let mut cache = ForwardCache::default();
        let mut rng = self.dropout_seed.map(Rng::new);
        let (out, _) = self.net.forward(&self.batch, None, rng.as_mut(), &mut cache).unwrap();
        let mut dout = vec![0.0; out.len()];
        network_loss(&self.net, &out, &self.batch, class_weights, Some(&mut dout)).unwrap();
        let mut grads = Params::zeros(self.net.params().layout.clone());
        self.net.backward(&mut cache, &dout, None, &mut grads).unwrap();
        grads
    }
}

/// Compares `analytic` with central differences of `case.loss()`; Err lists the mismatches.
fn check(case: &mut Case, analytic: &Params) -> Result<usize, String> {
    let mut pick = Rng::new(99);
    let f0 = case.loss();
    let (mut checked, mut skipped, mut failures) = (0usize, 0usize, Vec::new());
    for spec in case.net.params().layout.specs().to_vec() {
        let mut idx: Vec<usize> = (0..spec.len).collect();
        if spec.len > MAX_PER_TENSOR {
            pick.shuffle(&mut idx);
            idx.truncate(MAX_PER_TENSOR);
        }
        for k in idx {
            let at = spec.offset + k;
            let orig = case.net.params().data[at];
            case.net.params_mut().data[at] = orig + EPS;
            let fp = case.loss();
            case.net.params_mut().data[at] = orig - EPS;
            let fm = case.loss();
            case.net.params_mut().data[at] = orig;
            if ((fp - f0) - (f0 - fm)).abs() / EPS as f64 > KINK_GAP {
                skipped += 1;
                continue;
            }
            checked += 1;
            let num = (fp - fm) / (2.0 * EPS as f64);
            let ana = analytic.data[at] as f64;
            if (num - ana).abs() > ABS_TOL + REL_TOL * num.abs().max(ana.abs()) {
                failures.push(format!("{}[{k}]: numeric {num:.6e}, analytic {ana:.6e}", spec.name));
            }
        }
    }
    if skipped as f64 > MAX_SKIPPED * (checked + skipped) as f64 {
        failures.push(format!("{skipped} of {} values sit on a kink: too few checked", checked + skipped));
    }
    if failures.is_empty() {
        Ok(checked)
    } else {
        Err(format!("{}: {} mismatches, first: {:?}", case.name, failures.len(), &failures[..failures.len().min(5)]))
    }
}

fn config(task: Task, cell: CellKind, input: InputKind, output: usize) -> ModelConfig {
    ModelConfig {
        task,
        cell,
        input,
        hidden_size: H,
        num_layers: 1,
        bidirectional: false,
        skip: false,
        dropout: 0.0,
        output_size: output,
        pooling: Pooling::Last,
        per_step: false,
        speech: None,
    }
}

fn tokens(rng: &mut Rng, n: usize) -> Vec<i32> {
    (0..n).map(|_| rng.below(V) as i32).collect()
}

fn classes(rng: &mut Rng, n: usize, c: usize) -> Vec<i32> {
    (0..n).map(|_| rng.below(c) as i32).collect()
}

fn normal(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal()).collect()
}

const TOKENS: InputKind = InputKind::Tokens { vocab_size: V, embed_dim: E };
const DENSE_IN: usize = 3;
const DENSE: InputKind = InputKind::Dense { input_size: DENSE_IN };

/// The classification cases: every pooling × uni/bidirectional, variable lengths, a rotating
/// cell, class weights on half of them.
fn classify_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let cells = [CellKind::Lstm, CellKind::Gru, CellKind::RnnTanh];
    let mut seed = 10;
    for pooling in [Pooling::Last, Pooling::Mean, Pooling::Max] {
        for bidirectional in [false, true] {
            seed += 1;
            let mut rng = Rng::new(seed);
            let cell = cells[seed as usize % 3];
            let cfg = ModelConfig { pooling, bidirectional, ..config(Task::Classify, cell, TOKENS, 3) };
            let batch = Batch {
                input: BatchInput::Tokens(tokens(&mut rng, B * T)),
                targets: BatchTargets::PerRow(classes(&mut rng, B, 3)),
                rows: B,
                steps: T,
                lengths: Some(LENGTHS.to_vec()),
            };
            let weights = bidirectional.then(|| vec![0.5, 2.0, 1.25]);
            let name =
                format!("classify {pooling:?} {cell:?} bidirectional={bidirectional} weights={}", weights.is_some());
            cases.push(Case::new(&name, cfg, batch, weights, seed));
        }
    }
    cases
}

/// Bidirectional tagging, 2 layers: per-step targets, padded steps, and one real position
/// marked IGNORE_INDEX, class weights.
fn tag_case() -> Case {
    let mut rng = Rng::new(21);
    let cfg = ModelConfig { bidirectional: true, num_layers: 2, ..config(Task::Tag, CellKind::Lstm, TOKENS, 4) };
    let mut targets = classes(&mut rng, B * T, 4);
    targets[1] = IGNORE_INDEX; // row 0, step 1: a real step that does not count
    let batch = Batch {
        input: BatchInput::Tokens(tokens(&mut rng, B * T)),
        targets: BatchTargets::PerStep(targets),
        rows: B,
        steps: T,
        lengths: Some(LENGTHS.to_vec()),
    };
    Case::new("tag bidirectional", cfg, batch, Some(vec![1.0, 0.25, 3.0, 1.5]), 21)
}

/// Regression on dense inputs: per step (2-layer GRU) and many-to-one (bidirectional LSTM,
/// mean pooling), both with variable lengths.
fn regress_cases() -> Vec<Case> {
    let mut rng = Rng::new(31);
    let o = 2;
    let per_step = ModelConfig { per_step: true, num_layers: 2, ..config(Task::Regress, CellKind::Gru, DENSE, o) };
    let batch = Batch {
        input: BatchInput::Dense(normal(&mut rng, B * T * DENSE_IN)),
        targets: BatchTargets::ValuesPerStep(normal(&mut rng, B * T * o)),
        rows: B,
        steps: T,
        lengths: Some(LENGTHS.to_vec()),
    };
    let many_to_one =
        ModelConfig { bidirectional: true, pooling: Pooling::Mean, ..config(Task::Regress, CellKind::Lstm, DENSE, o) };
    let batch2 = Batch {
        input: BatchInput::Dense(normal(&mut rng, B * T * DENSE_IN)),
        targets: BatchTargets::ValuesPerRow(normal(&mut rng, B * o)),
        rows: B,
        steps: T,
        lengths: Some(LENGTHS.to_vec()),
    };
    vec![
        Case::new("regress per step", per_step, batch, None, 31),
        Case::new("regress many-to-one", many_to_one, batch2, None, 32),
    ]
}

/// Language models: 2-layer LSTM with dropout 0.3 (fixed masks), and an Elman RNN with the skip
/// term on a batch with variable lengths.
fn lm_cases() -> Vec<Case> {
    let mut rng = Rng::new(41);
    let dropout = ModelConfig { num_layers: 2, dropout: 0.3, ..config(Task::LanguageModel, CellKind::Lstm, TOKENS, V) };
    let batch = Batch {
        input: BatchInput::Tokens(tokens(&mut rng, B * T)),
        targets: BatchTargets::PerStep(tokens(&mut rng, B * T)),
        rows: B,
        steps: T,
        lengths: None,
    };
    let skip = ModelConfig { skip: true, ..config(Task::LanguageModel, CellKind::RnnTanh, TOKENS, V) };
    let batch2 = Batch { lengths: Some(LENGTHS.to_vec()), ..batch.clone() };
    vec![Case::new("lm dropout", dropout, batch, None, 41), Case::new("lm skip", skip, batch2, None, 42)]
}

/// Speech: 9 frames of 3 features stacked 2 at a time (5 recurrent steps), a bidirectional
/// 2-layer GRU, CTC over the alphabet "abc" + blank; transcripts with a repeat and an empty one.
fn speech_case() -> Case {
    let mut rng = Rng::new(51);
    let frames = 9;
    let speech = SpeechConfig { alphabet: Alphabet::from_chars("abc").unwrap(), frame_stacking: 2 };
    let cfg = ModelConfig {
        bidirectional: true,
        num_layers: 2,
        speech: Some(speech),
        ..config(Task::Speech, CellKind::Gru, DENSE, 4)
    };
    let batch = Batch {
        input: BatchInput::Dense(normal(&mut rng, B * frames * DENSE_IN)),
        targets: BatchTargets::Transcripts {
            labels: vec![1, 2, 0, 3, 3, 0, 0, 0, 0, 2, 1, 2],
            max_len: 3,
            lengths: vec![2, 2, 0, 3],
        },
        rows: B,
        steps: frames,
        lengths: Some(vec![9, 6, 3, 7]),
    };
    Case::new("speech ctc frame stacking", cfg, batch, None, 51)
}

fn run(mut cases: Vec<Case>) {
    for case in &mut cases {
        let g = case.analytic(case.class_weights.clone().as_deref());
        let n = check(case, &g).unwrap_or_else(|e| panic!("{e}"));
        assert!(n >= 50, "{}: only {n} values checked", case.name);
        assert!(g.data.iter().any(|v| *v != 0.0), "{}: an all-zero gradient checks nothing", case.name);
    }
}

#[test]
fn classification_every_pooling_uni_and_bidirectional() {
    run(classify_cases());
}

#[test]
fn speech_ctc_with_frame_stacking() {
    run(vec![speech_case()]);
}

#[test]
fn tagging_bidirectional_masked() {
    run(vec![tag_case()]);
}

#[test]
fn regression_per_step_and_many_to_one() {
    run(regress_cases());
}

#[test]
fn language_model_with_dropout_and_skip_term() {
    let cases = lm_cases();
    // The dropout case must really drop: its loss differs from the same model without masks.
    let c = &cases[0];
    let mut cache = ForwardCache::default();
    let (plain, _) = c.net.forward(&c.batch, None, None, &mut cache).unwrap();
    let plain = batch_loss(&plain, V, &c.batch, None, None).unwrap().sum.mean();
    assert!((plain - c.loss()).abs() > 1e-4, "dropout changed nothing: {plain} vs {}", c.loss());
    run(cases);
}

/// Padded steps: whatever their inputs and targets, the loss and every parameter gradient are
/// bit-identical (they neither count nor pass gradient, in either direction).
#[test]
fn padded_steps_change_neither_loss_nor_gradient() {
    let mut all = classify_cases();
    all.push(tag_case());
    all.extend(regress_cases());
    all.push(lm_cases().remove(1));
    all.push(speech_case());
    let mut rng = Rng::new(5);
    for case in all {
        let lengths = case.batch.lengths.clone().expect("every case here is padded");
        let steps = case.batch.steps;
        let padded = |r: usize, s: usize| s >= lengths[r];
        let original = case.batch.clone();
        let mut other = case;
        let case_loss = other.loss();
        let case_grad = other.analytic(other.class_weights.clone().as_deref());
        match &mut other.batch.input {
            BatchInput::Tokens(ids) => {
                for (i, id) in ids.iter_mut().enumerate() {
                    if padded(i / steps, i % steps) {
                        *id = (*id + 1 + rng.below(V - 1) as i32) % V as i32;
                    }
                }
            }
            BatchInput::Dense(v) => {
                for (i, x) in v.iter_mut().enumerate() {
                    if padded(i / (steps * DENSE_IN), (i / DENSE_IN) % steps) {
                        *x += 10.0 * rng.normal();
                    }
                }
            }
        }
        match &mut other.batch.targets {
            BatchTargets::PerStep(y) => {
                for (i, t) in y.iter_mut().enumerate() {
                    if padded(i / steps, i % steps) {
                        *t = (*t + 1).rem_euclid(other.net.config.output_size as i32);
                    }
                }
            }
            BatchTargets::ValuesPerStep(y) => {
                let o = other.net.config.output_size;
                for (i, t) in y.iter_mut().enumerate() {
                    if padded(i / (steps * o), (i / o) % steps) {
                        *t += 5.0;
                    }
                }
            }
            // Labels past a transcript's length are padding too.
            BatchTargets::Transcripts { labels, max_len, lengths } => {
                for (i, l) in labels.iter_mut().enumerate() {
                    if i % *max_len >= lengths[i / *max_len] {
                        *l = 1 + rng.below(3) as i32;
                    }
                }
            }
            BatchTargets::PerRow(_) | BatchTargets::ValuesPerRow(_) => {}
        }
        assert_ne!(other.batch, original, "{}: the padding was changed", other.name);
        assert_eq!(other.loss().to_bits(), case_loss.to_bits(), "{}: loss", other.name);
        let g = other.analytic(other.class_weights.clone().as_deref());
        let same = g.data.iter().zip(&case_grad.data).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{}: gradient changed with the padding", other.name);
    }
}

/// The check has teeth: the gradient of the unweighted loss is not the gradient of the
/// class-weighted loss, and one wrong sign in one entry is caught.
#[test]
fn a_wrong_gradient_fails_the_check() {
    let mut cases = classify_cases();
    let mut case = cases.remove(1); // Last pooling, bidirectional, class weights
    assert!(case.class_weights.is_some());
    let unweighted = case.analytic(None);
    let e = check(&mut case, &unweighted).expect_err("ignoring the class weights must fail");
    assert!(e.contains("mismatches"), "{e}");

    let mut g = case.analytic(case.class_weights.clone().as_deref());
    check(&mut case, &g).expect("the right gradient passes");
    let spec = g.layout.require("head.weight").unwrap().clone();
    let k = (spec.offset..spec.offset + spec.len).max_by(|&a, &b| g.data[a].abs().total_cmp(&g.data[b].abs())).unwrap();
    g.data[k] = -g.data[k];
    let e = check(&mut case, &g).expect_err("a flipped entry must fail");
    assert!(e.contains("1 mismatches") && e.contains("head.weight"), "{e}");
}
