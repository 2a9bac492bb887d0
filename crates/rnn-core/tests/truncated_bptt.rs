//! Truncated BPTT and the stateful evaluation protocol.
//!
//! (a) Lanes mode: batch k+1 starts from batch k's final state (its value), but its gradient
//! stops there. The gradient `train_step` applies is recovered exactly from plain SGD with lr = 1
//! (`p' = p − g`), and compared with central differences of batch k+1's mean loss w.r.t. the
//! parameters with its initial state held fixed. The untruncated gradient (through batch k's
//! forward) is shown to differ, so the comparison can tell the two apart.
//! (b) `evaluate_stream` gives the same loss for every chunk size.

use rnn_core::batch::{Batch, StreamMode, TokenStream};
use rnn_core::config::ModelConfig;
use rnn_core::init::{init_params, InitConfig};
use rnn_core::layer::recurrent::StackState;
use rnn_core::model::evaluate::{default_lanes, evaluate_stream, lane_spans};
use rnn_core::model::network::{ForwardCache, Network};
use rnn_core::model::objective::batch_loss;
use rnn_core::rng::Rng;
use rnn_core::train::{TrainData, TrainOptions, Trainer};
use serde_json::json;
use std::sync::atomic::AtomicBool;

const V: usize = 6;
/// Central-difference step and tolerance: see gradcheck_network.rs for the reasoning (f32
/// forward, f64 mean loss).
const EPS: f32 = 5e-3;
const ABS_TOL: f64 = 2e-4;
const REL_TOL: f64 = 1e-2;

fn lm(cell: &str, layers: usize, seed: u64) -> Network {
    let cfg = ModelConfig::from_json(&json!({"cell": cell, "vocab_size": V, "embed_dim": 4,
        "hidden_size": 5, "num_layers": layers}))
    .unwrap();
    let params = init_params(&cfg, &InitConfig::default(), &mut Rng::new(seed)).unwrap();
    Network::from_params(cfg, params).unwrap()
}

fn random_tokens(n: usize, seed: u64) -> Vec<i32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.below(V) as i32).collect()
}

/// Mean loss of `batch` from the initial state `state`.
fn loss(net: &Network, batch: &Batch, state: Option<&StackState>) -> f64 {
    let (out, _) = net.forward(batch, state, None, &mut ForwardCache::default()).unwrap();
    batch_loss(&out, V, batch, None, None).unwrap().sum.mean()
}

/// Central differences of `f` w.r.t. every parameter of `net`.
fn numeric(net: &mut Network, f: impl Fn(&Network) -> f64) -> Vec<f64> {
    (0..net.params().data.len())
        .map(|i| {
            let orig = net.params().data[i];
            net.params_mut().data[i] = orig + EPS;
            let fp = f(net);
            net.params_mut().data[i] = orig - EPS;
            let fm = f(net);
            net.params_mut().data[i] = orig;
            (fp - fm) / (2.0 * EPS as f64)
        })
        .collect()
}

fn close(num: f64, ana: f64) -> bool {
    (num - ana).abs() <= ABS_TOL + REL_TOL * num.abs().max(ana.abs())
}

