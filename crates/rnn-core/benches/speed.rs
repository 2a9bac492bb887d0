//! Speed of the standard configurations of `shared/bench/SPEC.md`, measured on the engine itself
//! (no binding in between): training steps through `Trainer::train_step` (forward + backward +
//! Adam) and generation steps through `Network::feed` at batch 1 and 64.
//!
//! ```sh
//! cargo bench -p rnn-core --bench speed -- <config>... [--threads N] [--steps N] [--json]
//! ```
//! `<config>`: `train-lstm-s`, `train-gru-s`, `train-rnn-s`, `train-lstm-m`, `gen-b1`, `gen-b64`,
//! `train` (the four TRAIN configs), `gen` (both GEN), `all`. `--threads` sets the engine's pool
//! (default: `RNNKIT_THREADS` or the available parallelism); `--steps` overrides the number of
//! timed steps (SPEC: ≥ 20 train steps after 3 warm-up, 2000 gen-b1 steps, ≥ 300 gen-b64 steps).
//! Each step is timed on its own with a monotonic clock; the report is median, min and max of the
//! per-step rate, plus the peak resident set of the process (`VmHWM`) after each config (so run
//! one config per process to read a config's own peak). `--json` prints the SPEC record shape.

use rnn_core::batch::{Batch, BatchInput, BatchTargets};
use rnn_core::config::ModelConfig;
use rnn_core::init::{init_params, InitConfig};
use rnn_core::model::inference::InferenceScratch;
use rnn_core::model::network::Network;
use rnn_core::model::objective::argmax;
use rnn_core::rng::Rng;
use rnn_core::train::{TrainOptions, Trainer};
use serde_json::json;
use std::hint::black_box;
use std::time::Instant;

const V: usize = 96;

fn network(cell: &str, embed: usize, hidden: usize, layers: usize) -> Network {
    let cfg = ModelConfig::from_json(&json!({"cell": cell, "vocab_size": V, "embed_dim": embed,
        "hidden_size": hidden, "num_layers": layers}))
    .expect("valid config");
    let params = init_params(&cfg, &InitConfig::default(), &mut Rng::new(7)).expect("init");
    Network::from_params(cfg, params).expect("network")
}

/// A fixed pool of random token batches (SPEC: random ids).
fn batches(rows: usize, steps: usize, pool: usize, rng: &mut Rng) -> Vec<Batch> {
    (0..pool)
        .map(|_| {
            let ids: Vec<i32> = (0..rows * (steps + 1)).map(|_| rng.below(V) as i32).collect();
            let (mut inputs, mut targets) = (Vec::new(), Vec::new());
            for r in 0..rows {
                let row = &ids[r * (steps + 1)..(r + 1) * (steps + 1)];
                inputs.extend_from_slice(&row[..steps]);
                targets.extend_from_slice(&row[1..]);
            }
            Batch {
                input: BatchInput::Tokens(inputs),
                targets: BatchTargets::PerStep(targets),
                rows,
                steps,
                lengths: None,
            }
        })
        .collect()
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
    n: usize,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) };
    Stats { median, min: v[0], max: v[n - 1], n }
}

/// Peak resident set size of this process so far, in MiB (Linux `VmHWM`), if readable.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Tokens/s of each timed train step.
fn train(cell: &str, embed: usize, hidden: usize, layers: usize, rows: usize, steps: usize, timed: usize) -> Vec<f64> {
    let mut net = network(cell, embed, hidden, layers);
    let opts = TrainOptions::from_json(&json!({"batch_size": rows, "seq_len": steps,
        "optimizer": {"type": "adam", "lr": 2e-3}}))
    .expect("options");
    let mut trainer = Trainer::new(&net, opts).expect("trainer");
    let pool = batches(rows, steps, 4, &mut Rng::new(1));
    let mut rates = Vec::with_capacity(timed);
    for k in 0..3 + timed {
        let batch = &pool[k % pool.len()];
        let start = Instant::now();
        let r = trainer.train_step(&mut net, batch, None).expect("train step");
        let secs = start.elapsed().as_secs_f64();
        black_box(r.loss);
        if k >= 3 {
            rates.push((rows * steps) as f64 / secs);
        }
    }
    rates
}

