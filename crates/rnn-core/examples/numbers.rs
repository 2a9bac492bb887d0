//! Trains one sequence-to-sequence model on the three directions of `data/numbers-train.jsonl`
//! (English number words → digits, Chinese numerals → digits, digits → English words) and
//! reports exact match per direction, with greedy and beam decoding, on held-out numbers: every
//! pair of a seeded 2 % of the distinct numbers is kept out of training, so the model is judged
//! on numbers it has never seen in any direction.
//!
//!     cargo run --release -p rnn-core --example numbers -- [minutes] [hidden] [data file]
//!
//! Defaults: 8 minutes of training, hidden size 128, the repository's data file. Characters
//! (Unicode code points) are the tokens of both sides.

use rnn_core::beam::BeamConfig;
use rnn_core::config::CellKind;
use rnn_core::layer::attention::AttentionKind;
use rnn_core::model::seq2seq::{Seq2Seq, Seq2SeqConfig};
use rnn_core::model::seq2seq_train::Seq2SeqTrainer;
use rnn_core::pairs::PairSet;
use rnn_core::rng::Rng;
use rnn_core::train::{TrainEvent, TrainOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// A character vocabulary; ids `reserved..` in order of first appearance.
struct Chars {
    ids: BTreeMap<char, i32>,
    chars: Vec<char>,
    reserved: usize,
}

impl Chars {
    fn new(texts: impl Iterator<Item = String>, reserved: usize) -> Chars {
        let set: BTreeSet<char> = texts.flat_map(|t| t.chars().collect::<Vec<_>>()).collect();
        let chars: Vec<char> = set.into_iter().collect();
        let ids = chars.iter().enumerate().map(|(i, &c)| (c, (i + reserved) as i32)).collect();
        Chars { ids, chars, reserved }
    }
    fn encode(&self, s: &str) -> Vec<i32> {
        s.chars().map(|c| self.ids[&c]).collect()
    }
    fn decode(&self, ids: &[u32]) -> String {
        ids.iter().filter_map(|&i| self.chars.get((i as usize).checked_sub(self.reserved)?)).collect()
    }
    fn len(&self) -> usize {
        self.chars.len() + self.reserved
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let minutes: f64 = args.get(1).map_or(8.0, |a| a.parse().expect("minutes: a number"));
    let hidden: usize = args.get(2).map_or(128, |a| a.parse().expect("hidden: an integer"));
    let path = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| format!("{}/../../data/numbers-train.jsonl", env!("CARGO_MANIFEST_DIR")));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let rows: Vec<(String, String, String)> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            let s = |k: &str| v[k].as_str().expect("a string field").to_string();
            (s("source"), s("target"), s("task"))
        })
        .collect();
    // The number of a pair is its digit side.
    let number = |r: &(String, String, String)| if r.2 == "num2en" { r.0.clone() } else { r.1.clone() };
    let numbers: BTreeSet<String> = rows.iter().map(number).collect();
    let mut held: Vec<String> = numbers.into_iter().collect();
    Rng::new(2026).shuffle(&mut held);
    let held: BTreeSet<String> = held[..held.len() / 50].iter().cloned().collect();
    let (test_rows, train_rows): (Vec<_>, Vec<_>) = rows.iter().partition(|r| held.contains(&number(r)));
    let src = Chars::new(rows.iter().map(|r| r.0.clone()), 0);
    let tgt = Chars::new(rows.iter().map(|r| r.1.clone()), 2);
    let set = |rows: &[&(String, String, String)]| PairSet {
        source: rows.iter().map(|r| src.encode(&r.0)).collect(),
        target: rows.iter().map(|r| tgt.encode(&r.1)).collect(),
    };
    let train = set(&train_rows);
    let test = set(&test_rows);
    println!(
        "{} pairs: {} train, {} test ({} held-out numbers); vocab {} → {}",
        rows.len(),
        train.len(),
        test.len(),
        held.len(),
        src.len(),
        tgt.len()
    );
    let cfg = Seq2SeqConfig {
        cell: CellKind::Gru,
        source_vocab: src.len(),
        target_vocab: tgt.len(),
        embed_dim: 64,
        hidden_size: hidden,
        num_layers: 1,
        bidirectional: true,
        attention: AttentionKind::General,
        attention_size: hidden,
        bos: 0,
        eos: 1,
    };
    let mut net = Seq2Seq::init(cfg, &mut Rng::new(1)).unwrap();
    // fit's loop: Adam at 2e-3, gradient norm clipped at 5, until the time budget is spent.
    let options = TrainOptions::from_json(&serde_json::json!({
        "batch_size": 64, "seed": 7, "time_limit": minutes * 60.0, "clip_norm": 5.0, "log_every": 200,
        "optimizer": {"type": "adam", "lr": 2e-3}}))
    .unwrap();
    let mut trainer = Seq2SeqTrainer::new(&net, options).unwrap();
    let start = Instant::now();
    let mut report = |e: TrainEvent| {
        if let TrainEvent::Step { step, epoch, loss, elapsed, .. } = e {
            println!("epoch {epoch} step {step} loss {loss:.4} ({elapsed:.0} s)");
        }
    };
    let mut no_checkpoint = |_: &Seq2Seq, _: &Seq2SeqTrainer| -> rnn_core::Result<String> { unreachable!() };
    let history =
        trainer.fit(&mut net, &train, None, &AtomicBool::new(false), &mut report, &mut no_checkpoint).unwrap();
    let step = history.steps_done;
    let trained = start.elapsed().as_secs_f64();
    println!("trained {step} steps in {trained:.0} s");
    let max_tokens = |len: usize| 12 * len + 10;
    let beam = BeamConfig { beams: 4, max_tokens: 1, length_penalty: 0.6, stop_tokens: vec![] };
    for (name, decode) in [("greedy", None), ("beam 4", Some(&beam))] {
        let t0 = Instant::now();
        let mut correct: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let all: Vec<usize> = (0..test.len()).collect();
        for chunk in all.chunks(256) {
            let b = test.gather(chunk);
            let out = match decode {
                None => net.greedy(&b.source, b.rows, b.source_steps, &b.source_lengths, &max_tokens).unwrap(),
                Some(cfg) => net
                    .beam(&b.source, b.source_steps, &b.source_lengths, &max_tokens, cfg, &AtomicBool::new(false))
                    .unwrap(),
            };
            for (&r, o) in chunk.iter().zip(&out) {
                let e = correct.entry(test_rows[r].2.clone()).or_default();
                e.0 += (tgt.decode(o) == test_rows[r].1) as usize;
                e.1 += 1;
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        for (task, (c, n)) in &correct {
            println!("{name}: {task}: {c}/{n} = {:.2} % exact", 100.0 * *c as f64 / *n as f64);
        }
        println!("{name}: decoded {} inputs in {secs:.2} s", test.len());
    }
}
