//! Optimizers over flat buffers: SGD (momentum, dampening, Nesterov, weight decay), Adam, AdamW,
//! RMSprop (centered, momentum) and Adagrad, each following `torch.optim`'s single-tensor CPU code
//! operation by operation (hyper-parameters and derived scalars in f64, rounded to f32 where
//! PyTorch multiplies a float32 tensor by a Python float), so that rnnkit and PyTorch agree to
//! float32 rounding (`fixtures/optim/`).
//!
//! Parameters, gradients and every state slot share one flat layout (`params.rs`): a step is one
//! loop over slices. State is exported as named flat buffers `optim.<slot>` (PyTorch's state key
//! names) plus the step count, and imported back, so a resumed run is bit-identical.

pub mod adagrad;
pub mod adam;
pub mod rmsprop;
pub mod schedule;
pub mod sgd;

use crate::error::{check_len, Error, Result};
use serde_json::Value;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig, AdamWConfig};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use sgd::{Sgd, SgdConfig};

/// An optimizer's hyper-parameters: the JSON form is `{"type": "sgd" | "adam" | "adamw" |
/// "rmsprop" | "adagrad", ...fields}` with PyTorch's names and defaults.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum OptimizerConfig {
    Sgd(SgdConfig),
    /// Adam; `weight_decay` is an L2 term added to the gradient.
    Adam(AdamConfig),
    /// AdamW; `weight_decay` is decoupled (the parameter shrinks by `lr·weight_decay` per step).
    /// PyTorch's default `weight_decay` for AdamW is 0.01.
    #[serde(rename = "adamw")]
    AdamW(AdamWConfig),
    #[serde(rename = "rmsprop")]
    RmsProp(RmsPropConfig),
    Adagrad(AdagradConfig),
}

impl OptimizerConfig {
    /// Parses and validates the JSON form; errors name the field and the value.
    pub fn from_json(v: &Value) -> Result<Self> {
        let cfg: OptimizerConfig =
            serde_json::from_value(v.clone()).map_err(|e| Error::Config(format!("optimizer: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The JSON form (all fields, defaults included).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("optimizer configs contain only numbers and booleans")
    }

    /// Checks every hyper-parameter's range.
    pub fn validate(&self) -> Result<()> {
        match self {
            OptimizerConfig::Sgd(c) => c.validate(),
            OptimizerConfig::Adam(c) => c.validate(),
            OptimizerConfig::AdamW(c) => AdamConfig::from(c.clone()).validate(),
            OptimizerConfig::RmsProp(c) => c.validate(),
            OptimizerConfig::Adagrad(c) => c.validate(),
        }
    }

    /// The base learning rate (what a schedule scales).
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Sgd(c) => c.lr,
            OptimizerConfig::Adam(c) => c.lr,
            OptimizerConfig::AdamW(c) => c.lr,
            OptimizerConfig::RmsProp(c) => c.lr,
            OptimizerConfig::Adagrad(c) => c.lr,
        }
    }

    /// The learning rate used when none is given: PyTorch's customary starting points
    /// (SGD 0.1, Adagrad 0.01, the adaptive methods 2e-3).
    pub fn default_lr(kind: &str) -> f64 {
        match kind {
            "sgd" => 0.1,
            "adagrad" => 0.01,
            _ => 2e-3,
        }
    }

    /// The `type` name of the JSON form.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd(_) => "sgd",
            OptimizerConfig::Adam(_) => "adam",
            OptimizerConfig::AdamW(_) => "adamw",
            OptimizerConfig::RmsProp(_) => "rmsprop",
            OptimizerConfig::Adagrad(_) => "adagrad",
        }
    }
}

/// An optimizer's state as named flat buffers (`optim.<slot>`, each as long as the parameters)
/// and the number of steps taken.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerState {
    pub step: u64,
    pub slots: Vec<(String, Vec<f32>)>,
}

/// An optimizer with its state, for a parameter buffer of fixed length.
#[derive(Debug, Clone)]
pub enum Optimizer {
    Sgd(Sgd),
    /// Adam and AdamW (the config says which).
    Adam(Adam),
    RmsProp(RmsProp),
    Adagrad(Adagrad),
}

impl Optimizer {
    /// A fresh optimizer for `n` parameters (state as PyTorch initialises it).
    pub fn new(config: &OptimizerConfig, n: usize) -> Result<Self> {
        config.validate()?;
        Ok(match config {
            OptimizerConfig::Sgd(c) => Optimizer::Sgd(Sgd::new(c.clone(), n)),
            OptimizerConfig::Adam(c) => Optimizer::Adam(Adam::new(c.clone(), false, n)),
            OptimizerConfig::AdamW(c) => Optimizer::Adam(Adam::new(c.clone().into(), true, n)),
            OptimizerConfig::RmsProp(c) => Optimizer::RmsProp(RmsProp::new(c.clone(), n)),
            OptimizerConfig::Adagrad(c) => Optimizer::Adagrad(Adagrad::new(c.clone(), n)),
        })
    }