/// Per-step times (µs) of generation at `rows` sequences: one token in, logits out, argmax read
/// on the host and fed back, state carried.
fn generate(rows: usize, timed: usize) -> Vec<f64> {
    let net = network("lstm", 64, 256, 2);
    let mut state = net.zero_state(rows);
    let mut scratch = InferenceScratch::default();
    let mut logits = vec![0.0f32; rows * V];
    let mut rng = Rng::new(3);
    let mut tokens: Vec<i32> = (0..rows).map(|_| rng.below(V) as i32).collect();
    let mut times = Vec::with_capacity(timed);
    for k in 0..50 + timed {
        let start = Instant::now();
        net.feed(&tokens, rows, 1, &mut state, &mut scratch, &mut logits).expect("feed");
        for (r, tok) in tokens.iter_mut().enumerate() {
            *tok = argmax(&logits[r * V..(r + 1) * V]) as i32;
        }
        let us = start.elapsed().as_secs_f64() * 1e6;
        if k >= 50 {
            times.push(us);
        }
    }
    times
}

/// GFLOP/s of every GEMM backend on the shapes the standard configurations run, interleaved
/// (backend order rotates each round) so that load from other processes hits all alike.
fn gemm_shapes(threads: usize) {
    use rnn_core::kernels::gemm::{sgemm_with, Backend, GemmShape, MatMut, MatRef, Merge};
    use rnn_core::kernels::isa::Isa;
    // (name, m, n, k, A transposed, B transposed) as the engine calls them.
    let shapes: [(&str, usize, usize, usize, bool, bool); 13] = [
        ("rec-S [32x256]x[256x1024]^T", 32, 1024, 256, false, true),
        ("rec-M [64x512]x[512x2048]^T", 64, 2048, 512, false, true),
        ("rec-gen64 [64x256]x[256x1024]^T", 64, 1024, 256, false, true),
        ("dh-S [32x1024]x[1024x256]", 32, 256, 1024, false, false),
        ("dh-M [64x2048]x[2048x512]", 64, 512, 2048, false, false),
        ("proj-S [2048x64]x[64x1024]^T", 2048, 1024, 64, false, true),
        ("proj-M [8192x128]x[128x2048]^T", 8192, 2048, 128, false, true),
        ("head-S [2048x256]x[256x96]^T", 2048, 96, 256, false, true),
        ("head-gen64 [64x256]x[256x96]^T", 64, 96, 256, false, true),
        ("dW-S [1024x2048]^Tx[2048x256]", 1024, 256, 2048, true, false),
        ("dW-M [2048x8192]^Tx[8192x512]", 2048, 512, 8192, true, false),
        ("gemv [1x256]x[256x1024]^T", 1, 1024, 256, false, true),
        ("gemv-head [1x256]x[256x96]^T", 1, 96, 256, false, true),
    ];
    let mut rng = Rng::new(5);
    for (name, m, n, k, ta, tb) in shapes {
        let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.normal()).collect();
        let mut c = vec![0.0f32; m * n];
        let (rsa, csa) = if ta { (1, m) } else { (k, 1) };
        let (rsb, csb) = if tb { (1, k) } else { (n, 1) };
        let (shape, a_view, b_view) =
            (GemmShape { m, n, k }, MatRef { data: &a, rs: rsa, cs: csa }, MatRef { data: &b, rs: rsb, cs: csb });
        let mut backends = vec![Backend::MatrixMultiply, Backend::Faer(1), Backend::Packed(1)];
        if threads > 1 {
            backends.push(Backend::Packed(threads));
            backends.push(Backend::Faer(threads));
        }
        let flop = 2.0 * (m * n * k) as f64;
        let reps = ((2e7 / flop).ceil() as usize).max(1);
        let rounds = 15;
        let mut rates = vec![Vec::new(); backends.len()];
        for round in 0..rounds + 1 {
            for i in 0..backends.len() {
                let bi = (i + round) % backends.len();
                // Timed inside the pool, as the engine runs its kernels: one hop onto the pool
                // per measurement, not per product.
                let secs = rnn_core::parallel::install(|| {
                    let start = Instant::now();
                    for _ in 0..reps {
                        let c = MatMut { data: &mut c, rs: n, cs: 1 };
                        sgemm_with(backends[bi], shape, a_view, b_view, Merge::ACCUMULATE, c);
                    }
                    start.elapsed().as_secs_f64()
                });
                if round > 0 {
                    rates[bi].push(flop * reps as f64 / secs / 1e9);
                }
            }
        }
        // The packed GEMM with B packed beforehand, as the recurrences use their weights, on
        // every kernel set this CPU has, the sets taking turns within each round.
        let packed = rnn_core::kernels::packed::PackedB::new(k, n, &b, rsb, csb);
        let sets: Vec<Isa> = Isa::ALL.into_iter().filter(|isa| isa.available()).collect();
        let mut prepacked = Vec::new();
        for t in if threads > 1 { vec![1, threads] } else { vec![1] } {
            let mut r = vec![Vec::new(); sets.len()];
            for round in 0..rounds {
                for i in 0..sets.len() {
                    let si = (i + round) % sets.len();
                    let secs = rnn_core::parallel::install(|| {
                        let start = Instant::now();
                        for _ in 0..reps {
                            let source = rnn_core::kernels::packed::BSource::Packed(&packed);
                            let c = MatMut { data: &mut c, rs: n, cs: 1 };
                            rnn_core::kernels::packed::gemm_on(
                                sets[si],
                                shape,
                                a_view,
                                source,
                                Merge::ACCUMULATE,
                                c,
                                t,
                            );
                        }
                        start.elapsed().as_secs_f64()
                    });
                    r[si].push(flop * reps as f64 / secs / 1e9);
                }
            }
            for (isa, r) in sets.iter().zip(r) {
                let s = stats(r);
                prepacked.push(format!("Prepacked({t}, {}) {:.1} ({:.1}-{:.1})", isa.name(), s.median, s.min, s.max));
            }
        }
        black_box(&c);
        let cells: Vec<String> = prepacked
            .into_iter()
            .chain(backends.iter().zip(rates).map(|(b, r)| {
                let s = stats(r);
                format!("{b:?} {:.1} ({:.1}-{:.1})", s.median, s.min, s.max)
            }))
            .collect();
        println!("{name:<34} GFLOP/s median (min-max): {}", cells.join(" | "));
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut take = |flag: &str| -> Option<usize> {
        let i = args.iter().position(|a| a == flag)?;
        let v = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{flag} takes a number"));
        args.drain(i..=i + 1);
        Some(v)
    };
    let threads = take("--threads");
    let steps = take("--steps");
    let json_out = args.iter().any(|a| a == "--json");
    args.retain(|a| a != "--json");
    if let Some(n) = threads {
        rnn_core::parallel::set_threads(n);
    }
    let threads = rnn_core::parallel::threads();
    let mut configs = Vec::new();
    for a in &args {
        match a.as_str() {
            "all" => {
                configs.extend(["train-lstm-s", "train-gru-s", "train-rnn-s", "train-lstm-m", "gen-b1", "gen-b64"])
            }
            "train" => configs.extend(["train-lstm-s", "train-gru-s", "train-rnn-s", "train-lstm-m"]),
            "gen" => configs.extend(["gen-b1", "gen-b64"]),
            other => configs.push(Box::leak(other.to_string().into_boxed_str())),
        }
    }
    if configs.is_empty() {
        eprintln!("usage: speed <train-lstm-s|train-gru-s|train-rnn-s|train-lstm-m|gen-b1|gen-b64|train|gen|all>... [--threads N] [--steps N] [--json]");
        std::process::exit(2);
    }
    for cfg in configs {
        if cfg == "gemm" {
            gemm_shapes(threads);
            continue;
        }
        let (id, metric, unit, s) = match cfg {
            "train-lstm-s" => (
                "TRAIN-LSTM-S",
                "train_tokens_per_s",
                "tok/s",
                stats(train("lstm", 64, 256, 1, 32, 64, steps.unwrap_or(20))),
            ),
            "train-gru-s" => (
                "TRAIN-GRU-S",
                "train_tokens_per_s",
                "tok/s",
                stats(train("gru", 64, 256, 1, 32, 64, steps.unwrap_or(20))),
            ),
            "train-rnn-s" => (
                "TRAIN-RNN-S",
                "train_tokens_per_s",
                "tok/s",
                stats(train("rnn", 64, 256, 1, 32, 64, steps.unwrap_or(20))),
            ),
            "train-lstm-m" => (
                "TRAIN-LSTM-M",
                "train_tokens_per_s",
                "tok/s",
                stats(train("lstm", 128, 512, 2, 64, 128, steps.unwrap_or(20))),
            ),
            "gen-b1" => ("GEN-LSTM-b1", "us_per_token", "us/token", stats(generate(1, steps.unwrap_or(2000)))),
            "gen-b64" => {
                let per_step = generate(64, steps.unwrap_or(300));
                ("GEN-LSTM-b64", "tokens_per_s", "tok/s", stats(per_step.iter().map(|us| 64.0 * 1e6 / us).collect()))
            }
            other => {
                eprintln!("unknown config {other}");
                std::process::exit(2);
            }
        };
        let rss = peak_rss_mb().unwrap_or(f64::NAN);
        if json_out {
            println!(
                "{}",
                json!({"peer": "rnnkit", "variant": "engine", "config": id, "threads": threads, "metric": metric, "unit": unit,
                       "median": s.median, "min": s.min, "max": s.max, "n": s.n, "peak_rss_mb": rss})
            );
        } else {
            println!(
                "{id:<14} threads {threads}  median {:>10.1} {unit:<8}  min {:>10.1}  max {:>10.1}  n {:>4}  peak RSS {rss:.0} MiB",
                s.median, s.min, s.max, s.n
            );
        }
    }
}
