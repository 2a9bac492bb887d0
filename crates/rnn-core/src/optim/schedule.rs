//! Learning-rate schedules, as a closed form `lr_at(step)` of the number of optimizer steps
//! already taken (0 for the first step), so a resumed run needs no scheduler state.
//!
//! JSON: `{"type": "constant" | "step" | "exponential" | "cosine", ...fields, "warmup_steps": W}`.
//! - `step`: `lr·gamma^floor(s / step_size)` (PyTorch `StepLR`).
//! - `exponential`: `lr·gamma^s` (`ExponentialLR`).
//! - `cosine`: `eta_min + (lr - eta_min)·(1 + cos(π·s/t_max))/2` for s ≤ t_max (PyTorch
//!   `CosineAnnealingLR`'s closed form), then `eta_min`: PyTorch's formula would rise again after
//!   t_max; a run that outlives its schedule should not silently restart its learning rate.
//! - warm-up (any type): for s < W, `main(0)·(s+1)/W`, and afterwards `main(s - W)`, so the
//!   main schedule starts where the warm-up ends.

use crate::error::{Error, Result};
use serde_json::Value;

/// The shape of the schedule after warm-up.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ScheduleKind {
    // A struct variant (not a unit one) so that unknown fields are refused here too.
    Constant {},
    Step {
        step_size: u64,
        gamma: f64,
    },
    Exponential {
        gamma: f64,
    },
    Cosine {
        t_max: u64,
        #[serde(default)]
        eta_min: f64,
    },
}

/// A schedule: its kind plus an optional linear warm-up.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleConfig {
    pub kind: ScheduleKind,
    pub warmup_steps: u64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig { kind: ScheduleKind::Constant {}, warmup_steps: 0 }
    }
}

impl ScheduleConfig {
    /// Parses and validates the JSON form; errors name the field and the value.
    pub fn from_json(v: &Value) -> Result<Self> {
        let mut obj = v
            .as_object()
            .cloned()
            .ok_or_else(|| Error::Config(format!("schedule: expected a JSON object, got {v}")))?;
        let warmup_steps = match obj.remove("warmup_steps") {
            None | Some(Value::Null) => 0,
            Some(x) => x.as_u64().ok_or_else(|| {
                Error::Config(format!("schedule.warmup_steps: expected a non-negative integer, got {x}"))
            })?,
        };
        let kind: ScheduleKind =
            serde_json::from_value(Value::Object(obj)).map_err(|e| Error::Config(format!("schedule: {e}")))?;
        let cfg = ScheduleConfig { kind, warmup_steps };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(&self.kind).expect("schedule kinds contain only numbers");
        v["warmup_steps"] = Value::from(self.warmup_steps);
        v
    }

