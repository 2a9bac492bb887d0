//! Parity with PyTorch `nn.RNN/LSTM/GRU` (forward values and every gradient) on the reference
//! fixtures `cell_*.safetensors` made by `reference/make_parity_fixtures.py` (INTEROP.md).
//!
//! Directory: `$RNNKIT_FIXTURES` if set, else `fixtures/torch` of the repository. Every cell
//! fixture found must be checked; an empty directory or a fixture this test cannot read fails.

use rnn_core::config::{CellKind, InputKind, ModelConfig, Pooling, Task};
use rnn_core::layer::recurrent::{RecurrentStack, StackCache, StackState};
use rnn_core::params::Params;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Forward agreement: absolute, or relative for values above 1 (INTEROP.md).
const FORWARD_TOL: f32 = 1e-5;
/// Gradient agreement.
const GRAD_TOL: f32 = 1e-4;

fn fixture_dir() -> PathBuf {
    match std::env::var_os("RNNKIT_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/torch"),
    }
}

/// A fixture file: its JSON config and its float32 tensors (shape, values).
struct Fixture {
    config: serde_json::Value,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Fixture {
    fn load(path: &Path) -> Result<Fixture, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("read: {e}"))?;
        let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| format!("header: {e}"))?;
        let config_text = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("config"))
            .ok_or("no __metadata__.config")?;
        let config = serde_json::from_str(config_text).map_err(|e| format!("config JSON: {e}"))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| format!("tensors: {e}"))?;
        let mut tensors = HashMap::new();
        for name in st.names() {
            let view = st.tensor(name).map_err(|e| format!("{name}: {e}"))?;
            if view.dtype() != Dtype::F32 {
                return Err(format!("{name}: expected F32, got {:?}", view.dtype()));
            }
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            tensors.insert(name.to_string(), (view.shape().to_vec(), values));
        }
        Ok(Fixture { config, tensors })
    }

    fn tensor(&self, name: &str) -> Result<&(Vec<usize>, Vec<f32>), String> {
        self.tensors.get(name).ok_or_else(|| format!("missing tensor {name}"))
    }

    fn size(&self, key: &str) -> Result<usize, String> {
        self.config[key].as_u64().map(|v| v as usize).ok_or_else(|| format!("config.{key} missing"))
    }
}

/// `[B, T, X]` → `[T, B, X]` (and back: the same map with b and t swapped).
fn swap_first_two(v: &[f32], d0: usize, d1: usize, width: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for i in 0..d0 {
        for j in 0..d1 {
            let (src, dst) = ((i * d1 + j) * width, (j * d0 + i) * width);
            out[dst..dst + width].copy_from_slice(&v[src..src + width]);
        }
    }
    out
}

/// Largest violation of `|got − want| ≤ tol · max(1, |want|)`, as a ratio (≤ 1 passes).
fn compare(what: &str, got: &[f32], want: &[f32], tol: f32, report: &mut Vec<String>) -> f32 {
    if got.len() != want.len() {
        report.push(format!("{what}: length {} vs {}", got.len(), want.len()));
        return f32::INFINITY;
    }
    let mut worst = (0.0f32, 0usize);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ratio = (g - w).abs() / (tol * w.abs().max(1.0));
        if ratio.is_nan() || ratio > worst.0 {
            worst = (ratio, i);
        }
    }
    if worst.0.is_nan() || worst.0 > 1.0 {
        let i = worst.1;
        report.push(format!("{what}[{i}]: got {} want {} (error {:.2}× tolerance)", got[i], want[i], worst.0));
    }
    worst.0
}

