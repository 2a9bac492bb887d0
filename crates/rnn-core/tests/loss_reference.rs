//! Loss, head-side gradients and the gradient norm against the PyTorch language-model fixtures
//! (`fixtures/torch/lm_*.safetensors`, see docs/FORMAT.md):
//! - mean cross-entropy of the stored logits with ignored targets equals `config.loss_value`;
//! - `Σ_rows dlogits` equals PyTorch's `grad.head.bias` (the head bias gradient is exactly that);
//! - for the skip model, the dense backward of the embedded tokens gives `grad.skip.weight`;
//! - the f64 global norm of all `grad.*` equals `config.grad_global_norm`.

use rnn_core::clip::global_norm;
use rnn_core::io::read_tensors;
use rnn_core::layer::dense::{Dense, DenseGrads};
use rnn_core::layer::embedding::Embedding;
use rnn_core::loss::{cross_entropy, CrossEntropyOptions};
use std::path::PathBuf;

fn fixtures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/torch");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("lm_"))
        .collect();
    v.sort();
    assert!(v.len() >= 4, "expected the lm_* fixtures in {}", dir.display());
    v
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tol * b.abs().max(1.0), "{what}[{i}]: rnnkit {a}, torch {b}");
    }
}

#[test]
fn cross_entropy_and_head_gradients_match_pytorch() {
    for path in fixtures() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let f = read_tensors(&path).unwrap();
        let cfg: serde_json::Value = serde_json::from_str(&f.metadata["config"]).unwrap();
        let v = cfg["vocab_size"].as_u64().unwrap() as usize;
        let (logit_shape, logits) = f.f32("logits").unwrap();
        let (_, targets) = f.i64("targets").unwrap();
        let n = targets.len();
        assert_eq!(logit_shape.iter().product::<usize>(), n * v, "{name}");
        let mut d = vec![0.0f32; n * v];
        let opts = CrossEntropyOptions::default();
        let loss = cross_entropy(logits, v, &targets, &opts, Some(&mut d)).unwrap();
        let want = cfg["loss_value"].as_f64().unwrap();
        assert!((loss.mean() - want).abs() < 1e-5 * want, "{name}: loss {} vs {want}", loss.mean());
        assert_eq!(loss.count, targets.iter().filter(|&&t| t != -100).count());

        // head.bias gradient = Σ over positions of dlogits.
        let mut db = vec![0.0f32; v];
        for row in d.chunks_exact(v) {
            db.iter_mut().zip(row).for_each(|(a, b)| *a += b);
        }
        assert_close(&format!("{name} grad.head.bias"), &db, f.f32("grad.head.bias").unwrap().1, 1e-5);

        if cfg["skip"].as_bool().unwrap() {
            // logits += e W_skipᵀ with e = embed(tokens) in batch-major order [B·T, E]: embed the
            // B·T ids as B·T rows of one step each.
            let e_dim = cfg["embed_dim"].as_u64().unwrap() as usize;
            let (_, tokens) = f.i64("tokens").unwrap();
            let (_, table) = f.f32("param.embed.weight").unwrap();
            let emb = Embedding { vocab: v, dim: e_dim };
            let mut e = vec![0.0f32; n * e_dim];
            emb.forward(table, &tokens, n, 1, &mut e).unwrap();
            let (_, w_skip) = f.f32("param.skip.weight").unwrap();
            let dense = Dense { inputs: e_dim, outputs: v };
            let mut dw = vec![0.0f32; v * e_dim];
            dense.backward(&e, n, w_skip, &d, DenseGrads { dw: &mut dw, db: None, dx: None }).unwrap();
            assert_close(&format!("{name} grad.skip.weight"), &dw, f.f32("grad.skip.weight").unwrap().1, 1e-5);
        }

        let all: Vec<f32> =
            f.tensors.keys().filter(|k| k.starts_with("grad.")).flat_map(|k| f.f32(k).unwrap().1.to_vec()).collect();
        let want_norm = cfg["grad_global_norm"].as_f64().unwrap();
        assert!(
            (global_norm(&all) - want_norm).abs() < 1e-6 * want_norm,
            "{name}: norm {} vs {want_norm}",
            global_norm(&all)
        );
    }
}
