//! Parameter initialisation from a [`ModelConfig`] and the engine's [`Rng`].
//!
//! Schemes (`InitConfig::scheme`):
//! - `"pytorch"` (default), PyTorch's defaults: recurrent weights and biases U(-1/√H, 1/√H)
//!   (`nn.RNN/LSTM/GRU.reset_parameters`); embedding N(0, 1) (`nn.Embedding`); head and skip
//!   U(-1/√in, 1/√in) for weight and bias (`nn.Linear`: kaiming-uniform with a = √5 gives exactly
//!   this bound for the weight).
//! - `"xavier"`: Glorot uniform U(±√(6/(fan_in+fan_out))) per matrix, recurrent weights per gate
//!   block (`[H, in]` and `[H, H]`, as if each gate were its own layer), biases 0; the embedding
//!   stays N(0, 1) (it is a lookup, not a product with activations).
//!
//! `recurrent: "orthogonal"` then replaces every `weight_hh` gate block `[H, H]` with a random
//! orthogonal matrix (`torch.nn.init.orthogonal_`: QR of a Gaussian matrix with R's diagonal made
//! positive, which modified Gram–Schmidt gives directly). `forget_bias` (LSTM only) sets the `f`
//! rows of `bias_ih` to the value and those of `bias_hh` to 0, so the effective forget bias is
//! exactly the value.
//!
//! Draws happen in layout order, so a seed gives the same parameters on every platform.

use crate::config::{CellKind, ModelConfig};
use crate::error::{Error, Result};
use crate::params::Params;
use crate::rng::Rng;
use ndarray::{ArrayViewMut2, Axis, Ix2};
use serde_json::Value;
use std::sync::Arc;

/// The base scheme.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitScheme {
    #[default]
    Pytorch,
    Xavier,
}

/// How recurrent (`weight_hh`) matrices are drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecurrentInit {
    /// As the scheme says.
    #[default]
    Default,
    /// Orthogonal per gate block.
    Orthogonal,
}

/// Initialisation options; JSON `{"scheme": "pytorch" | "xavier", "recurrent": "default" |
/// "orthogonal", "forget_bias": 1.0}`, every field optional.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    #[serde(default)]
    pub scheme: InitScheme,
    #[serde(default)]
    pub recurrent: RecurrentInit,
    #[serde(default)]
    pub forget_bias: Option<f32>,
}

impl InitConfig {
    /// Parses the JSON form (checked against a model by [`InitConfig::validate`]).
    pub fn from_json(v: &Value) -> Result<Self> {
        serde_json::from_value(v.clone()).map_err(|e| Error::Config(format!("init: {e}")))
    }

    /// Checks the options against the model they initialise.
    pub fn validate(&self, model: &ModelConfig) -> Result<()> {
        if let Some(b) = self.forget_bias {
            if !b.is_finite() {
                return Err(Error::Range(format!("init.forget_bias: expected a finite number, got {b}")));
            }
            if model.cell != CellKind::Lstm {
                return Err(Error::Config(format!(
                    "init.forget_bias: only an LSTM has a forget gate, got cell \"{}\"",
                    model.cell.cell_name()
                )));
            }
        }
        Ok(())
    }
}

/// Fresh parameters for `model`, drawn from `rng` as `init` says.
pub fn init_params(model: &ModelConfig, init: &InitConfig, rng: &mut Rng) -> Result<Params> {
    model.validate()?;
    init.validate(model)?;
    let mut p = Params::zeros(Arc::new(model.layout()));
    let h = model.hidden_size;
    let specs = p.layout.specs().to_vec();
    for spec in &specs {
        match draw_for(&spec.name, &spec.shape, model, init) {
            Draw::Normal => p.view_mut(&spec.name).iter_mut().for_each(|v| *v = rng.normal()),
            Draw::Uniform(bound) => uniform(p.view_mut(&spec.name), bound, rng),
            Draw::Orthogonal => {
                // weight_hh [G·H, H]: gate g is rows g·H..(g+1)·H, one [H, H] block each.
                let mut w = p
                    .array_mut(&spec.name)
                    .into_dimensionality::<Ix2>()
                    .map_err(|e| Error::Shape(format!("{}: {e}", spec.name)))?;
                for block in w.axis_chunks_iter_mut(Axis(0), h) {
                    orthogonal_into(block, rng);
                }
            }
            Draw::Zero => {}
        }
    }
    if let Some(value) = init.forget_bias {
        for spec in &specs {
            let is_ih = spec.name.starts_with("rnn.bias_ih");
            if is_ih || spec.name.starts_with("rnn.bias_hh") {
                // LSTM gate rows are i, f, g, o: the f block is rows H..2H.
                let b = p.view_mut(&spec.name);
                b[h..2 * h].iter_mut().for_each(|v| *v = if is_ih { value } else { 0.0 });
            }
        }
    }
    Ok(p)
}

/// How one tensor is drawn.
enum Draw {
    /// N(0, 1).
    Normal,
    /// U(-bound, bound).
    Uniform(f64),
    /// Orthogonal `[H, H]` per gate block.
    Orthogonal,
    /// Left at zero.
    Zero,
}

