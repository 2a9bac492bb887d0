//! The sequence-to-sequence network: central finite differences of the whole teacher-forced
//! loss (every parameter, every attention kind, LSTM/GRU/RNN, uni- and bidirectional encoders,
//! padded sources and targets, an empty target), decoding (greedy equals beam width 1, the
//! attention weights of a decode), and a short training run that learns to reverse sequences.
//!
//! Numerics as in gradcheck_network.rs: f32 forward, loss summed in f64, EPS = 5e-3.

use rnn_core::beam::BeamConfig;
use rnn_core::config::CellKind;
use rnn_core::layer::attention::AttentionKind;
use rnn_core::model::seq2seq::{Seq2Seq, Seq2SeqCache, Seq2SeqConfig, StepUpdate, StepWork};
use rnn_core::pairs::PairSet;
use rnn_core::params::Params;
use rnn_core::rng::Rng;
use std::sync::atomic::AtomicBool;

const EPS: f32 = 5e-3;
const ABS_TOL: f64 = 2e-4;
const REL_TOL: f64 = 1e-2;

fn config(cell: CellKind, attention: AttentionKind, bidirectional: bool, layers: usize) -> Seq2SeqConfig {
    Seq2SeqConfig {
        cell,
        source_vocab: 6,
        target_vocab: 5,
        embed_dim: 3,
        hidden_size: 4,
        num_layers: layers,
        bidirectional,
        attention,
        attention_size: 3,
        bos: 0,
        eos: 1,
    }
}

fn pairs() -> PairSet {
    PairSet {
        source: vec![vec![1, 2, 3, 4], vec![5, 1], vec![2], vec![3, 3, 4]],
        target: vec![vec![2, 3], vec![4, 4, 2, 3], vec![], vec![3]],
    }
}

/// The analytic gradient of every parameter against central differences of the mean loss.
fn gradcheck(cfg: Seq2SeqConfig, seed: u64) {
    let name = format!("{cfg:?}");
    let net = Seq2Seq::init(cfg.clone(), &mut Rng::new(seed)).unwrap();
    let data = pairs();
    let batch = data.gather(&[0, 1, 2, 3]);
    let mut grads = Params::zeros(net.params().layout.clone());
    let mut cache = Seq2SeqCache::default();
    let loss = net.forward_backward(&batch, &mut cache, &mut grads).unwrap();
    assert_eq!(loss.count, (2 + 4 + 1) + 4, "{name}: the target tokens (2, 4, none, 1) and one eos per row count");
    let mut worst = 0.0f64;
    for i in 0..net.params().data.len() {
        let at = |delta: f32| {
            let mut n = net.clone();
            n.params_mut().data[i] += delta;
            n.loss(&batch).unwrap().mean()
        };
        let numeric = (at(EPS) - at(-EPS)) / (2.0 * EPS as f64);
        let analytic = grads.data[i] as f64;
        let err = (numeric - analytic).abs();
        worst = worst.max(err);
        assert!(
            err <= ABS_TOL + REL_TOL * numeric.abs().max(analytic.abs()),
            "{name}: parameter {i}: numeric {numeric} vs analytic {analytic}"
        );
    }
    assert!(grads.data.iter().any(|&g| g != 0.0));
    eprintln!("{name}: worst gradient error {worst:.2e}");
}

#[test]
fn whole_network_gradients_match_finite_differences() {
    let mut seed = 1;
    for attention in [AttentionKind::Additive, AttentionKind::Dot, AttentionKind::General] {
        for (cell, bidirectional, layers) in [
            (CellKind::Lstm, false, 1),
            (CellKind::Gru, true, 2),
            (CellKind::RnnTanh, false, 2),
            (CellKind::Lstm, true, 1),
        ] {
            if attention == AttentionKind::Dot && bidirectional {
                continue; // dot needs equal widths; refused (see below)
            }
            seed += 1;
            gradcheck(config(cell, attention, bidirectional, layers), seed);
        }
    }
    assert!(config(CellKind::Gru, AttentionKind::Dot, true, 1).validate().is_err());
}

