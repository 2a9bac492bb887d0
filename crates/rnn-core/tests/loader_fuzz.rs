//! The model-file loader over mutated files (property test, `proptest`): whatever the bytes, a
//! load never panics and either succeeds or returns a coded error naming the file. The mutants
//! start from a small checkpoint (parameters, tokenizer, Adam state, training metadata) and
//! mostly hit the header, where a changed digit becomes a wrong shape, offset or size.

use proptest::prelude::*;
use rnn_core::checkpoint::{load_checkpoint, save_checkpoint};
use rnn_core::config::ModelConfig;
use rnn_core::init::{init_params, InitConfig};
use rnn_core::io::read_tensors;
use rnn_core::model::network::Network;
use rnn_core::rng::Rng;
use rnn_core::train::{TrainOptions, Trainer};
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The bytes of the valid checkpoint every mutant starts from, and its header length.
fn base() -> &'static (Vec<u8>, usize) {
    static BASE: OnceLock<(Vec<u8>, usize)> = OnceLock::new();
    BASE.get_or_init(|| {
        let cfg = ModelConfig::from_json(
            &json!({"cell": "lstm", "vocab_size": 5, "embed_dim": 3, "hidden_size": 4, "num_layers": 1}),
        )
        .unwrap();
        let params = init_params(&cfg, &InitConfig::default(), &mut Rng::new(1)).unwrap();
        let net = Network::from_params(cfg, params).unwrap();
        let opts =
            TrainOptions::from_json(&json!({"batch_size": 2, "seq_len": 4, "optimizer": {"type": "adam", "lr": 0.01}}))
                .unwrap();
        let trainer = Trainer::new(&net, opts).unwrap();
        let path = dir().join("base.safetensors");
        let tok = r#"{"type": "char", "vocab": ["a", "b", "c", "d", "e"]}"#;
        save_checkpoint(&path, &net, Some(&trainer.state()), Some(tok), &[("note", "x")]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        (bytes, n)
    })
}

fn dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("rnnkit-loader-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    })
    .clone()
}

/// One change to the file; positions are fractions of the region they fall in.
#[derive(Debug, Clone)]
enum Mutation {
    /// Sets a byte of the header (the JSON) to `value`.
    HeaderByte(f64, u8),
    /// Replaces a digit of the header by `digit` (shapes, offsets, sizes, config numbers).
    HeaderDigit(f64, u8),
    /// Sets a byte anywhere.
    AnyByte(f64, u8),
    /// Sets the 8-byte header length.
    HeaderLen(u64),
    /// Cuts the file.
    Truncate(f64),
    /// Inserts bytes.
    Insert(f64, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (0.0..1.0f64, any::<u8>()).prop_map(|(p, v)| Mutation::HeaderByte(p, v)),
        4 => (0.0..1.0f64, 0u8..10).prop_map(|(p, d)| Mutation::HeaderDigit(p, d)),
        2 => (0.0..1.0f64, any::<u8>()).prop_map(|(p, v)| Mutation::AnyByte(p, v)),
        1 => prop_oneof![any::<u64>(), 0u64..4096].prop_map(Mutation::HeaderLen),
        1 => (0.0..1.0f64).prop_map(Mutation::Truncate),
        1 => (0.0..1.0f64, prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(p, b)| Mutation::Insert(p, b)),
    ]
}

fn at(p: f64, len: usize) -> usize {
    ((p * len as f64) as usize).min(len.saturating_sub(1))
}

fn apply(bytes: &mut Vec<u8>, header: usize, m: &Mutation) {
    let header = header.min(bytes.len().saturating_sub(8));
    match m {
        Mutation::HeaderByte(p, v) if header > 0 => bytes[8 + at(*p, header)] = *v,
        Mutation::HeaderDigit(p, d) => {
            let digits: Vec<usize> = (8..8 + header).filter(|&i| bytes[i].is_ascii_digit()).collect();
            if !digits.is_empty() {
                bytes[digits[at(*p, digits.len())]] = b'0' + d;
            }
        }
        Mutation::AnyByte(p, v) if !bytes.is_empty() => {
            let i = at(*p, bytes.len());
            bytes[i] = *v;
        }
        Mutation::HeaderLen(n) if bytes.len() >= 8 => bytes[..8].copy_from_slice(&n.to_le_bytes()),
        Mutation::Truncate(p) => bytes.truncate(at(*p, bytes.len())),
        Mutation::Insert(p, b) => {
            let i = at(*p, bytes.len());
            bytes.splice(i..i, b.iter().copied());
        }
        _ => {}
    }
}

const CODES: [&str; 5] =
    ["ERR_RNNKIT_FORMAT", "ERR_RNNKIT_IO", "ERR_RNNKIT_CONFIG", "ERR_RNNKIT_RANGE", "ERR_RNNKIT_SHAPE"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_model_files_load_or_are_refused_with_a_code_naming_the_file(
        mutations in prop::collection::vec(mutation(), 1..6)
    ) {
        static N: AtomicU64 = AtomicU64::new(0);
        let (good, header) = base();
        let mut bytes = good.clone();
        for m in &mutations {
            apply(&mut bytes, *header, m);
        }
        let path = dir().join(format!("mutant-{}.safetensors", N.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&path, &bytes).unwrap();
        let shown = path.display().to_string();
        // Both readers: the checkpoint loader (model + training state) and the generic one.
        let loaded = std::panic::catch_unwind(|| load_checkpoint(&path).map(|_| ()));
        let raw = std::panic::catch_unwind(|| read_tensors(&path).map(|_| ()));
        for (what, r) in [("load_checkpoint", loaded), ("read_tensors", raw)] {
            match r {
                Err(_) => prop_assert!(false, "{what} panicked on {mutations:?}"),
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    prop_assert!(CODES.contains(&e.code()), "{what}: code {} for {mutations:?}: {e}", e.code());
                    prop_assert!(e.to_string().contains(&shown), "{what}: no file named for {mutations:?}: {e}");
                }
            }
        }
        std::fs::remove_file(&path).unwrap();
    }
}
