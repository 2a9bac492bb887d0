//! Results are deterministic for a fixed thread count: two trainings at 2 threads give
//! bit-identical parameters. Shapes are large enough that the threaded GEMM path runs
//! (products above `MIN_THREADED_MACS`). Its own test binary: the pool size is process-wide.

use rnn_core::batch::{Batch, BatchInput, BatchTargets};
use rnn_core::config::ModelConfig;
use rnn_core::init::{init_params, InitConfig};
use rnn_core::model::network::Network;
use rnn_core::rng::Rng;
use rnn_core::train::{TrainOptions, Trainer};
use serde_json::json;

fn train_bits(cell: &str) -> Vec<u32> {
    let (v, b, t) = (40usize, 32usize, 12usize);
    let cfg = ModelConfig::from_json(&json!({"cell": cell, "vocab_size": v, "embed_dim": 32, "hidden_size": 256, "num_layers": 2})).unwrap();
    let mut net = Network::from_params(cfg.clone(), init_params(&cfg, &InitConfig::default(), &mut Rng::new(9)).unwrap()).unwrap();
    let opts = TrainOptions::from_json(&json!({"batch_size": b, "seq_len": t, "optimizer": {"type": "adam", "lr": 2e-3}})).unwrap();
    let mut trainer = Trainer::new(&net, opts).unwrap();
    let mut rng = Rng::new(4);
    for _ in 0..3 {
        let ids: Vec<i32> = (0..b * t).map(|_| rng.below(v) as i32).collect();
        let targets: Vec<i32> = (0..b * t).map(|_| rng.below(v) as i32).collect();
        let batch = Batch { input: BatchInput::Tokens(ids), targets: BatchTargets::PerStep(targets), rows: b, steps: t, lengths: None };
        trainer.train_step(&mut net, &batch, None).unwrap();
    }
    net.params().data.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn two_runs_at_two_threads_are_bit_identical() {
    rnn_core::parallel::set_threads(2);
    assert_eq!(rnn_core::parallel::threads(), 2);
    for cell in ["lstm", "gru"] {
        let (a, b) = (train_bits(cell), train_bits(cell));
        assert!(a == b, "{cell}: two runs at 2 threads differ");
    }
}