/// A wrong gradient is caught: the same check on a gradient with one entry changed fails.
#[test]
fn the_gradient_check_can_fail() {
    let net = Seq2Seq::init(config(CellKind::Gru, AttentionKind::General, false, 1), &mut Rng::new(3)).unwrap();
    let batch = pairs().gather(&[0, 1, 2, 3]);
    let mut grads = Params::zeros(net.params().layout.clone());
    net.forward_backward(&batch, &mut Seq2SeqCache::default(), &mut grads).unwrap();
    let i = net.params().layout.require("attn.weight").unwrap().offset;
    let mut n = net.clone();
    n.params_mut().data[i] += EPS;
    let up = n.loss(&batch).unwrap().mean();
    n.params_mut().data[i] -= 2.0 * EPS;
    let numeric = (up - n.loss(&batch).unwrap().mean()) / (2.0 * EPS as f64);
    let wrong = grads.data[i] as f64 * 1.1 + 1e-3;
    assert!((numeric - wrong).abs() > ABS_TOL + REL_TOL * numeric.abs().max(wrong.abs()) * 0.5);
}

/// Gradients are those of each row alone, weighted by its share of the tokens: padding of one row
/// changes nothing for another.
#[test]
fn padding_does_not_leak_between_rows() {
    let net = Seq2Seq::init(config(CellKind::Lstm, AttentionKind::Additive, true, 1), &mut Rng::new(4)).unwrap();
    let data = pairs();
    let together = net.loss(&data.gather(&[0, 1, 2, 3])).unwrap();
    let mut apart = rnn_core::loss::LossSum::default();
    for r in 0..4 {
        apart.add(net.loss(&data.gather(&[r])).unwrap());
    }
    assert_eq!(together.count, apart.count);
    assert!((together.total - apart.total).abs() < 1e-4, "{} vs {}", together.total, apart.total);
}