/// The draw for tensor `name` of shape `shape` (the layout's names, docs/FORMAT.md).
fn draw_for(name: &str, shape: &[usize], model: &ModelConfig, init: &InitConfig) -> Draw {
    let h = model.hidden_size;
    let xavier = init.scheme == InitScheme::Xavier;
    let glorot = |fan_in: usize, fan_out: usize| Draw::Uniform((6.0 / (fan_in + fan_out) as f64).sqrt());
    if name == "embed.weight" {
        return Draw::Normal;
    }
    if let Some(rest) = name.strip_prefix("rnn.") {
        return if rest.starts_with("weight_hh") && init.recurrent == RecurrentInit::Orthogonal {
            Draw::Orthogonal
        } else if !xavier {
            Draw::Uniform(1.0 / (h as f64).sqrt())
        } else if rest.starts_with("bias_") {
            Draw::Zero
        } else {
            // Each gate block [H, in] is its own Glorot matrix.
            glorot(shape[1], h)
        };
    }
    // head.weight [out, in], head.bias [out], skip.weight [V, E]: nn.Linear's bound uses the
    // weight's fan-in for the bias too.
    let fan_in = if name == "head.bias" { model.directions() * h } else { shape[1] };
    match (xavier, name == "head.bias") {
        (false, _) => Draw::Uniform(1.0 / (fan_in as f64).sqrt()),
        (true, true) => Draw::Zero,
        (true, false) => glorot(fan_in, shape[0]),
    }
}

fn uniform(w: &mut [f32], bound: f64, rng: &mut Rng) {
    let b = bound as f32;
    w.iter_mut().for_each(|v| *v = rng.uniform_range(-b, b));
}

