//! Parity with PyTorch on the reference fixtures made by `scripts/fixtures/make_parity_fixtures.py`
//! (docs/FORMAT.md): `nn.RNN/LSTM/GRU` cells (forward values and every gradient, `kind: "cell"`) and
//! the reference language model (logits, loss, every gradient, and the parameters after three
//! clipped steps of SGD-Nesterov, Adam, AdamW and RMSprop, `kind: "lm"`).
//!
//! Directory: `$RNNKIT_FIXTURES` if set, else `fixtures/torch` of the repository. Every
//! `.safetensors` file found must be checked; an empty directory, a file this test cannot read or
//! a fixture of an unknown kind fails.

use ndarray::{ArrayViewD, Dimension, IxDyn};
use rnn_core::batch::{Batch, BatchInput, BatchTargets};
use rnn_core::config::{CellKind, InputKind, ModelConfig, Pooling, Task};
use rnn_core::io::{read_tensors, TensorData, TensorFile};
use rnn_core::layer::recurrent::{RecurrentStack, SeqBatch, StackCache, StackState};
use rnn_core::model::network::{ForwardCache, Network};
use rnn_core::model::objective::batch_loss;
use rnn_core::optim::OptimizerConfig;
use rnn_core::params::Params;
use rnn_core::train::{TrainOptions, Trainer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Forward agreement: absolute, or relative for values above 1 (docs/FORMAT.md).
const FORWARD_TOL: f32 = 1e-5;
/// Gradient agreement.
const GRAD_TOL: f32 = 1e-4;

fn fixture_dir() -> PathBuf {
    match std::env::var_os("RNNKIT_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/torch"),
    }
}

/// A fixture file: its JSON config, its float32 tensors (shape, values) and its integer tensors.
struct Fixture {
    config: serde_json::Value,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    ints: HashMap<String, (Vec<usize>, Vec<i64>)>,
}

impl Fixture {
    fn load(path: &Path) -> Result<Fixture, String> {
        let file: TensorFile = read_tensors(path).map_err(|e| e.to_string())?;
        let config_text = file.metadata.get("config").ok_or("no __metadata__.config")?;
        let config = serde_json::from_str(config_text).map_err(|e| format!("config JSON: {e}"))?;
        let (mut tensors, mut ints) = (HashMap::new(), HashMap::new());
        for (name, t) in file.tensors {
            match t.data {
                TensorData::F32(v) => {
                    tensors.insert(name, (t.shape, v));
                }
                TensorData::I64(v) => {
                    ints.insert(name, (t.shape, v));
                }
                _ => return Err(format!("{name}: expected F32 or I64")),
            }
        }
        Ok(Fixture { config, tensors, ints })
    }

    fn tensor(&self, name: &str) -> Result<&(Vec<usize>, Vec<f32>), String> {
        self.tensors.get(name).ok_or_else(|| format!("missing tensor {name}"))
    }

