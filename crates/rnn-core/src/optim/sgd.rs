//! SGD as `torch.optim.SGD` computes it (single-tensor path):
//! `d = g + wd·p`; with momentum `buf = d` on the first step, else `buf = μ·buf + (1-τ)·d`;
//! `d = d + μ·buf` (Nesterov) or `d = buf`; `p = p - lr·d`.

use super::check_range;
use crate::error::{Error, Result};

/// Hyper-parameters (PyTorch names and defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgdConfig {
    pub lr: f64,
    #[serde(default)]
    pub momentum: f64,
    #[serde(default)]
    pub dampening: f64,
    #[serde(default)]
    pub nesterov: bool,
    #[serde(default)]
    pub weight_decay: f64,
}

impl SgdConfig {
    pub fn validate(&self) -> Result<()> {
        check_range("lr", self.lr, self.lr > 0.0, "a finite number > 0")?;
        check_range("momentum", self.momentum, (0.0..1.0).contains(&self.momentum), "a number in [0, 1)")?;
        check_range("dampening", self.dampening, (0.0..=1.0).contains(&self.dampening), "a number in [0, 1]")?;
        check_range("weight_decay", self.weight_decay, self.weight_decay >= 0.0, "a finite number >= 0")?;
        // PyTorch refuses the same combination: Nesterov needs momentum and no dampening.
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::Config(format!(
                "nesterov: requires momentum > 0 and dampening = 0, got momentum {} and dampening {}",
                self.momentum, self.dampening
            )));
        }
        Ok(())
    }
}

/// SGD state: the momentum buffer (allocated only when momentum > 0).
#[derive(Debug, Clone)]
pub struct Sgd {
    pub(crate) config: SgdConfig,
    pub(crate) n: usize,
    pub(crate) step: u64,
    momentum_buffer: Vec<f32>,
}

impl Sgd {
    pub fn new(config: SgdConfig, n: usize) -> Self {
        let buf = if config.momentum != 0.0 { vec![0.0; n] } else { Vec::new() };
        Sgd { config, n, step: 0, momentum_buffer: buf }
    }

    pub(crate) fn step(&mut self, p: &mut [f32], g: &[f32], lr: f64) {
        let c = &self.config;
        let wd = c.weight_decay as f32;
        let mu = c.momentum as f32;
        let one_minus_damp = (1.0 - c.dampening) as f32;
        let neg_lr = -lr as f32;
        let first = self.step == 0;
        if c.momentum == 0.0 {
            for (p, &g) in p.iter_mut().zip(g) {
                let d = if wd != 0.0 { g + wd * *p } else { g };
                *p += neg_lr * d;
            }
        } else {
            for ((p, &g), b) in p.iter_mut().zip(g).zip(self.momentum_buffer.iter_mut()) {
                let d = if wd != 0.0 { g + wd * *p } else { g };
                *b = if first { d } else { *b * mu + one_minus_damp * d };
                let d = if c.nesterov { d + mu * *b } else { *b };
                *p += neg_lr * d;
            }
        }
        self.step += 1;
    }

    pub(crate) fn slots(&self) -> Vec<(&'static str, &Vec<f32>)> {
        if self.config.momentum != 0.0 {
            vec![("momentum_buffer", &self.momentum_buffer)]
        } else {
            Vec::new()
        }
    }

    pub(crate) fn slots_mut(&mut self) -> Vec<(&'static str, &mut Vec<f32>)> {
        if self.config.momentum != 0.0 {
            vec![("momentum_buffer", &mut self.momentum_buffer)]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two steps by hand: p0 = 1, g = 0.5 then -0.25, lr 0.1, momentum 0.9, Nesterov.
    /// step 1: buf = 0.5, d = 0.5 + 0.9·0.5 = 0.95, p = 1 - 0.095 = 0.905
    /// step 2: buf = 0.45 - 0.25 = 0.2, d = -0.25 + 0.18 = -0.07, p = 0.905 + 0.007 = 0.912
    #[test]
    fn nesterov_two_steps_by_hand() {
        let cfg = SgdConfig { lr: 0.1, momentum: 0.9, dampening: 0.0, nesterov: true, weight_decay: 0.0 };
        let mut o = Sgd::new(cfg, 1);
        let mut p = [1.0f32];
        o.step(&mut p, &[0.5], 0.1);
        assert!((p[0] - 0.905).abs() < 1e-6, "{}", p[0]);
        o.step(&mut p, &[-0.25], 0.1);
        assert!((p[0] - 0.912).abs() < 1e-6, "{}", p[0]);
        assert!((o.momentum_buffer[0] - 0.2).abs() < 1e-6);
    }
}