    /// The configuration this optimizer was made from.
    pub fn config(&self) -> OptimizerConfig {
        match self {
            Optimizer::Sgd(o) => OptimizerConfig::Sgd(o.config.clone()),
            Optimizer::Adam(o) if o.decoupled => OptimizerConfig::AdamW(o.config.clone().into()),
            Optimizer::Adam(o) => OptimizerConfig::Adam(o.config.clone()),
            Optimizer::RmsProp(o) => OptimizerConfig::RmsProp(o.config.clone()),
            Optimizer::Adagrad(o) => OptimizerConfig::Adagrad(o.config.clone()),
        }
    }

    /// Number of parameters this optimizer updates.
    pub fn len(&self) -> usize {
        match self {
            Optimizer::Sgd(o) => o.n,
            Optimizer::Adam(o) => o.n,
            Optimizer::RmsProp(o) => o.n,
            Optimizer::Adagrad(o) => o.n,
        }
    }

    /// Whether the parameter buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        match self {
            Optimizer::Sgd(o) => o.step,
            Optimizer::Adam(o) => o.step,
            Optimizer::RmsProp(o) => o.step,
            Optimizer::Adagrad(o) => o.step,
        }
    }

    /// One update of `params` from `grads` with learning rate `lr` (the schedule's value for this
    /// step; the config's `lr` is only the base). Gradients are not checked for finiteness here:
    /// clipping (`clip.rs`) and the loss check report non-finite values before a step.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f32) -> Result<()> {
        let n = self.len();
        check_len("params", params.len(), n)?;
        check_len("grads", grads.len(), n)?;
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::Range(format!("lr: expected a finite number >= 0, got {lr}")));
        }
        let lr = lr as f64;
        match self {
            Optimizer::Sgd(o) => o.step(params, grads, lr),
            Optimizer::Adam(o) => o.step(params, grads, lr),
            Optimizer::RmsProp(o) => o.step(params, grads, lr),
            Optimizer::Adagrad(o) => o.step(params, grads, lr),
        }
        Ok(())
    }

    fn slots(&self) -> Vec<(&'static str, &Vec<f32>)> {
        match self {
            Optimizer::Sgd(o) => o.slots(),
            Optimizer::Adam(o) => o.slots(),
            Optimizer::RmsProp(o) => o.slots(),
            Optimizer::Adagrad(o) => o.slots(),
        }
    }

    fn slots_mut(&mut self) -> Vec<(&'static str, &mut Vec<f32>)> {
        match self {
            Optimizer::Sgd(o) => o.slots_mut(),
            Optimizer::Adam(o) => o.slots_mut(),
            Optimizer::RmsProp(o) => o.slots_mut(),
            Optimizer::Adagrad(o) => o.slots_mut(),
        }
    }

    /// The state to checkpoint: `optim.<slot>` buffers (PyTorch's slot names, e.g.
    /// `optim.exp_avg`, `optim.exp_avg_sq`, `optim.momentum_buffer`) and the step count.
    pub fn export_state(&self) -> OptimizerState {
        OptimizerState {
            step: self.steps(),
            slots: self.slots().into_iter().map(|(k, v)| (format!("optim.{k}"), v.clone())).collect(),
        }
    }

    /// [`Optimizer::export_state`] into `into`, reusing its buffers (no allocation once sized):
    /// the copy taken before each update, to put back if the update diverges.
    pub fn save_state_into(&self, into: &mut OptimizerState) {
        let slots = self.slots();
        let same = into.slots.len() == slots.len()
            && into
                .slots
                .iter()
                .zip(&slots)
                .all(|((k, v), (name, s))| k.strip_prefix("optim.") == Some(*name) && v.len() == s.len());
        if same {
            for ((_, dst), (_, src)) in into.slots.iter_mut().zip(&slots) {
                dst.copy_from_slice(src);
            }
            into.step = self.steps();
        } else {
            *into = self.export_state();
        }
    }

    /// The first value `compare(slot, same slot of before)` reports across the state's slots
    /// (`before` from [`Optimizer::save_state_into`]), e.g. one an update made non-finite.
    pub fn first_made_non_finite(
        &self,
        before: &OptimizerState,
        compare: impl Fn(&[f32], &[f32]) -> Option<f32>,
    ) -> Option<f32> {
        self.slots().into_iter().zip(&before.slots).find_map(|((_, now), (_, old))| compare(now, old))
    }

    /// Restores a state from [`Optimizer::export_state`] of an optimizer with the same type and
    /// length; every slot must be present with the right length, and no unknown slot may appear.
    pub fn import_state(&mut self, state: &OptimizerState) -> Result<()> {
        let n = self.len();
        let name = self.config().name();
        let mut slots = self.slots_mut();
        for (key, _) in &state.slots {
            if !slots.iter().any(|(k, _)| format!("optim.{k}") == *key) {
                return Err(Error::Format(format!(
                    "optimizer state: slot \"{key}\" does not belong to a {name} optimizer"
                )));
            }
        }
        // Validate everything before touching anything, so a failed import changes nothing.
        let mut sources = Vec::with_capacity(slots.len());
        for (k, _) in slots.iter() {
            let full = format!("optim.{k}");
            let src = state.slots.iter().find(|(key, _)| *key == full).ok_or_else(|| {
                Error::Format(format!("optimizer state: missing slot \"{full}\" for a {name} optimizer"))
            })?;
            check_len(&full, src.1.len(), n)?;
            sources.push(&src.1);
        }
        for ((_, dst), src) in slots.iter_mut().zip(sources) {
            dst.copy_from_slice(src);
        }
        match self {
            Optimizer::Sgd(o) => o.step = state.step,
            Optimizer::Adam(o) => o.step = state.step,
            Optimizer::RmsProp(o) => o.step = state.step,
            Optimizer::Adagrad(o) => o.step = state.step,
        }
        Ok(())
    }
}

