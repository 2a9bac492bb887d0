//! Every optimizer against `torch.optim` (fixtures/optim/optim_reference.json, see its README):
//! 5 steps on a 6-element parameter, checking the parameter after each step and the final state
//! slots, within 1e-6 relative. Also checks that export → import resumes bit-identically.

use rnn_core::optim::{Optimizer, OptimizerConfig};
use serde_json::Value;

fn load() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/optim/optim_reference.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let tol = 1e-6 * b.abs().max(1e-3);
        assert!((a - b).abs() <= tol, "{what}[{i}]: rnnkit {a:e}, torch {b:e}, diff {:e}", (a - b).abs());
    }
}

#[test]
fn every_optimizer_matches_torch_for_five_steps() {
    let fixture = load();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 15, "fixture has {} cases", cases.len());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let cfg = OptimizerConfig::from_json(&case["config"]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut p = floats(&case["params0"]);
        let mut opt = Optimizer::new(&cfg, p.len()).unwrap();
        for (s, (g, after)) in
            case["grads"].as_array().unwrap().iter().zip(case["after"].as_array().unwrap()).enumerate()
        {
            let lr = case["lrs"][s].as_f64().unwrap() as f32;
            opt.step(&mut p, &floats(g), lr).unwrap();
            assert_close(&format!("{name} step {} params", s + 1), &p, &floats(after));
        }
        let state = opt.export_state();
        let want = case["state"].as_object().unwrap();
        for (k, v) in want {
            if k == "step" {
                assert_eq!(state.step as f64, v.as_f64().unwrap(), "{name}: step count");
                continue;
            }
            let slot = state.slots.iter().find(|(n, _)| *n == format!("optim.{k}"));
            let slot = slot.unwrap_or_else(|| panic!("{name}: no slot optim.{k} in {:?}", state.slots));
            assert_close(&format!("{name} state {k}"), &slot.1, &floats(v));
        }
        let torch_slots = want.keys().filter(|k| *k != "step").count();
        assert_eq!(
            state.slots.len(),
            torch_slots,
            "{name}: slots {:?}",
            state.slots.iter().map(|s| &s.0).collect::<Vec<_>>()
        );
    }
}

#[test]
fn export_import_resumes_bit_identically() {
    let fixture = load();
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let cfg = OptimizerConfig::from_json(&case["config"]).unwrap();
        let grads: Vec<Vec<f32>> = case["grads"].as_array().unwrap().iter().map(floats).collect();
        let mut p = floats(&case["params0"]);
        let mut a = Optimizer::new(&cfg, p.len()).unwrap();
        for g in &grads[..2] {
            a.step(&mut p, g, 0.01).unwrap();
        }
        // Resume from a round trip through the config's JSON and the exported state.
        let cfg2 = OptimizerConfig::from_json(&a.config().to_json()).unwrap();
        let mut b = Optimizer::new(&cfg2, p.len()).unwrap();
        b.import_state(&a.export_state()).unwrap();
        let mut q = p.clone();
        for g in &grads[2..] {
            a.step(&mut p, g, 0.01).unwrap();
            b.step(&mut q, g, 0.01).unwrap();
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&p), bits(&q), "{name}: resumed parameters differ");
        assert_eq!(a.export_state(), b.export_state(), "{name}: resumed state differs");
    }
}

/// A checkpoint through a model file: optimizer slots as `optim.*` tensors and the step count in
/// the `training` metadata; the run continued from the file equals the uninterrupted run bit for
/// bit.
#[test]
fn resume_through_a_checkpoint_file_is_bit_identical() {
    use rnn_core::config::ModelConfig;
    use rnn_core::init::{init_params, InitConfig};
    use rnn_core::io::{load_model, save_model, SaveOptions};
    use rnn_core::optim::OptimizerState;
    use rnn_core::rng::Rng;

    let model = ModelConfig::from_json(&serde_json::json!({"cell": "gru", "vocab_size": 9,
        "embed_dim": 4, "hidden_size": 5, "num_layers": 1}))
    .unwrap();
    let cfg = OptimizerConfig::from_json(&serde_json::json!({"type": "adamw", "lr": 0.01, "amsgrad": true})).unwrap();
    let mut params = init_params(&model, &InitConfig::default(), &mut Rng::new(5)).unwrap();
    let n = params.data.len();
    let mut grad_rng = Rng::new(6);
    let grads: Vec<Vec<f32>> = (0..6).map(|_| (0..n).map(|_| grad_rng.normal()).collect()).collect();
    let mut opt = Optimizer::new(&cfg, n).unwrap();
    for g in &grads[..3] {
        opt.step(&mut params.data, g, 0.01).unwrap();
    }
    let dir = std::env::temp_dir().join(format!("rnnkit-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ckpt.safetensors");
    let state = opt.export_state();
    let training = serde_json::json!({"step": state.step, "optimizer": cfg.to_json()}).to_string();
    let opts = SaveOptions {
        training: Some(&training),
        tensors: state.slots.iter().map(|(k, v)| (k.as_str(), vec![v.len()], &v[..])).collect(),
        ..Default::default()
    };
    save_model(&path, &model, &params, &opts).unwrap();

    let file = load_model(&path).unwrap();
    let meta: serde_json::Value = serde_json::from_str(file.training.as_deref().unwrap()).unwrap();
    let mut resumed = Optimizer::new(&OptimizerConfig::from_json(&meta["optimizer"]).unwrap(), n).unwrap();
    let slots = file.extra.iter().map(|(k, (_, v))| (k.clone(), v.clone())).collect();
    resumed.import_state(&OptimizerState { step: meta["step"].as_u64().unwrap(), slots }).unwrap();
    let mut p2 = file.params.data.clone();
    for g in &grads[3..] {
        opt.step(&mut params.data, g, 0.01).unwrap();
        resumed.step(&mut p2, g, 0.01).unwrap();
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&params.data), bits(&p2));
    assert_eq!(opt.export_state(), resumed.export_state());
    std::fs::remove_dir_all(&dir).unwrap();
}