/// Writes a random orthogonal `[n, n]` matrix into `out`: modified Gram–Schmidt, in f64, over
/// the columns of a standard Gaussian matrix. MGS makes R's diagonal positive, which is the sign
/// convention that makes the result Haar-distributed (as `orthogonal_` does).
fn orthogonal_into(mut out: ArrayViewMut2<'_, f32>, rng: &mut Rng) {
    let n = out.nrows();
    debug_assert_eq!(out.ncols(), n);
    // q holds the finished columns, column-major [n columns][n].
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(n);
    while q.len() < n {
        let mut v: Vec<f64> = (0..n).map(|_| rng.normal() as f64).collect();
        for qi in &q {
            let r: f64 = qi.iter().zip(&v).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(qi).for_each(|(x, a)| *x -= r * a);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        // A Gaussian column inside the span of the previous ones has probability 0; should
        // rounding make it nearly so, draw that column again rather than divide by ~0.
        if norm > 1e-6 {
            v.iter_mut().for_each(|x| *x /= norm);
            q.push(v);
        }
    }
    for (j, col) in q.iter().enumerate() {
        for (i, &x) in col.iter().enumerate() {
            out[[i, j]] = x as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array2};
    use serde_json::json;

    fn model(cell: &str, h: usize, extra: Value) -> ModelConfig {
        let mut v = json!({"task": "language_model", "cell": cell, "vocab_size": 500, "embed_dim": 300,
            "hidden_size": h, "num_layers": 2, "skip": true});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        ModelConfig::from_json(&v).unwrap()
    }

    fn mean_std(v: &[f32]) -> (f64, f64) {
        let n = v.len() as f64;
        let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
        (m, var.sqrt())
    }

    /// Mean within 5 standard errors of 0, std within 3% of `std`, all values within `bound`.
    fn check_stats(name: &str, v: &[f32], std: f64, bound: Option<f64>) {
        let (m, s) = mean_std(v);
        assert!(m.abs() < 5.0 * std / (v.len() as f64).sqrt(), "{name}: mean {m}");
        assert!((s / std - 1.0).abs() < 0.03, "{name}: std {s}, expected {std}");
        if let Some(b) = bound {
            assert!(v.iter().all(|&x| (x as f64).abs() <= b), "{name}: value beyond {b}");
            let max = v.iter().fold(0f32, |a, &x| a.max(x.abs())) as f64;
            assert!(max > 0.99 * b, "{name}: max |value| {max} should approach the bound {b}");
        }
    }

    #[test]
    fn pytorch_default_distributions() {
        let m = model("lstm", 256, json!({}));
        let p = init_params(&m, &InitConfig::default(), &mut Rng::new(1)).unwrap();
        let k = 1.0 / 16.0;
        for name in ["rnn.weight_ih_l0", "rnn.weight_hh_l1", "rnn.bias_ih_l0"] {
            check_stats(name, p.view(name), k / 3f64.sqrt(), Some(k));
        }
        check_stats("embed.weight", p.view("embed.weight"), 1.0, None);
        let hb = 1.0 / 16.0;
        check_stats("head.weight", p.view("head.weight"), hb / 3f64.sqrt(), Some(hb));
        let sb = 1.0 / 300f64.sqrt();
        check_stats("skip.weight", p.view("skip.weight"), sb / 3f64.sqrt(), Some(sb));
    }

    #[test]
    fn xavier_bounds_and_zero_biases() {
        let m = model("gru", 200, json!({}));
        let p = init_params(&m, &InitConfig { scheme: InitScheme::Xavier, ..Default::default() }, &mut Rng::new(2))
            .unwrap();
        let b_ih = (6.0 / (300.0 + 200.0f64)).sqrt();
        check_stats("rnn.weight_ih_l0", p.view("rnn.weight_ih_l0"), b_ih / 3f64.sqrt(), Some(b_ih));
        let b_hh = (6.0 / 400f64).sqrt();
        check_stats("rnn.weight_hh_l0", p.view("rnn.weight_hh_l0"), b_hh / 3f64.sqrt(), Some(b_hh));
        let b_head = (6.0 / (200.0 + 500.0f64)).sqrt();
        check_stats("head.weight", p.view("head.weight"), b_head / 3f64.sqrt(), Some(b_head));
        for name in ["rnn.bias_ih_l0", "rnn.bias_hh_l1", "head.bias"] {
            assert!(p.view(name).iter().all(|&v| v == 0.0), "{name}");
        }
    }

    #[test]
    fn orthogonal_blocks_are_orthogonal_and_distinct() {
        let h = 64;
        let m = model("lstm", h, json!({}));
        let init = InitConfig { recurrent: RecurrentInit::Orthogonal, ..Default::default() };
        let p = init_params(&m, &init, &mut Rng::new(3)).unwrap();
        // [4H, H]: the i, f, g, o blocks [H, H] are rows 0..H, H..2H, ...
        let w = p.array("rnn.weight_hh_l0").into_dimensionality::<Ix2>().unwrap();
        assert_eq!(w.dim(), (4 * h, h));
        let eye = Array2::<f64>::eye(h);
        for (g, block) in w.axis_chunks_iter(Axis(0), h).enumerate() {
            let block = block.mapv(f64::from);
            let gram = block.dot(&block.t());
            for ((i, j), &dot) in gram.indexed_iter() {
                assert!((dot - eye[[i, j]]).abs() < 1e-5, "gate {g}: (W Wᵀ)[{i},{j}] = {dot}");
            }
        }
        assert_ne!(w.slice(s![..h, ..]), w.slice(s![h..2 * h, ..]), "gate blocks must be drawn independently");
        // The input weights keep the default scheme.
        check_stats("rnn.weight_ih_l0", p.view("rnn.weight_ih_l0"), 0.125 / 3f64.sqrt(), Some(0.125));
    }

    #[test]
    fn forget_bias_sets_the_f_block_only() {
        let h = 8;
        let m = model("lstm", h, json!({}));
        let init = InitConfig { forget_bias: Some(1.0), ..Default::default() };
        let p = init_params(&m, &init, &mut Rng::new(4)).unwrap();
        for l in 0..2 {
            let ih = p.view(&format!("rnn.bias_ih_l{l}"));
            let hh = p.view(&format!("rnn.bias_hh_l{l}"));
            assert!(ih[h..2 * h].iter().all(|&v| v == 1.0) && hh[h..2 * h].iter().all(|&v| v == 0.0));
            assert!(ih[..h].iter().all(|&v| v != 1.0 && v.abs() <= 1.0 / (h as f32).sqrt()));
        }
        let gru = model("gru", h, json!({}));
        let e = init_params(&gru, &init, &mut Rng::new(4)).unwrap_err().to_string();
        assert_eq!(e, "init.forget_bias: only an LSTM has a forget gate, got cell \"gru\"");
    }

    #[test]
    fn same_seed_same_parameters() {
        let m = model("rnn", 16, json!({"nonlinearity": "relu"}));
        let a = init_params(&m, &InitConfig::default(), &mut Rng::new(9)).unwrap();
        let b = init_params(&m, &InitConfig::default(), &mut Rng::new(9)).unwrap();
        let c = init_params(&m, &InitConfig::default(), &mut Rng::new(10)).unwrap();
        assert_eq!(a.data, b.data);
        assert_ne!(a.data, c.data);
    }

    #[test]
    fn config_json() {
        let c =
            InitConfig::from_json(&json!({"scheme": "xavier", "recurrent": "orthogonal", "forget_bias": 1.0})).unwrap();
        assert_eq!(
            c,
            InitConfig { scheme: InitScheme::Xavier, recurrent: RecurrentInit::Orthogonal, forget_bias: Some(1.0) }
        );
        assert_eq!(InitConfig::from_json(&json!({})).unwrap(), InitConfig::default());
        let e = InitConfig::from_json(&json!({"scheme": "he"})).unwrap_err().to_string();
        assert!(e.starts_with("init: unknown variant `he`"), "{e}");
        let e = InitConfig::from_json(&json!({"forgetbias": 1})).unwrap_err().to_string();
        assert!(e.contains("forgetbias"), "{e}");
    }
}
