//! Results are deterministic for a fixed thread count: two trainings at 2 threads give
//! bit-identical parameters. Shapes are large enough that the threaded GEMM path runs
//! (products above `parallel::min_split_work`). Its own test binary: the pool size is process-wide, so
//! the tests take a lock before setting it.

use rnn_core::batch::{Batch, BatchInput, BatchTargets, IGNORE_INDEX};
use rnn_core::config::ModelConfig;
use rnn_core::init::{init_params, InitConfig};
use rnn_core::layer::recurrent::{RecurrentStack, SeqBatch, StackCache, StackState};
use rnn_core::model::inference::InferenceScratch;
use rnn_core::model::network::Network;
use rnn_core::params::Params;
use rnn_core::rng::Rng;
use rnn_core::train::{TrainOptions, Trainer};
use serde_json::json;
use std::sync::Mutex;

static POOL_SIZE: Mutex<()> = Mutex::new(());

fn train_bits(cell: &str, b: usize) -> Vec<u32> {
    train_bits_of(cell, b, 12, false)
}

/// Parameters after 3 Adam steps on random batches of `b` rows × `t` steps; `ragged`: rows of
/// lengths 1..=t (padded steps ignored by the loss).
fn train_bits_of(cell: &str, b: usize, t: usize, ragged: bool) -> Vec<u32> {
    let v = 40usize;
    let cfg = ModelConfig::from_json(
        &json!({"cell": cell, "vocab_size": v, "embed_dim": 32, "hidden_size": 256, "num_layers": 2}),
    )
    .unwrap();
    let mut net =
        Network::from_params(cfg.clone(), init_params(&cfg, &InitConfig::default(), &mut Rng::new(9)).unwrap())
            .unwrap();
    let opts =
        TrainOptions::from_json(&json!({"batch_size": b, "seq_len": t, "optimizer": {"type": "adam", "lr": 2e-3}}))
            .unwrap();
    let mut trainer = Trainer::new(&net, opts).unwrap();
    let mut rng = Rng::new(4);
    for _ in 0..3 {
        let lengths: Vec<usize> = (0..b).map(|r| if ragged { 1 + (r * 7) % t } else { t }).collect();
        let ids: Vec<i32> = (0..b * t).map(|_| rng.below(v) as i32).collect();
        let targets: Vec<i32> =
            (0..b * t).map(|k| if k % t < lengths[k / t] { rng.below(v) as i32 } else { IGNORE_INDEX }).collect();
        let batch = Batch {
            input: BatchInput::Tokens(ids),
            targets: BatchTargets::PerStep(targets),
            rows: b,
            steps: t,
            lengths: ragged.then_some(lengths),
        };
        trainer.train_step(&mut net, &batch, None).unwrap();
    }
    net.params().data.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn two_runs_at_two_threads_are_bit_identical() {
    let _pool = POOL_SIZE.lock().unwrap_or_else(|e| e.into_inner());
    rnn_core::parallel::set_threads(2);
    assert_eq!(rnn_core::parallel::threads(), 2);
    for cell in ["lstm", "gru"] {
        let (a, b) = (train_bits(cell, 32), train_bits(cell, 32));
        assert!(a == b, "{cell}: two runs at 2 threads differ");
    }
}

/// At 56 rows and 2 threads the recurrence (forward and backward) runs over row blocks (product
/// and gates per block, through the whole sequence in one parallel region); at 1 thread each
/// step runs in two phases. Every row gets the same
/// operations either way, so training gives the same bits.
#[test]
fn row_blocked_steps_give_the_same_bits_as_one_thread() {
    let _pool = POOL_SIZE.lock().unwrap_or_else(|e| e.into_inner());
    for cell in ["lstm", "gru", "rnn"] {
        rnn_core::parallel::set_threads(1);
        let one = train_bits(cell, 56);
        rnn_core::parallel::set_threads(2);
        let two = train_bits(cell, 56);
        assert!(one == two, "{cell}: 1 and 2 threads differ");
    }
}

/// The same with rows of different lengths and an odd number of steps: padded steps carry the
/// state inside each row block, and backward's dL/dh ends in the right buffer.
#[test]
fn row_blocked_ragged_sequences_give_the_same_bits_as_one_thread() {
    let _pool = POOL_SIZE.lock().unwrap_or_else(|e| e.into_inner());
    for cell in ["lstm", "gru", "rnn"] {
        for t in [11, 12] {
            rnn_core::parallel::set_threads(1);
            let one = train_bits_of(cell, 56, t, true);
            rnn_core::parallel::set_threads(2);
            let two = train_bits_of(cell, 56, t, true);
            assert!(one == two, "{cell}, {t} steps: 1 and 2 threads differ");
        }
    }
}

/// One forward and backward of a 2-layer stack on 56 ragged rows, from a random state and with
/// a gradient on the final state: outputs, input and initial-state gradients (which training
/// does not reach) and weight gradients, as bits.
fn stack_bits(cell: &str, t: usize) -> Vec<u32> {
    let b = 56;
    let cfg = ModelConfig::from_json(
        &json!({"cell": cell, "vocab_size": 40, "embed_dim": 24, "hidden_size": 48, "num_layers": 2}),
    )
    .unwrap();
    let stack = RecurrentStack::new(&cfg);
    let mut rng = Rng::new(5);
    let mut p = Params::zeros(std::sync::Arc::new(cfg.layout()));
    p.data.iter_mut().for_each(|v| *v = rng.uniform_range(-0.3, 0.3));
    let x: Vec<f32> = (0..t * b * 24).map(|_| rng.normal()).collect();
    let lengths: Vec<usize> = (0..b).map(|r| 1 + (r * 5) % t).collect();
    let mut state = StackState::zeros(&stack, b);
    state.h.iter_mut().chain(state.c.iter_mut().flatten()).for_each(|v| *v = 0.5 * rng.normal());
    let mut cache = StackCache::default();
    let seq = SeqBatch { x: &x, steps: t, batch: b, lengths: Some(&lengths) };
    let (y, fin) = stack.forward(&p, seq, Some(&state), None, &mut cache).unwrap();
    let dy: Vec<f32> = (0..y.len()).map(|_| rng.normal()).collect();
    let mut dfin = fin.clone();
    dfin.h.iter_mut().chain(dfin.c.iter_mut().flatten()).for_each(|v| *v = rng.normal());
    let mut g = Params::zeros(p.layout.clone());
    let (dx, d0) = stack.backward(&p, &mut cache, &dy, Some(&dfin), &mut g).unwrap();
    let all = y.iter().chain(&fin.h).chain(&dx).chain(&d0.h).chain(d0.c.iter().flatten()).chain(&g.data);
    all.map(|v| v.to_bits()).collect()
}

#[test]
fn row_blocked_stack_passes_give_the_same_bits_as_one_thread() {
    let _pool = POOL_SIZE.lock().unwrap_or_else(|e| e.into_inner());
    for cell in ["lstm", "gru", "rnn"] {
        for t in [7, 8] {
            rnn_core::parallel::set_threads(1);
            let one = stack_bits(cell, t);
            rnn_core::parallel::set_threads(2);
            let two = stack_bits(cell, t);
            assert!(one == two, "{cell}, {t} steps: 1 and 2 threads differ");
        }
    }
}

/// Generation-sized inference called from outside the pool (the team path): 40 tokens fed one at
/// a time with the state carried, at batch 1 (each product split by column ranges) and 56 (row
/// blocks). Logits and states have the same bits at 1 and 2 threads.
fn feed_bits(cell: &str, rows: usize) -> Vec<u32> {
    let v = 96usize;
    let cfg = ModelConfig::from_json(
        &json!({"cell": cell, "vocab_size": v, "embed_dim": 64, "hidden_size": 256, "num_layers": 2}),
    )
    .unwrap();
    let net = Network::from_params(cfg.clone(), init_params(&cfg, &InitConfig::default(), &mut Rng::new(11)).unwrap())
        .unwrap();
    let (mut state, mut scratch) = (net.zero_state(rows), InferenceScratch::default());
    let mut logits = vec![0.0; rows * v];
    let mut bits = Vec::new();
    let mut rng = Rng::new(2);
    for _ in 0..40 {
        let tokens: Vec<i32> = (0..rows).map(|_| rng.below(v) as i32).collect();
        net.feed(&tokens, rows, 1, &mut state, &mut scratch, &mut logits).unwrap();
        bits.extend(logits.iter().map(|x| x.to_bits()));
    }
    bits.extend(state.h.iter().map(|x| x.to_bits()));
    bits
}

#[test]
fn inference_outside_the_pool_gives_the_same_bits_at_one_and_two_threads() {
    let _pool = POOL_SIZE.lock().unwrap_or_else(|e| e.into_inner());
    for cell in ["lstm", "gru", "rnn"] {
        for rows in [1, 56] {
            rnn_core::parallel::set_threads(1);
            let one = feed_bits(cell, rows);
            rnn_core::parallel::set_threads(2);
            let two = feed_bits(cell, rows);
            assert!(one == two, "{cell}, {rows} rows: 1 and 2 threads differ");
        }
    }
}