#[test]
fn lanes_carry_the_state_value_but_truncate_its_gradient() {
    let (batch_size, seq_len) = (3, 6);
    let options = TrainOptions::from_json(&json!({"batch_size": batch_size, "seq_len": seq_len, "tbptt": true,
        "shuffle": false, "optimizer": {"type": "sgd", "lr": 1.0}}))
    .unwrap();
    let stream = TokenStream::new(random_tokens(90, 3), V, batch_size, seq_len, StreamMode::Lanes).unwrap();
    let (b0, b1) = (stream.batch(&[], 0), stream.batch(&[], 1));
    let mut net = lm("lstm", 2, 4);
    let start = net.clone();

    // Two steps by hand: batch 1 from batch 0's final state.
    let mut trainer = Trainer::new(&net, options.clone()).unwrap();
    let r0 = trainer.train_step(&mut net, &b0, None).unwrap();
    let p1 = net.clone();
    let r1 = trainer.train_step(&mut net, &b1, Some(&r0.final_state)).unwrap();
    // SGD, lr = 1: the applied gradient is p1 − p2 (exact up to one f32 rounding of p2).
    let applied: Vec<f64> =
        p1.params().data.iter().zip(&net.params().data).map(|(a, b)| *a as f64 - *b as f64).collect();
    // The step's loss is batch 1's loss from that state (and not from zeros).
    assert_eq!(r1.loss.mean().to_bits(), loss(&p1, &b1, Some(&r0.final_state)).to_bits());
    assert!((loss(&p1, &b1, None) - r1.loss.mean()).abs() > 1e-4, "the carried state must matter");

    // fit does the same: the carried state is batch 0's final state, then batch 1's.
    let mut fitted = start.clone();
    let mut t2 = Trainer::new(&fitted, TrainOptions { max_steps: Some(2), ..options }).unwrap();
    let data = TrainData::Stream(stream.clone());
    t2.fit(&mut fitted, &data, None, &AtomicBool::new(false), &mut |_| {}, &mut |_, _| unreachable!()).unwrap();
    let bits = |n: &Network| n.params().data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&fitted), bits(&net), "fit = two train_steps with the state carried");
    assert_eq!(t2.state().carried.as_ref(), Some(&r1.final_state));

    // Truncated: the gradient of batch 1's loss with its initial state held fixed.
    let s0 = r0.final_state.clone();
    let mut at_p1 = p1.clone();
    let truncated = numeric(&mut at_p1, |n| loss(n, &b1, Some(&s0)));
    let bad: Vec<String> = truncated
        .iter()
        .zip(&applied)
        .enumerate()
        .filter(|(_, (n, a))| !close(**n, **a))
        .map(|(i, (n, a))| format!("param {i}: numeric {n:.5e}, applied {a:.5e}"))
        .take(5)
        .collect();
    assert!(bad.is_empty(), "truncated gradient mismatch: {bad:?}");
    assert!(applied.iter().filter(|g| g.abs() > 1e-3).count() > applied.len() / 4, "a gradient worth checking");

    // Untruncated: batch 0's forward recomputed at the perturbed parameters feeds batch 1. Its
    // gradient differs from the applied one well beyond the tolerance.
    let full = numeric(&mut at_p1, |n| {
        let (_, s) = n.forward(&b0, None, None, &mut ForwardCache::default()).unwrap();
        loss(n, &b1, Some(&s))
    });
    let differing = full.iter().zip(&applied).filter(|(n, a)| !close(**n, **a)).count();
    assert!(differing > applied.len() / 10, "only {differing} values tell full from truncated BPTT");
}

#[test]
fn evaluate_stream_is_independent_of_the_chunk_size() {
    let tokens = random_tokens(61, 8);
    for (cell, layers) in [("gru", 2), ("lstm", 1), ("rnn", 2)] {
        let net = lm(cell, layers, 9);
        let whole = evaluate_stream(&net, &tokens, Some(1), tokens.len(), None).unwrap();
        assert_eq!(whole.loss.count, tokens.len() - 1);
        for chunk in [1, 7] {
            let e = evaluate_stream(&net, &tokens, Some(1), chunk, None).unwrap();
            assert_eq!(e.loss.count, whole.loss.count);
            let rel = (e.loss.mean() - whole.loss.mean()).abs() / whole.loss.mean();
            assert!(rel < 1e-6, "{cell}: chunk {chunk}: {} vs {} (rel {rel:e})", e.loss.mean(), whole.loss.mean());
            assert_eq!(e.correct, whole.correct, "{cell}: chunk {chunk}");
        }
        // Chunks of 7 that each restart from zeros give another loss: the state is what carries.
        let mut restarted = 0.0;
        for c in (0..tokens.len() - 1).step_by(7) {
            let end = (c + 7).min(tokens.len() - 1);
            let part = evaluate_stream(&net, &tokens[c..=end], Some(1), 7, None).unwrap();
            restarted += part.loss.total;
        }
        let restarted = restarted / (tokens.len() - 1) as f64;
        assert!((restarted - whole.loss.mean()).abs() > 1e-4, "{cell}: {restarted} vs {}", whole.loss.mean());
    }
}

