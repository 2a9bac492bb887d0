//! RMSprop as `torch.optim.RMSprop` computes it (single-tensor path):
//! `g = g + wd·p`; `s = α·s + (1-α)·g²`; centered: `a = α·a + (1-α)·g`, `avg = sqrt(s - a²) + ε`,
//! else `avg = sqrt(s) + ε`; with momentum `buf = μ·buf + g/avg`, `p = p - lr·buf`,
//! else `p = p - lr·g/avg`.

use super::check_range;
use crate::error::Result;

fn default_alpha() -> f64 {
    0.99
}
fn default_eps() -> f64 {
    1e-8
}

/// RMSprop hyper-parameters (PyTorch names and defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RmsPropConfig {
    pub lr: f64,
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default = "default_eps")]
    pub eps: f64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default)]
    pub momentum: f64,
    #[serde(default)]
    pub centered: bool,
}

impl RmsPropConfig {
    pub fn validate(&self) -> Result<()> {
        check_range("lr", self.lr, self.lr > 0.0, "a finite number > 0")?;
        check_range("alpha", self.alpha, (0.0..1.0).contains(&self.alpha), "a number in [0, 1)")?;
        check_range("eps", self.eps, self.eps >= 0.0, "a finite number >= 0")?;
        check_range("weight_decay", self.weight_decay, self.weight_decay >= 0.0, "a finite number >= 0")?;
        check_range("momentum", self.momentum, (0.0..1.0).contains(&self.momentum), "a number in [0, 1)")
    }
}

/// RMSprop state: squared-gradient average, plus the gradient average (centered) and the
/// momentum buffer (momentum > 0) when used.
#[derive(Debug, Clone)]
pub struct RmsProp {
    pub(crate) config: RmsPropConfig,
    pub(crate) n: usize,
    pub(crate) step: u64,
    square_avg: Vec<f32>,
    grad_avg: Vec<f32>,
    momentum_buffer: Vec<f32>,
}

impl RmsProp {
    pub fn new(config: RmsPropConfig, n: usize) -> Self {
        let grad_avg = if config.centered { vec![0.0; n] } else { Vec::new() };
        let momentum_buffer = if config.momentum > 0.0 { vec![0.0; n] } else { Vec::new() };
        RmsProp { config, n, step: 0, square_avg: vec![0.0; n], grad_avg, momentum_buffer }
    }

    pub(crate) fn step(&mut self, p: &mut [f32], g: &[f32], lr: f64) {
        self.step += 1;
        let c = &self.config;
        let (alpha, oma) = (c.alpha as f32, (1.0 - c.alpha) as f32);
        let (eps, wd, mu, neg_lr) = (c.eps as f32, c.weight_decay as f32, c.momentum as f32, -lr as f32);
        let (centered, has_momentum, has_wd) = (c.centered, c.momentum > 0.0, c.weight_decay != 0.0);
        for i in 0..p.len() {
            let g = if has_wd { g[i] + wd * p[i] } else { g[i] };
            let s = self.square_avg[i] * alpha + oma * g * g;
            self.square_avg[i] = s;
            let avg = if centered {
                let a = self.grad_avg[i] * alpha + oma * g;
                self.grad_avg[i] = a;
                // PyTorch's addcmul(value=-1) is s + (-1·a)·a, which is exactly s - a·a.
                (s - a * a).sqrt()
            } else {
                s.sqrt()
            } + eps;
            if has_momentum {
                let b = self.momentum_buffer[i] * mu + g / avg;
                self.momentum_buffer[i] = b;
                p[i] += neg_lr * b;
            } else {
                p[i] += neg_lr * g / avg;
            }
        }
    }

    pub(crate) fn slots(&self) -> Vec<(&'static str, &Vec<f32>)> {
        let mut v = vec![("square_avg", &self.square_avg)];
        if self.config.centered {
            v.push(("grad_avg", &self.grad_avg));
        }
        if self.config.momentum > 0.0 {
            v.push(("momentum_buffer", &self.momentum_buffer));
        }
        v
    }

    pub(crate) fn slots_mut(&mut self) -> Vec<(&'static str, &mut Vec<f32>)> {
        let mut v = vec![("square_avg", &mut self.square_avg)];
        if self.config.centered {
            v.push(("grad_avg", &mut self.grad_avg));
        }
        if self.config.momentum > 0.0 {
            v.push(("momentum_buffer", &mut self.momentum_buffer));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// By hand, α = 0.99, lr = 0.01, g = 2: step 1 s = 0.04, p -= 0.01·2/0.2 = 0.1;
    /// step 2 s = 0.0796, p -= 0.01·2/sqrt(0.0796) ≈ 0.070888.
    #[test]
    fn two_steps_by_hand() {
        let cfg = RmsPropConfig { lr: 0.01, alpha: 0.99, eps: 0.0, weight_decay: 0.0, momentum: 0.0, centered: false };
        let mut o = RmsProp::new(cfg, 1);
        let mut p = [1.0f32];
        o.step(&mut p, &[2.0], 0.01);
        assert!((p[0] - 0.9).abs() < 1e-6, "{}", p[0]);
        o.step(&mut p, &[2.0], 0.01);
        assert!((p[0] - (0.9 - 0.02 / 0.0796f32.sqrt())).abs() < 1e-6, "{}", p[0]);
    }
}