/// Reversing sequences of 2–6 tokens over 6 symbols: a few hundred Adam steps give exact
/// outputs with greedy and beam decoding, whose results agree at width 1.
#[test]
fn learns_to_reverse_and_decodes_greedy_and_beam() {
    use rnn_core::optim::{Optimizer, OptimizerConfig};
    let cfg = Seq2SeqConfig {
        source_vocab: 8,
        target_vocab: 8,
        embed_dim: 16,
        hidden_size: 32,
        ..config(CellKind::Gru, AttentionKind::General, true, 1)
    };
    let mut net = Seq2Seq::init(cfg, &mut Rng::new(7)).unwrap();
    let mut rng = Rng::new(8);
    let mut make = |n: usize| {
        let mut s = PairSet::default();
        for _ in 0..n {
            let len = 2 + rng.below(5);
            let src: Vec<i32> = (0..len).map(|_| 2 + rng.below(6) as i32).collect();
            s.target.push(src.iter().rev().copied().collect());
            s.source.push(src);
        }
        s
    };
    let train = make(2000);
    let test = make(100);
    let mut opt = Optimizer::new(
        &OptimizerConfig::from_json(&serde_json::json!({"type": "adam", "lr": 0.01})).unwrap(),
        net.params().data.len(),
    )
    .unwrap();
    let mut work = StepWork::new(&net);
    for epoch in 0..6 {
        for rows in train.epoch_batches(1, epoch, 32) {
            net.train_step(
                &train.gather(&rows),
                &mut work,
                &mut opt,
                StepUpdate { lr: 0.01, clip_norm: Some(5.0), clip_value: None },
            )
            .unwrap();
        }
    }
    let all: Vec<usize> = (0..test.len()).collect();
    let b = test.gather(&all);
    let limit = |len: usize| len + 2;
    let greedy = net.greedy(&b.source, b.rows, b.source_steps, &b.source_lengths, &limit).unwrap();
    let exact = |out: &[Vec<u32>]| {
        out.iter().zip(&test.target).filter(|(o, t)| o.iter().map(|&x| x as i32).eq(t.iter().copied())).count()
    };
    assert!(exact(&greedy) >= 95, "greedy exact match {}/100", exact(&greedy));
    let one = BeamConfig { beams: 1, max_tokens: 1, length_penalty: 0.0, stop_tokens: vec![] };
    let beam1 = net.beam(&b.source, b.source_steps, &b.source_lengths, &limit, &one, &AtomicBool::new(false)).unwrap();
    assert_eq!(beam1, greedy, "beam width 1 is greedy decoding");
    let four = BeamConfig { beams: 4, length_penalty: 0.6, ..one };
    let beam4 = net.beam(&b.source, b.source_steps, &b.source_lengths, &limit, &four, &AtomicBool::new(false)).unwrap();
    assert!(exact(&beam4) >= 95, "beam exact match {}/100", exact(&beam4));
    // The attention of a reversal looks at the mirrored source position (or beside it: the
    // bidirectional encoder's keys also carry their neighbours).
    let w = net.attention_weights(&test.gather(&[0])).unwrap();
    let (ls, lt) = (test.source[0].len(), test.target[0].len());
    assert_eq!(w[0].len(), (lt + 1) * ls);
    for t in 0..lt {
        let row = &w[0][t * ls..(t + 1) * ls];
        let argmax = (0..ls).max_by(|&a, &c| row[a].total_cmp(&row[c])).unwrap();
        assert!(argmax.abs_diff(ls - 1 - t) <= 1, "output {t} attends source {argmax}: {row:?}");
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
    // Max length: a limit of 0 tokens gives empty outputs.
    let none = net.greedy(&b.source, b.rows, b.source_steps, &b.source_lengths, &|_| 0).unwrap();
    assert!(none.iter().all(Vec::is_empty));
}

/// A saved model loads with the same configuration, bit-identical parameters and outputs, and
/// its metadata; files of another kind, or damaged, are refused with the file named.
#[test]
fn save_and_load_round_trip() {
    use rnn_core::io::SaveOptions;
    let dir = std::env::temp_dir().join(format!("rnnkit-seq2seq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");
    let net = Seq2Seq::init(config(CellKind::Lstm, AttentionKind::Additive, true, 2), &mut Rng::new(5)).unwrap();
    let opts = SaveOptions { metadata: vec![("source_tokenizer", "{\"kind\":\"char\"}")], ..Default::default() };
    net.save(&path, &opts).unwrap();
    let (back, parts) = Seq2Seq::load(&path).unwrap();
    assert_eq!(back.config, net.config);
    assert_eq!(back.params().data, net.params().data);
    assert_eq!(parts.metadata.get("source_tokenizer").map(String::as_str), Some("{\"kind\":\"char\"}"));
    let batch = pairs().gather(&[0, 1, 2, 3]);
    assert_eq!(back.logits(&batch).unwrap(), net.logits(&batch).unwrap());
    // A language-model file is not a seq2seq one.
    let lm = rnn_core::config::ModelConfig::from_json(
        &serde_json::json!({"cell": "gru", "vocab_size": 5, "embed_dim": 2, "hidden_size": 3, "num_layers": 1}),
    )
    .unwrap();
    let lm_params = rnn_core::init::init_params(&lm, &Default::default(), &mut Rng::new(1)).unwrap();
    let lm_path = dir.join("lm.safetensors");
    rnn_core::io::save_model(&lm_path, &lm, &lm_params, &SaveOptions::default()).unwrap();
    let err = Seq2Seq::load(&lm_path).unwrap_err().to_string();
    assert!(err.contains("lm.safetensors") && err.contains("seq2seq"), "{err}");
    let err = rnn_core::io::load_model(&path).unwrap_err().to_string();
    assert!(err.contains("task"), "{err}");
    // Truncated.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 7]).unwrap();
    assert!(Seq2Seq::load(&path).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