#[test]
fn one_lane_is_the_stateful_protocol() {
    let tokens = random_tokens(61, 10);
    let net = lm("lstm", 2, 11);
    // The protocol written out: the whole stream as one row from the zero state.
    let batch = Batch {
        input: rnn_core::batch::BatchInput::Tokens(tokens[..60].to_vec()),
        targets: rnn_core::batch::BatchTargets::PerStep(tokens[1..].to_vec()),
        rows: 1,
        steps: 60,
        lengths: None,
    };
    let (outputs, _) = net.forward(&batch, None, None, &mut ForwardCache::default()).unwrap();
    let by_hand = batch_loss(&outputs, V, &batch, None, None).unwrap();
    let e = evaluate_stream(&net, &tokens, Some(1), 60, None).unwrap();
    // The loss's f64 sums may be cut into one block per thread: equal up to their re-association.
    assert!(
        (e.loss.total - by_hand.sum.total).abs() <= 1e-12 * by_hand.sum.total,
        "{} vs {}",
        e.loss.total,
        by_hand.sum.total
    );
    assert_eq!((e.loss.count, e.correct), (by_hand.sum.count, by_hand.correct));
    // A short stream's default is one lane: the protocol itself.
    assert_eq!(default_lanes(60), 1);
    let auto = evaluate_stream(&net, &tokens, None, 60, None).unwrap();
    assert_eq!(auto.loss.total.to_bits(), e.loss.total.to_bits());
}

#[test]
fn lanes_are_separate_evaluations_of_their_slices() {
    let tokens = random_tokens(61, 12);
    for (cell, layers) in [("gru", 2), ("lstm", 1), ("rnn", 1)] {
        let net = lm(cell, layers, 13);
        let one = evaluate_stream(&net, &tokens, Some(1), 16, None).unwrap();
        // 60 predictions: 7 lanes do not divide them (4 lanes of 9, 3 of 8), 4 do.
        for lanes in [4, 7] {
            let spans = lane_spans(60, lanes);
            assert_eq!(spans.iter().map(|s| s.1).sum::<usize>(), 60, "every prediction once");
            let (mut total, mut count, mut correct) = (0.0, 0, 0);
            for &(start, n) in &spans {
                let part = evaluate_stream(&net, &tokens[start..=start + n], Some(1), 16, None).unwrap();
                total += part.loss.total;
                count += part.loss.count;
                correct += part.correct;
            }
            let e = evaluate_stream(&net, &tokens, Some(lanes), 5, None).unwrap();
            assert_eq!((e.loss.count, e.correct), (count, correct), "{cell}: {lanes} lanes");
            let rel = (e.loss.total - total).abs() / total;
            assert!(rel < 1e-6, "{cell}: {lanes} lanes: {} vs {total} (rel {rel:e})", e.loss.total);
            // The restarts at the lanes' starts are what lanes change.
            assert!((e.loss.mean() - one.loss.mean()).abs() > 1e-4, "{cell}: {lanes} lanes equal one lane");
        }
    }
    assert_eq!(lane_spans(5, 9), vec![(0, 1), (1, 1), (2, 1), (3, 1), (4, 1)], "at most one lane per prediction");
    assert_eq!(default_lanes(3 << 20), 3);
    assert_eq!(default_lanes(usize::MAX), 64);
}

#[test]
fn stream_and_sequence_evaluation_stop_when_cancelled() {
    let net = lm("gru", 1, 14);
    let cancel = AtomicBool::new(true);
    let tokens = random_tokens(100, 15);
    let e = evaluate_stream(&net, &tokens, Some(2), 8, Some(&cancel));
    assert!(matches!(e, Err(rnn_core::Error::Aborted)), "{e:?}");
    assert!(evaluate_stream(&net, &tokens, Some(2), 8, Some(&AtomicBool::new(false))).is_ok());
    // Set mid-run from another thread: a stream of hours at one lane stops at the next chunk.
    let long = random_tokens(20_000_000, 16);
    let started = std::time::Instant::now();
    let flag = AtomicBool::new(false);
    let e = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        evaluate_stream(&net, &long, Some(1), 64, Some(&flag))
    });
    assert!(matches!(e, Err(rnn_core::Error::Aborted)), "{e:?}");
    assert!(started.elapsed().as_secs_f64() < 10.0, "stopped after {:?}", started.elapsed());

    let set = rnn_core::batch::SequenceSet {
        input: rnn_core::batch::BatchInput::Tokens(tokens[..60].to_vec()),
        targets: rnn_core::batch::BatchTargets::PerStep(tokens[1..61].to_vec()),
        rows: 6,
        steps: 10,
        lengths: vec![10; 6],
        features: 0,
        outputs: 0,
    };
    let e = rnn_core::model::evaluate::evaluate_sequences(&net, &set, 2, Some(&cancel));
    assert!(matches!(e, Err(rnn_core::Error::Aborted)), "{e:?}");
}