/// Checks one fixture; returns the worst forward and gradient error ratios, or the mismatches.
fn check_fixture(fx: &Fixture) -> Result<(f32, f32), String> {
    let cell_name = fx.config["cell"].as_str().ok_or("config.cell missing")?;
    let cell = CellKind::parse(cell_name, None).map_err(|e| e.to_string())?;
    let (layers, b, t) = (fx.size("num_layers")?, fx.size("batch")?, fx.size("seq_len")?);
    let (input, hidden) = (fx.size("input_size")?, fx.size("hidden_size")?);
    let bidirectional = fx.config["bidirectional"].as_bool().ok_or("config.bidirectional missing")?;
    let cfg = ModelConfig {
        task: Task::Tag,
        cell,
        input: InputKind::Dense { input_size: input },
        hidden_size: hidden,
        num_layers: layers,
        bidirectional,
        skip: false,
        dropout: 0.0,
        output_size: 1,
        pooling: Pooling::Last,
        per_step: false,
    };
    cfg.validate().map_err(|e| e.to_string())?;
    let d = cfg.directions();
    let layout = Arc::new(cfg.layout());
    let mut params = Params::zeros(layout.clone());
    let rnn_specs: Vec<_> = layout.specs().iter().filter(|s| s.name.starts_with("rnn.")).cloned().collect();
    for spec in &rnn_specs {
        let (shape, values) = fx.tensor(&format!("param.{}", &spec.name[4..]))?;
        if shape != &spec.shape {
            return Err(format!("{}: fixture shape {shape:?}, model {:?}", spec.name, spec.shape));
        }
        params.view_mut(&spec.name).copy_from_slice(values);
    }
    let fixture_params = fx.tensors.keys().filter(|k| k.starts_with("param.")).count();
    if fixture_params != rnn_specs.len() {
        return Err(format!("fixture has {fixture_params} parameters, the model {}", rnn_specs.len()));
    }

    let x = swap_first_two(&fx.tensor("x")?.1, b, t, input);
    let state = StackState {
        h: fx.tensor("h0")?.1.clone(),
        c: cell.has_cell_state().then(|| fx.tensor("c0").map(|c| c.1.clone())).transpose()?,
    };
    let stack = RecurrentStack::new(&cfg);
    let mut cache = StackCache::default();
    let (y, final_state) = stack
        .forward(&params, &x, t, b, None, Some(&state), None, &mut cache)
        .map_err(|e| format!("forward: {e}"))?;

    let mut report = Vec::new();
    let width = d * hidden;
    let mut fwd = compare("y", &swap_first_two(&y, t, b, width), &fx.tensor("y")?.1, FORWARD_TOL, &mut report);
    fwd = fwd.max(compare("h_n", &final_state.h, &fx.tensor("h_n")?.1, FORWARD_TOL, &mut report));
    if let Some(c_n) = &final_state.c {
        fwd = fwd.max(compare("c_n", c_n, &fx.tensor("c_n")?.1, FORWARD_TOL, &mut report));
    }

    // Loss sum(y·Ry) + sum(h_n·Rh) (+ sum(c_n·Rc)): its gradients w.r.t. the outputs are R.
    let dy = swap_first_two(&fx.tensor("Ry")?.1, b, t, width);
    let dstate = StackState {
        h: fx.tensor("Rh")?.1.clone(),
        c: cell.has_cell_state().then(|| fx.tensor("Rc").map(|c| c.1.clone())).transpose()?,
    };
    let mut grads = Params::zeros(layout);
    let (dx, d_initial) = stack
        .backward(&params, &cache, &dy, Some(&dstate), &mut grads)
        .map_err(|e| format!("backward: {e}"))?;
    let mut bwd = compare("grad.x", &swap_first_two(&dx, t, b, input), &fx.tensor("grad.x")?.1, GRAD_TOL, &mut report);
    bwd = bwd.max(compare("grad.h0", &d_initial.h, &fx.tensor("grad.h0")?.1, GRAD_TOL, &mut report));
    if let Some(dc0) = &d_initial.c {
        bwd = bwd.max(compare("grad.c0", dc0, &fx.tensor("grad.c0")?.1, GRAD_TOL, &mut report));
    }
    for spec in &rnn_specs {
        let name = format!("grad.{}", &spec.name[4..]);
        bwd = bwd.max(compare(&name, grads.view(&spec.name), &fx.tensor(&name)?.1, GRAD_TOL, &mut report));
    }
    if report.is_empty() {
        Ok((fwd, bwd))
    } else {
        Err(report.join("; "))
    }
}

#[test]
fn every_cell_fixture_matches_pytorch() {
    let dir = fixture_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixture directory {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("cell_") && name.ends_with(".safetensors")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cell_*.safetensors in {}", dir.display());
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy();
        match Fixture::load(path).and_then(|fx| check_fixture(&fx)) {
            Ok((fwd, bwd)) => println!("{name}: worst error / tolerance: forward {fwd:.3}, gradients {bwd:.3}"),
            Err(msg) => failures.push(format!("{name}: {msg}")),
        }
    }
    assert!(failures.is_empty(), "{} of {} fixtures fail:\n{}", failures.len(), files.len(), failures.join("\n"));
}
