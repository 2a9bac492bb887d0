//! The sequence-to-sequence network against PyTorch (fixtures/seq2seq, made by
//! scripts/fixtures/make_seq2seq_fixtures.py): logits, attention weights and loss within 1e-5,
//! every parameter's gradient within 1e-4, and the parameters after two Adam steps, for each
//! attention kind, with padded sources and targets (one target empty) in the batch. Set
//! `RNNKIT_SEQ2SEQ_FIXTURES` to check another generated set.

use rnn_core::io::{read_tensors, TensorData, TensorFile};
use rnn_core::model::seq2seq::{Seq2Seq, Seq2SeqCache, Seq2SeqConfig};
use rnn_core::optim::{Optimizer, OptimizerConfig};
use rnn_core::pairs::PairSet;
use rnn_core::params::Params;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const FORWARD_TOL: f32 = 1e-5;
const GRAD_TOL: f32 = 1e-4;

fn dir() -> PathBuf {
    match std::env::var_os("RNNKIT_SEQ2SEQ_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/seq2seq"),
    }
}

fn f32s<'a>(f: &'a TensorFile, name: &str) -> &'a [f32] {
    match &f.tensors.get(name).unwrap_or_else(|| panic!("{}: no tensor {name}", f.path)).data {
        TensorData::F32(v) => v,
        _ => panic!("{name}: expected F32"),
    }
}

fn ints(f: &TensorFile, name: &str) -> Vec<i64> {
    match &f.tensors[name].data {
        TensorData::I64(v) => v.clone(),
        _ => panic!("{name}: expected I64"),
    }
}

/// The largest absolute difference, checked against `tol`; names the worst entry.
fn compare(what: &str, got: &[f32], want: &[f32], tol: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let (i, d) = got.iter().zip(want).map(|(a, b)| (a - b).abs()).enumerate().fold((0, 0.0f32), |m, (i, d)| {
        if d > m.1 {
            (i, d)
        } else {
            m
        }
    });
    assert!(d <= tol, "{what}[{i}]: rnnkit {} vs PyTorch {} (|Δ| = {d:e} > {tol:e})", got[i], want[i]);
    d
}

/// Runs one fixture; returns the worst forward and gradient differences.
fn check(path: &Path) -> (f32, f32) {
    let f = read_tensors(path).unwrap();
    let name = path.display().to_string();
    let cfg = Seq2SeqConfig::from_json(&serde_json::from_str(&f.metadata["config"]).unwrap()).unwrap();
    let layout = Arc::new(cfg.layout());
    let mut p = Params::zeros(layout.clone());
    for spec in layout.specs() {
        p.view_mut(&spec.name).copy_from_slice(f32s(&f, &spec.name));
    }
    let mut net = Seq2Seq::from_params(cfg.clone(), p).unwrap();
    // The batch, as rows of ids.
    let (src, sl, tgt, tl) = (
        ints(&f, "input.source"),
        ints(&f, "input.source_lengths"),
        ints(&f, "input.target"),
        ints(&f, "input.target_lengths"),
    );
    let b = sl.len();
    let (ts, tt) = (src.len() / b, tgt.len() / b);
    let set = PairSet {
        source: (0..b).map(|r| src[r * ts..r * ts + sl[r] as usize].iter().map(|&x| x as i32).collect()).collect(),
        target: (0..b).map(|r| tgt[r * tt..r * tt + tl[r] as usize].iter().map(|&x| x as i32).collect()).collect(),
    };
    let rows: Vec<usize> = (0..b).collect();
    let batch = set.gather(&rows);
    let mut cache = Seq2SeqCache::default();
    let mut grads = Params::zeros(layout.clone());
    let loss = net.forward_backward(&batch, &mut cache, &mut grads).unwrap();
    let mut fwd = compare(&format!("{name}: loss"), &[loss.mean() as f32], f32s(&f, "output.loss"), FORWARD_TOL);
    // Logits: rnnkit's are time-major [(Tt+1)·B, V], the fixture's batch-first [B, Tt+1, V].
    let v = cfg.target_vocab;
    let logits = net.logits(&batch).unwrap();
    let mut batch_first = vec![0.0; logits.len()];
    for t in 0..tt + 1 {
        for r in 0..b {
            batch_first[(r * (tt + 1) + t) * v..(r * (tt + 1) + t + 1) * v]
                .copy_from_slice(&logits[(t * b + r) * v..(t * b + r + 1) * v]);
        }
    }
    fwd = fwd.max(compare(&format!("{name}: logits"), &batch_first, f32s(&f, "output.logits"), FORWARD_TOL));
    // Attention weights of the real (target, source) positions: fixture [B, Tt+1, Ts].
    let weights = net.attention_weights(&batch).unwrap();
    let want = f32s(&f, "output.attention");
    for r in 0..b {
        let (lt, ls) = (tl[r] as usize + 1, sl[r] as usize);
        let w: Vec<f32> =
            (0..lt).flat_map(|t| want[(r * (tt + 1) + t) * ts..(r * (tt + 1) + t) * ts + ls].to_vec()).collect();
        fwd = fwd.max(compare(&format!("{name}: attention row {r}"), &weights[r], &w, FORWARD_TOL));
    }
    let mut grad = 0.0f32;
    for spec in layout.specs() {
        grad = grad.max(compare(
            &format!("{name}: grad {}", spec.name),
            grads.view(&spec.name),
            f32s(&f, &format!("grad.{}", spec.name)),
            GRAD_TOL,
        ));
    }
    // Two Adam steps (lr 0.01, PyTorch defaults otherwise).
    let mut opt = Optimizer::new(
        &OptimizerConfig::from_json(&serde_json::json!({"type": "adam", "lr": 0.01})).unwrap(),
        layout.total(),
    )
    .unwrap();
    for step in 0..2 {
        if step > 0 {
            grads.zero();
            net.forward_backward(&batch, &mut cache, &mut grads).unwrap();
        }
        let g = grads.data.clone();
        opt.step(&mut net.params_mut().data, &g, 0.01).unwrap();
    }
    for spec in layout.specs() {
        grad = grad.max(compare(
            &format!("{name}: after two Adam steps {}", spec.name),
            net.params().view(&spec.name),
            f32s(&f, &format!("adam2.{}", spec.name)),
            GRAD_TOL,
        ));
    }
    (fwd, grad)
}

#[test]
fn every_fixture_matches_pytorch() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "expected the four committed fixtures, found {files:?}");
    let mut kinds = std::collections::BTreeSet::new();
    for path in &files {
        let (fwd, grad) = check(path);
        eprintln!("{}: forward {fwd:.1e}, gradients {grad:.1e}", path.display());
        let cfg: serde_json::Value = serde_json::from_str(&read_tensors(path).unwrap().metadata["config"]).unwrap();
        kinds.insert(cfg["attention"].as_str().unwrap().to_string());
    }
    assert_eq!(kinds.len(), 3, "every attention kind is covered: {kinds:?}");
}

/// The comparison fails on a wrong value: a fixture's gradient perturbed by 1e-3 is caught.
#[test]
#[should_panic(expected = "grad")]
fn a_wrong_gradient_fails_the_comparison() {
    let f = read_tensors(&dir().join("gru_additive_bi.safetensors")).unwrap();
    let want = f32s(&f, "grad.attn.v");
    let mut got = want.to_vec();
    got[0] += 1e-3;
    compare("grad attn.v", &got, want, GRAD_TOL);
}
