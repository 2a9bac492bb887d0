//! Adagrad as `torch.optim.Adagrad` computes it (dense gradients): with t the 1-based step,
//! `g = g + wd·p`; `clr = lr / (1 + (t-1)·lr_decay)`; `sum = sum + g²`;
//! `p = p - clr·g / (sqrt(sum) + ε)`. `sum` starts at `initial_accumulator_value`.

use super::check_range;
use crate::error::Result;

fn default_eps() -> f64 {
    1e-10
}

/// Adagrad hyper-parameters (PyTorch names and defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdagradConfig {
    pub lr: f64,
    #[serde(default)]
    pub lr_decay: f64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default)]
    pub initial_accumulator_value: f64,
    #[serde(default = "default_eps")]
    pub eps: f64,
}

impl AdagradConfig {
    pub fn validate(&self) -> Result<()> {
        check_range("lr", self.lr, self.lr > 0.0, "a finite number > 0")?;
        check_range("lr_decay", self.lr_decay, self.lr_decay >= 0.0, "a finite number >= 0")?;
        check_range("weight_decay", self.weight_decay, self.weight_decay >= 0.0, "a finite number >= 0")?;
        let iav = self.initial_accumulator_value;
        check_range("initial_accumulator_value", iav, iav >= 0.0, "a finite number >= 0")?;
        check_range("eps", self.eps, self.eps >= 0.0, "a finite number >= 0")
    }
}

/// Adagrad state: the running sum of squared gradients.
#[derive(Debug, Clone)]
pub struct Adagrad {
    pub(crate) config: AdagradConfig,
    pub(crate) n: usize,
    pub(crate) step: u64,
    sum: Vec<f32>,
}

impl Adagrad {
    pub fn new(config: AdagradConfig, n: usize) -> Self {
        let sum = vec![config.initial_accumulator_value as f32; n];
        Adagrad { config, n, step: 0, sum }
    }

    pub(crate) fn step(&mut self, p: &mut [f32], g: &[f32], lr: f64) {
        self.step += 1;
        let c = &self.config;
        let clr = lr / (1.0 + (self.step - 1) as f64 * c.lr_decay);
        let (neg_clr, eps, wd, has_wd) = (-clr as f32, c.eps as f32, c.weight_decay as f32, c.weight_decay != 0.0);
        for ((p, &g), s) in p.iter_mut().zip(g).zip(self.sum.iter_mut()) {
            let g = if has_wd { g + wd * *p } else { g };
            *s += g * g;
            *p += neg_clr * g / (s.sqrt() + eps);
        }
    }

    pub(crate) fn slots(&self) -> Vec<(&'static str, &Vec<f32>)> {
        vec![("sum", &self.sum)]
    }

    pub(crate) fn slots_mut(&mut self) -> Vec<(&'static str, &mut Vec<f32>)> {
        vec![("sum", &mut self.sum)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// By hand, lr = 0.1, lr_decay = 1, g = 3 twice, eps = 0: step 1 sum = 9, p -= 0.1·3/3 = 0.1;
    /// step 2 clr = 0.05, sum = 18, p -= 0.05·3/sqrt(18) ≈ 0.0353553.
    #[test]
    fn two_steps_by_hand_with_lr_decay() {
        let cfg = AdagradConfig { lr: 0.1, lr_decay: 1.0, weight_decay: 0.0, initial_accumulator_value: 0.0, eps: 0.0 };
        let mut o = Adagrad::new(cfg, 1);
        let mut p = [0.0f32];
        o.step(&mut p, &[3.0], 0.1);
        assert!((p[0] + 0.1).abs() < 1e-6, "{}", p[0]);
        o.step(&mut p, &[3.0], 0.1);
        assert!((p[0] + 0.1 + 0.15 / 18f32.sqrt()).abs() < 1e-6, "{}", p[0]);
    }
}