    pub fn validate(&self) -> Result<()> {
        let gamma_ok = |g: f64| -> Result<()> {
            if !(g.is_finite() && g > 0.0 && g <= 1.0) {
                return Err(Error::Range(format!("schedule.gamma: expected a number in (0, 1], got {g}")));
            }
            Ok(())
        };
        match self.kind {
            ScheduleKind::Constant {} => {}
            ScheduleKind::Step { step_size, gamma } => {
                if step_size == 0 {
                    return Err(Error::Range("schedule.step_size: expected an integer >= 1, got 0".into()));
                }
                gamma_ok(gamma)?;
            }
            ScheduleKind::Exponential { gamma } => gamma_ok(gamma)?,
            ScheduleKind::Cosine { t_max, eta_min } => {
                if t_max == 0 {
                    return Err(Error::Range("schedule.t_max: expected an integer >= 1, got 0".into()));
                }
                if !(eta_min.is_finite() && eta_min >= 0.0) {
                    return Err(Error::Range(format!(
                        "schedule.eta_min: expected a finite number >= 0, got {eta_min}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A schedule bound to a base learning rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    base_lr: f64,
    config: ScheduleConfig,
}

impl Schedule {
    /// `base_lr` is the optimizer's `lr`; for cosine, `eta_min` must not exceed it.
    pub fn new(base_lr: f64, config: ScheduleConfig) -> Result<Self> {
        if !(base_lr.is_finite() && base_lr > 0.0) {
            return Err(Error::Range(format!("lr: expected a finite number > 0, got {base_lr}")));
        }
        config.validate()?;
        if let ScheduleKind::Cosine { eta_min, .. } = config.kind {
            if eta_min > base_lr {
                return Err(Error::Range(format!(
                    "schedule.eta_min: expected at most the base lr {base_lr}, got {eta_min}"
                )));
            }
        }
        Ok(Schedule { base_lr, config })
    }

    /// The learning rate for the step after `step` steps have been taken.
    pub fn lr_at(&self, step: u64) -> f32 {
        let w = self.config.warmup_steps;
        let lr = if step < w { self.main(0) * (step + 1) as f64 / w as f64 } else { self.main(step - w) };
        lr as f32
    }

    fn main(&self, s: u64) -> f64 {
        let base = self.base_lr;
        match self.config.kind {
            ScheduleKind::Constant {} => base,
            ScheduleKind::Step { step_size, gamma } => base * gamma.powf((s / step_size) as f64),
            ScheduleKind::Exponential { gamma } => base * gamma.powf(s as f64),
            ScheduleKind::Cosine { t_max, eta_min } => {
                let s = s.min(t_max) as f64;
                eta_min + (base - eta_min) * (1.0 + (std::f64::consts::PI * s / t_max as f64).cos()) / 2.0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sched(base: f64, v: Value) -> Schedule {
        Schedule::new(base, ScheduleConfig::from_json(&v).unwrap()).unwrap()
    }

    fn close(a: f32, b: f64) -> bool {
        (a as f64 - b).abs() <= 1e-7 * b.abs().max(1e-3)
    }

    #[test]
    fn step_and_exponential_match_pytorch_closed_forms() {
        let s = sched(0.1, json!({"type": "step", "step_size": 3, "gamma": 0.5}));
        let got: Vec<f32> = (0..7).map(|i| s.lr_at(i)).collect();
        let want = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025];
        assert!(got.iter().zip(want).all(|(a, b)| close(*a, b)), "{got:?}");
        let e = sched(0.2, json!({"type": "exponential", "gamma": 0.9}));
        assert!(close(e.lr_at(3), 0.2 * 0.729), "{}", e.lr_at(3));
    }

    #[test]
    fn cosine_endpoints_midpoint_and_hold() {
        let s = sched(1.0, json!({"type": "cosine", "t_max": 10, "eta_min": 0.1}));
        assert!(close(s.lr_at(0), 1.0));
        assert!(close(s.lr_at(5), 0.55), "{}", s.lr_at(5));
        assert!(close(s.lr_at(10), 0.1));
        assert!(close(s.lr_at(25), 0.1), "held at eta_min after t_max, got {}", s.lr_at(25));
    }

    #[test]
    fn warmup_ramps_then_hands_over() {
        let s = sched(0.4, json!({"type": "cosine", "t_max": 4, "warmup_steps": 4}));
        let got: Vec<f32> = (0..9).map(|i| s.lr_at(i)).collect();
        let half = 0.4 * (1.0 + (std::f64::consts::PI / 4.0).cos()) / 2.0;
        let want = [0.1, 0.2, 0.3, 0.4, 0.4, half, 0.2, 0.4 - half, 0.0];
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!((*a as f64 - b).abs() < 1e-7, "step {i}: {a} vs {b}");
        }
    }

    #[test]
    fn json_round_trip_and_errors() {
        let c = ScheduleConfig::from_json(&json!({"type": "step", "step_size": 2, "gamma": 0.3, "warmup_steps": 5}))
            .unwrap();
        assert_eq!(ScheduleConfig::from_json(&c.to_json()).unwrap(), c);
        let cases = [
            (
                json!({"type": "step", "step_size": 0, "gamma": 0.5}),
                "schedule.step_size: expected an integer >= 1, got 0",
            ),
            (json!({"type": "exponential", "gamma": 1.5}), "schedule.gamma: expected a number in (0, 1], got 1.5"),
            (json!({"type": "cosine", "t_max": 0}), "schedule.t_max"),
            (json!({"type": "cosine", "t_max": 3, "eta_min": -1.0}), "schedule.eta_min"),
            (json!({"type": "constant", "warmup_steps": -3}), "schedule.warmup_steps"),
            (json!({"type": "constant", "gama": 2}), "gama"),
            (json!({"type": "linear"}), "linear"),
        ];
        for (v, needle) in cases {
            let e = ScheduleConfig::from_json(&v).unwrap_err().to_string();
            assert!(e.contains(needle), "{v}: {e:?} should contain {needle:?}");
        }
        let e = Schedule::new(
            0.01,
            ScheduleConfig::from_json(&json!({"type": "cosine", "t_max": 3, "eta_min": 0.1})).unwrap(),
        );
        assert!(e.unwrap_err().to_string().contains("at most the base lr"));
    }
}
