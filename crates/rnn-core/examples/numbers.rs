//! Trains one sequence-to-sequence model on the three directions of `data/numbers-train.jsonl`
//! (English number words → digits, Chinese numerals → digits, digits → English words) and
//! reports exact match per direction, with greedy and beam decoding, on held-out numbers: every
//! pair of a seeded 2 % of the distinct numbers is kept out of training, so the model is judged
//! on numbers it has never seen in any direction.
//!
//!     cargo run --release -p rnn-core --example numbers -- [epochs] [hidden] [embed] [batch] [lr] [word|char] [data file]
//!
//! Defaults: 8 epochs, hidden size 128, embeddings of 64, batches of 64 pairs, Adam at 2e-3
//! decaying by a cosine to a tenth (fit's loop), the repository's data file. The tokens (`word`) are the word
//! tokenizer's with `splitDigits` and `splitCjk`: every digit and ideograph one token, other runs
//! of non-space characters (`thirty-seven`) whole; `char` reads Unicode code points instead.

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

/// Whether `c` is a token on its own: a digit or a CJK ideograph.
fn single(c: char) -> bool {
    c.is_ascii_digit() || ('\u{4e00}'..='\u{9fff}').contains(&c) || c == '\u{3007}'
}

/// The tokens of `s`: digits and CJK ideographs one each, other runs of non-space characters
/// (words such as `thirty-seven`) whole; `chars` splits every character.
fn tokens(s: &str, chars: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in s.chars() {
        if chars || single(c) || c.is_whitespace() {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            if chars || !c.is_whitespace() {
                out.push(c.to_string());
            }
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// A token vocabulary; ids `reserved..` in sorted order.
struct Vocab {
    ids: BTreeMap<String, i32>,
    tokens: Vec<String>,
    reserved: usize,
    chars: bool,
}

impl Vocab {
    fn new(texts: impl Iterator<Item = String>, reserved: usize, chars: bool) -> Vocab {
        let set: BTreeSet<String> = texts.flat_map(|t| tokens(&t, chars)).collect();
        let tokens: Vec<String> = set.into_iter().collect();
        let ids = tokens.iter().enumerate().map(|(i, c)| (c.clone(), (i + reserved) as i32)).collect();
        Vocab { ids, tokens, reserved, chars }
    }
    fn encode(&self, s: &str) -> Vec<i32> {
        tokens(s, self.chars).iter().map(|c| self.ids[c]).collect()
    }
    /// The text of `ids`: tokens joined by spaces, except between two digits or ideographs.
    fn decode(&self, ids: &[u32]) -> String {
        let mut s = String::new();
        for t in ids.iter().filter_map(|&i| self.tokens.get((i as usize).checked_sub(self.reserved)?)) {
            let glue = self.chars || s.chars().last().is_none_or(single) && t.chars().all(single);
            if !s.is_empty() && !glue {
                s.push(' ');
            }
            s.push_str(t);
        }
        s
    }
    fn len(&self) -> usize {
        self.tokens.len() + self.reserved
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, name: &str, default: f64| args.get(i).map_or(default, |a| a.parse().expect(name));
    let epochs = arg(1, "epochs: a number", 8.0) as u64;
    let hidden = arg(2, "hidden: an integer", 128.0) as usize;
    let embed = arg(3, "embed: an integer", 64.0) as usize;
    let batch = arg(4, "batch: an integer", 64.0) as usize;
    let lr = arg(5, "lr: a number", 2e-3);
    let chars = args.get(6).is_some_and(|a| a == "char");
    let path = args
        .get(7)
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
    let src = Vocab::new(rows.iter().map(|r| r.0.clone()), 0, chars);
    let tgt = Vocab::new(rows.iter().map(|r| r.1.clone()), 2, chars);
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
        embed_dim: embed,
        hidden_size: hidden,
        num_layers: 1,
        bidirectional: true,
        attention: AttentionKind::General,
        attention_size: hidden,
        bos: 0,
        eos: 1,
    };
    let mut net = Seq2Seq::init(cfg, &mut Rng::new(1)).unwrap();
    // fit's loop: Adam, the rate decaying by a cosine to a tenth over the run, gradient norm
    // clipped at 5.
    let total = epochs * train.len().div_ceil(batch) as u64;
    let options = TrainOptions::from_json(&serde_json::json!({
        "batch_size": batch, "seed": 7, "epochs": epochs, "clip_norm": 5.0, "log_every": 200,
        "optimizer": {"type": "adam", "lr": lr},
        "schedule": {"type": "cosine", "t_max": total, "eta_min": lr / 10.0}}))
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
