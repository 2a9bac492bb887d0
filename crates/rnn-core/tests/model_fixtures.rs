//! The character models trained in PyTorch (`fixtures/models/`, docs/FORMAT.md): each loads,
//! reproduces its greedy continuations exactly, and gives the same held-out cross-entropy under
//! the stateful protocol within 1e-4.

use rnn_core::io::load_model;
use rnn_core::model::evaluate::evaluate_stream;
use rnn_core::model::inference::InferenceScratch;
use rnn_core::model::network::Network;
use rnn_core::model::objective::argmax;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models")
}

/// The char tokenizer of the file's metadata: token id i is the code point `vocab[i]`.
fn vocab(tokenizer_json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(tokenizer_json).unwrap();
    assert_eq!(v["type"], "char");
    v["vocab"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn encode(text: &str, index: &HashMap<String, i32>) -> Vec<i32> {
    text.chars().map(|c| index[&c.to_string()]).collect()
}

fn check(name: &str) {
    let dir = models_dir();
    let file = load_model(&dir.join(format!("{name}.safetensors"))).unwrap();
    let vocab = vocab(file.tokenizer.as_deref().unwrap());
    let index: HashMap<String, i32> = vocab.iter().enumerate().map(|(i, s)| (s.clone(), i as i32)).collect();
    let net = Network::from_params(file.config, file.params).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.expected.json"))).unwrap()).unwrap();

    // Held-out cross-entropy: one stream, state carried across chunks of 256 steps.
    let held = std::fs::read_to_string(dir.join(format!("{name}.held.txt"))).unwrap();
    let eval = evaluate_stream(&net, &encode(&held, &index), Some(1), 256, None).unwrap();
    let want = expected["eval_mean_ce_nats"].as_f64().unwrap();
    assert!((eval.loss.mean() - want).abs() < 1e-4, "{name}: cross-entropy {} vs PyTorch {want}", eval.loss.mean());
    assert_eq!(eval.loss.count, held.chars().count() - 1);

    // Greedy continuations: the prompt in one feed, then one token per step.
    let v = net.config.output_size;
    for g in expected["generations"].as_array().unwrap() {
        let prompt = encode(g["prompt"].as_str().unwrap(), &index);
        let mut state = net.zero_state(1);
        let mut scratch = InferenceScratch::default();
        let mut logits = vec![0.0; v];
        net.feed(&prompt, 1, prompt.len(), &mut state, &mut scratch, &mut logits).unwrap();
        let mut out = String::new();
        for _ in 0..200 {
            let next = argmax(&logits);
            out.push_str(&vocab[next]);
            net.feed(&[next as i32], 1, 1, &mut state, &mut scratch, &mut logits).unwrap();
        }
        assert_eq!(out, g["greedy"].as_str().unwrap(), "{name}: greedy continuation differs");
    }
}

#[test]
fn pride_and_prejudice_lstm_matches_pytorch() {
    check("pp_lstm");
}

#[test]
fn chinese_gru_matches_pytorch() {
    check("zh_gru");
}