/// Range checks shared by the configs: `name` must be finite and inside the described range.
pub(crate) fn check_range(name: &str, v: f64, ok: bool, expected: &str) -> Result<()> {
    if !v.is_finite() || !ok {
        return Err(Error::Range(format!("{name}: expected {expected}, got {v}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_json_round_trip_with_defaults() {
        let c = OptimizerConfig::from_json(&json!({"type": "adamw", "lr": 0.001})).unwrap();
        match &c {
            OptimizerConfig::AdamW(a) => {
                let a = AdamConfig::from(a.clone());
                assert_eq!(a.weight_decay, 0.01, "PyTorch's AdamW default weight decay");
                assert_eq!(a.betas, [0.9, 0.999]);
            }
            other => panic!("expected adamw, got {other:?}"),
        }
        assert_eq!(OptimizerConfig::from_json(&c.to_json()).unwrap(), c);
        let adam = OptimizerConfig::from_json(&json!({"type": "adam", "lr": 0.001})).unwrap();
        assert_eq!(adam, OptimizerConfig::Adam(AdamConfig { lr: 0.001, ..AdamConfig::default() }));
    }

    #[test]
    fn config_errors_name_field_and_value() {
        let cases = [
            (json!({"type": "sgd", "lr": 0.0}), "lr: expected a finite number > 0, got 0"),
            (json!({"type": "sgd", "lr": -1.0}), "got -1"),
            (json!({"type": "adam", "lr": 0.1, "betas": [0.9, 1.0]}), "betas[1]: expected a number in [0, 1), got 1"),
            (json!({"type": "adam", "lr": 0.1, "eps": -1e-8}), "eps:"),
            (json!({"type": "rmsprop", "lr": 0.1, "alpha": 1.5}), "alpha:"),
            (json!({"type": "sgd", "lr": 0.1, "nesterov": true}), "nesterov"),
            (json!({"type": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.5, "nesterov": true}), "dampening"),
            (json!({"type": "adagrad", "lr": 0.1, "lr_decay": -0.1}), "lr_decay:"),
            (json!({"type": "adam", "lr": 0.1, "betaz": [0.9, 0.9]}), "betaz"),
            (json!({"type": "lion", "lr": 0.1}), "lion"),
            (json!({"type": "adam"}), "lr"),
        ];
        for (v, needle) in cases {
            let e = OptimizerConfig::from_json(&v).unwrap_err().to_string();
            assert!(e.contains(needle), "{v}: error {e:?} should contain {needle:?}");
        }
    }

    #[test]
    fn step_checks_lengths_and_lr() {
        let mut o =
            Optimizer::new(&OptimizerConfig::from_json(&json!({"type": "adam", "lr": 0.1})).unwrap(), 3).unwrap();
        let mut p = vec![0.0; 3];
        let e = o.step(&mut p, &[0.0; 2], 0.1).unwrap_err().to_string();
        assert_eq!(e, "grads: expected length 3, got 2");
        let e = o.step(&mut p, &[0.0; 3], f32::NAN).unwrap_err().to_string();
        assert!(e.starts_with("lr: expected a finite number >= 0"), "{e}");
        assert_eq!(o.steps(), 0, "a refused step must not advance the state");
    }

    #[test]
    fn import_refuses_wrong_slots_and_lengths_without_changing_state() {
        let cfg = OptimizerConfig::from_json(&json!({"type": "adam", "lr": 0.1})).unwrap();
        let mut o = Optimizer::new(&cfg, 2).unwrap();
        let mut p = vec![1.0, 2.0];
        o.step(&mut p, &[0.5, -0.5], 0.1).unwrap();
        let before = o.export_state();
        let mut bad = before.clone();
        bad.slots[1].1.pop();
        assert!(o.import_state(&bad).unwrap_err().to_string().contains("optim.exp_avg_sq: expected length 2, got 1"));
        let mut foreign = before.clone();
        foreign.slots.push(("optim.momentum_buffer".into(), vec![0.0; 2]));
        assert!(o.import_state(&foreign).unwrap_err().to_string().contains("optim.momentum_buffer"));
        let mut missing = before.clone();
        missing.slots.remove(0);
        assert!(o.import_state(&missing).unwrap_err().to_string().contains("missing slot \"optim.exp_avg\""));
        assert_eq!(o.export_state(), before);
    }
}