    fn ids(&self, name: &str) -> Result<Vec<i32>, String> {
        let (_, v) = self.ints.get(name).ok_or_else(|| format!("missing integer tensor {name}"))?;
        Ok(v.iter().map(|&x| x as i32).collect())
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

/// [`compare`] for a named parameter or gradient: the shapes must be PyTorch's, and the worst
/// entry is named by its tensor index (`[row, col]` of `[G·H, in]`: row / H is the gate), which
/// says more than a flat offset.
fn compare_tensor(
    what: &str,
    got: ArrayViewD<'_, f32>,
    want: &(Vec<usize>, Vec<f32>),
    tol: f32,
    report: &mut Vec<String>,
) -> f32 {
    let (shape, values) = want;
    let want = match ArrayViewD::from_shape(IxDyn(shape), values) {
        Ok(w) if w.shape() == got.shape() => w,
        _ => {
            report.push(format!("{what}: shape {:?} vs fixture {shape:?} ({} values)", got.shape(), values.len()));
            return f32::INFINITY;
        }
    };
    let mut worst: (f32, Option<(Vec<usize>, f32, f32)>) = (0.0, None);
    // Both row-major: the logical orders agree.
    for ((at, &g), &w) in got.indexed_iter().zip(want.iter()) {
        let ratio = (g - w).abs() / (tol * w.abs().max(1.0));
        if ratio.is_nan() || ratio > worst.0 {
            worst = (ratio, Some((at.slice().to_vec(), g, w)));
        }
    }
    if let (ratio, Some((at, g, w))) = &worst {
        if ratio.is_nan() || *ratio > 1.0 {
            report.push(format!("{what}{at:?}: got {g} want {w} (error {ratio:.2}× tolerance)"));
        }
    }
    worst.0
}

#[test]
fn compare_tensor_names_the_worst_entry_by_its_index_and_checks_shapes() {
    // [2, 3]: flat 4 is row 1, column 1; its error 0.5 / (1e-4 · 4) beats flat 1's 0.1 / 1e-4.
    let want = (vec![2, 3], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let mut got = want.1.clone();
    let mut report = Vec::new();
    let view = |v: &[f32]| ArrayViewD::from_shape(IxDyn(&[2, 3]), v).unwrap().to_owned();
    assert!(compare_tensor("w", view(&got).view(), &want, 1e-4, &mut report) <= 1.0 && report.is_empty());
    got[4] += 0.5;
    got[1] += 0.1;
    assert!(compare_tensor("w", view(&got).view(), &want, 1e-4, &mut report) > 1.0);
    assert_eq!(report, ["w[1, 1]: got 4.5 want 4 (error 1250.00× tolerance)"]);
    let transposed = (vec![3, 2], want.1.clone());
    assert_eq!(compare_tensor("w", view(&want.1).view(), &transposed, 1e-4, &mut report), f32::INFINITY);
    assert!(report[1].contains("shape [2, 3] vs fixture [3, 2]"), "{report:?}");
}

/// Checks one cell fixture; returns the worst forward and gradient error ratios, or the mismatches.
fn check_cell(fx: &Fixture) -> Result<(f32, f32), String> {
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
        speech: None,
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
        .forward(&params, SeqBatch { x: &x, steps: t, batch: b, lengths: None }, Some(&state), None, &mut cache)
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
    let (dx, d_initial) =
        stack.backward(&params, &mut cache, &dy, Some(&dstate), &mut grads).map_err(|e| format!("backward: {e}"))?;
    let mut bwd = compare("grad.x", &swap_first_two(&dx, t, b, input), &fx.tensor("grad.x")?.1, GRAD_TOL, &mut report);
    bwd = bwd.max(compare("grad.h0", &d_initial.h, &fx.tensor("grad.h0")?.1, GRAD_TOL, &mut report));
    if let Some(dc0) = &d_initial.c {
        bwd = bwd.max(compare("grad.c0", dc0, &fx.tensor("grad.c0")?.1, GRAD_TOL, &mut report));
    }
    for spec in &rnn_specs {
        let name = format!("grad.{}", &spec.name[4..]);
        bwd = bwd.max(compare_tensor(&name, grads.array(&spec.name), fx.tensor(&name)?, GRAD_TOL, &mut report));
    }
    if report.is_empty() {
        Ok((fwd, bwd))
    } else {
        Err(report.join("; "))
    }
}

/// Checks one language-model fixture: logits, loss, gradients, then three clipped steps of each
/// optimizer from the same initial parameters.
fn check_lm(fx: &Fixture) -> Result<(f32, f32), String> {
    let cell =
        CellKind::parse(fx.config["cell"].as_str().ok_or("config.cell missing")?, None).map_err(|e| e.to_string())?;
    let (v, e, h, l) = (fx.size("vocab_size")?, fx.size("embed_dim")?, fx.size("hidden_size")?, fx.size("num_layers")?);
    let (b, t) = (fx.size("batch")?, fx.size("seq_len")?);
    let cfg = ModelConfig {
        task: Task::LanguageModel,
        cell,
        input: InputKind::Tokens { vocab_size: v, embed_dim: e },
        hidden_size: h,
        num_layers: l,
        bidirectional: false,
        skip: fx.config["skip"].as_bool().unwrap_or(false),
        dropout: 0.0,
        output_size: v,
        pooling: Pooling::Last,
        per_step: true,
        speech: None,
    };
    let mut initial = Params::zeros(Arc::new(cfg.layout()));
    let specs = initial.layout.specs().to_vec();
    for spec in &specs {
        let (shape, values) = fx.tensor(&format!("param.{}", spec.name))?;
        if shape != &spec.shape {
            return Err(format!("{}: fixture shape {shape:?}, model {:?}", spec.name, spec.shape));
        }
        initial.view_mut(&spec.name).copy_from_slice(values);
    }
    let fixture_params = fx.tensors.keys().filter(|k| k.starts_with("param.")).count();
    if fixture_params != specs.len() {
        return Err(format!("fixture has {fixture_params} parameters, the model {}", specs.len()));
    }
    let batch = Batch {
        input: BatchInput::Tokens(fx.ids("tokens")?),
        targets: BatchTargets::PerStep(fx.ids("targets")?),
        rows: b,
        steps: t,
        lengths: None,
    };
    let net = Network::from_params(cfg.clone(), initial.clone()).map_err(|e| e.to_string())?;
    let mut cache = ForwardCache::default();
    let (logits, _) = net.forward(&batch, None, None, &mut cache).map_err(|e| format!("forward: {e}"))?;
    let mut report = Vec::new();
    let mut fwd =
        compare("logits", &swap_first_two(&logits, t, b, v), &fx.tensor("logits")?.1, FORWARD_TOL, &mut report);
    let mut dlogits = vec![0.0; logits.len()];
    let loss = batch_loss(&logits, v, &batch, None, Some(&mut dlogits)).map_err(|e| e.to_string())?;
    let want_loss = fx.config["loss_value"].as_f64().ok_or("config.loss_value missing")? as f32;
    fwd = fwd.max(compare("loss", &[loss.sum.mean() as f32], &[want_loss], FORWARD_TOL, &mut report));
    let mut grads = Params::zeros(initial.layout.clone());
    net.backward(&mut cache, &dlogits, None, &mut grads).map_err(|e| format!("backward: {e}"))?;
    let mut bwd = 0.0f32;
    for spec in &specs {
        let name = format!("grad.{}", spec.name);
        bwd = bwd.max(compare_tensor(&name, grads.array(&spec.name), fx.tensor(&name)?, GRAD_TOL, &mut report));
    }

    let optimizers = fx.config["optimizers"].as_object().ok_or("config.optimizers missing")?;
    let clip = fx.config["clip_max_norm"].as_f64().ok_or("config.clip_max_norm missing")? as f32;
    for (name, hyper) in optimizers {
        let mut json = hyper.clone();
        json["type"] = serde_json::Value::String(name.clone());
        let optimizer = OptimizerConfig::from_json(&json).map_err(|e| format!("{name}: {e}"))?;
        let options =
            TrainOptions { optimizer, clip_norm: Some(clip), batch_size: b, seq_len: t, ..TrainOptions::default() };
        let mut net = Network::from_params(cfg.clone(), initial.clone()).map_err(|e| e.to_string())?;
        let mut trainer = Trainer::new(&net, options).map_err(|e| e.to_string())?;
        let want_losses =
            fx.config["losses_before_each_step"][name].as_array().ok_or("losses_before_each_step missing")?;
        for (step, want) in want_losses.iter().enumerate() {
            let r = trainer.train_step(&mut net, &batch, None).map_err(|e| format!("{name} step {step}: {e}"))?;
            let want = want.as_f64().ok_or("loss not a number")? as f32;
            fwd = fwd.max(compare(
                &format!("{name} loss before step {}", step + 1),
                &[r.loss.mean() as f32],
                &[want],
                GRAD_TOL,
                &mut report,
            ));
        }
        for spec in &specs {
            let key = format!("after3.{name}.{}", spec.name);
            bwd =
                bwd.max(compare_tensor(&key, net.params().array(&spec.name), fx.tensor(&key)?, GRAD_TOL, &mut report));
        }
    }
    if report.is_empty() {
        Ok((fwd, bwd))
    } else {
        Err(report.join("; "))
    }
}

#[test]
fn every_fixture_matches_pytorch() {
    let dir = fixture_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixture directory {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .safetensors fixtures in {}", dir.display());
    let mut failures = Vec::new();
    let mut kinds = HashMap::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy();
        let result = Fixture::load(path).and_then(|fx| {
            let kind = fx.config["kind"].as_str().unwrap_or("").to_string();
            *kinds.entry(kind.clone()).or_insert(0) += 1;
            match kind.as_str() {
                "cell" => check_cell(&fx),
                "lm" => check_lm(&fx),
                other => Err(format!("unknown fixture kind {other:?}: this test cannot check it")),
            }
        });
        match result {
            Ok((fwd, bwd)) => {
                println!("{name}: worst error / tolerance: forward {fwd:.3}, gradients {bwd:.3}")
            }
            Err(msg) => failures.push(format!("{name}: {msg}")),
        }
    }
    println!("checked {} fixtures: {kinds:?}", files.len());
    assert!(failures.is_empty(), "{} of {} fixtures fail:\n{}", failures.len(), files.len(), failures.join("\n"));
}
