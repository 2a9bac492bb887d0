//! Adam and AdamW as `torch.optim.Adam` / `torch.optim.AdamW` compute them (single-tensor path,
//! no amsgrad). With t the 1-based step:
//! `m = β1·m + (1-β1)·g`, `v = β2·v + (1-β2)·g²`,
//! `p = p - (lr / (1-β1^t)) · m / (sqrt(v) / sqrt(1-β2^t) + ε)`.
//! Adam's weight decay adds `wd·p` to g first (L2); AdamW's multiplies p by `1 - lr·wd` first.
//! With `amsgrad`, the denominator uses the running maximum of v (`max_exp_avg_sq`) instead.

use super::check_range;
use crate::error::Result;

fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_eps() -> f64 {
    1e-8
}
fn default_adamw_weight_decay() -> f64 {
    0.01
}

/// Adam hyper-parameters (PyTorch names and defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamConfig {
    pub lr: f64,
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    #[serde(default = "default_eps")]
    pub eps: f64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default)]
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, betas: default_betas(), eps: default_eps(), weight_decay: 0.0, amsgrad: false }
    }
}

/// AdamW hyper-parameters: as Adam's, but `weight_decay` defaults to 0.01 (PyTorch).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamWConfig {
    pub lr: f64,
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    #[serde(default = "default_eps")]
    pub eps: f64,
    #[serde(default = "default_adamw_weight_decay")]
    pub weight_decay: f64,
    #[serde(default)]
    pub amsgrad: bool,
}

impl From<AdamWConfig> for AdamConfig {
    fn from(c: AdamWConfig) -> Self {
        AdamConfig { lr: c.lr, betas: c.betas, eps: c.eps, weight_decay: c.weight_decay, amsgrad: c.amsgrad }
    }
}

impl From<AdamConfig> for AdamWConfig {
    fn from(c: AdamConfig) -> Self {
        AdamWConfig { lr: c.lr, betas: c.betas, eps: c.eps, weight_decay: c.weight_decay, amsgrad: c.amsgrad }
    }
}

impl AdamConfig {
    pub fn validate(&self) -> Result<()> {
        check_range("lr", self.lr, self.lr > 0.0, "a finite number > 0")?;
        for (i, b) in self.betas.iter().enumerate() {
            check_range(&format!("betas[{i}]"), *b, (0.0..1.0).contains(b), "a number in [0, 1)")?;
        }
        check_range("eps", self.eps, self.eps >= 0.0, "a finite number >= 0")?;
        check_range("weight_decay", self.weight_decay, self.weight_decay >= 0.0, "a finite number >= 0")
    }
}

/// Adam / AdamW state: first and second moments (and the second moment's running maximum with
/// `amsgrad`).
#[derive(Debug, Clone)]
pub struct Adam {
    pub(crate) config: AdamConfig,
    /// AdamW (decoupled weight decay) rather than Adam's L2 term.
    pub(crate) decoupled: bool,
    pub(crate) n: usize,
    pub(crate) step: u64,
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
    max_exp_avg_sq: Vec<f32>,
}

impl Adam {
    pub fn new(config: AdamConfig, decoupled: bool, n: usize) -> Self {
        Adam {
            decoupled,
            n,
            step: 0,
            exp_avg: vec![0.0; n],
            exp_avg_sq: vec![0.0; n],
            max_exp_avg_sq: if config.amsgrad { vec![0.0; n] } else { Vec::new() },
            config,
        }
    }

    pub(crate) fn step(&mut self, p: &mut [f32], g: &[f32], lr: f64) {
        self.step += 1;
        let c = &self.config;
        let [beta1, beta2] = c.betas;
        let t = self.step as f64;
        // PyTorch computes these scalars in Python floats (f64) and the tensor ops round them to
        // f32; doing the same keeps the two within float32 rounding of each other.
        let step_size = lr / (1.0 - beta1.powf(t));
        let bc2_sqrt = (1.0 - beta2.powf(t)).sqrt() as f32;
        let (b1, b2) = (beta1 as f32, beta2 as f32);
        let (omb1, omb2) = ((1.0 - beta1) as f32, (1.0 - beta2) as f32);
        let neg_step = -step_size as f32;
        let eps = c.eps as f32;
        let wd = c.weight_decay as f32;
        let decay = (1.0 - lr * c.weight_decay) as f32;
        let k = Coefficients { b1, b2, omb1, omb2, neg_step, bc2_sqrt, eps, wd, decay };
        let flags = (self.decoupled, c.weight_decay != 0.0, c.amsgrad);
        update(flags, &k, p, g, &mut self.exp_avg, &mut self.exp_avg_sq, &mut self.max_exp_avg_sq);
    }

    pub(crate) fn slots(&self) -> Vec<(&'static str, &Vec<f32>)> {
        let mut v = vec![("exp_avg", &self.exp_avg), ("exp_avg_sq", &self.exp_avg_sq)];
        if self.config.amsgrad {
            v.push(("max_exp_avg_sq", &self.max_exp_avg_sq));
        }
        v
    }

    pub(crate) fn slots_mut(&mut self) -> Vec<(&'static str, &mut Vec<f32>)> {
        let mut v = vec![("exp_avg", &mut self.exp_avg), ("exp_avg_sq", &mut self.exp_avg_sq)];
        if self.config.amsgrad {
            v.push(("max_exp_avg_sq", &mut self.max_exp_avg_sq));
        }
        v
    }
}

/// The f32 scalars of one Adam step.
struct Coefficients {
    b1: f32,
    b2: f32,
    omb1: f32,
    omb2: f32,
    neg_step: f32,
    bc2_sqrt: f32,
    eps: f32,
    wd: f32,
    decay: f32,
}

/// The element-wise update. Kept branch-free inside the loop (the flags select one of a few
/// loop copies) so it vectorises; compiled again with AVX-512F and chosen at run time. No
/// fused multiply-add is introduced and `sqrt`/division are correctly rounded, so every build
/// gives the same bits.
#[inline(always)]
fn update_body(
    flags: (bool, bool, bool),
    k: &Coefficients,
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    vmax: &mut [f32],
) {
    let (decoupled, has_wd, amsgrad) = flags;
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    let elem = |p: &mut f32, g: f32, m: &mut f32, v: &mut f32, vmax: Option<&mut f32>| {
        let g = if decoupled {
            *p *= k.decay;
            g
        } else if has_wd {
            g + k.wd * *p
        } else {
            g
        };
        *m = *m * k.b1 + k.omb1 * g;
        *v = *v * k.b2 + k.omb2 * g * g;
        let v_hat = match vmax {
            Some(mx) => {
                *mx = mx.max(*v);
                *mx
            }
            None => *v,
        };
        let denom = v_hat.sqrt() / k.bc2_sqrt + k.eps;
        *p += k.neg_step * *m / denom;
    };
    if amsgrad {
        let vmax = &mut vmax[..n];
        for i in 0..n {
            elem(&mut p[i], g[i], &mut m[i], &mut v[i], Some(&mut vmax[i]));
        }
    } else {
        for i in 0..n {
            elem(&mut p[i], g[i], &mut m[i], &mut v[i], None);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn update_avx512(
    flags: (bool, bool, bool),
    k: &Coefficients,
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    vmax: &mut [f32],
) {
    update_body(flags, k, p, g, m, v, vmax)
}

fn update(
    flags: (bool, bool, bool),
    k: &Coefficients,
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    vmax: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F is available on this CPU (checked just above).
        return unsafe { update_avx512(flags, k, p, g, m, v, vmax) };
    }
    update_body(flags, k, p, g, m, v, vmax)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// By hand: the first Adam step moves every parameter by ≈ lr·sign(g) (m̂ = g, v̂ = g²).
    /// Step 2 with the same g: m = 0.19g, v = 0.001999g², m̂ = g, v̂ = g² → again lr·sign(g).
    #[test]
    fn first_steps_move_by_lr_times_sign() {
        let mut o = Adam::new(AdamConfig { lr: 0.01, ..AdamConfig::default() }, false, 3);
        let mut p = [1.0f32, -2.0, 0.5];
        let g = [0.3f32, -4.0, 1e-3];
        o.step(&mut p, &g, 0.01);
        o.step(&mut p, &g, 0.01);
        for (i, expected) in [0.98f32, -1.98, 0.48].iter().enumerate() {
            assert!((p[i] - expected).abs() < 2e-5 * (1.0 + 1e-3 / g[i].abs()), "p[{i}] = {}", p[i]);
        }
    }

    /// AdamW with g = 0 only shrinks: p·(1 - lr·wd) per step.
    #[test]
    fn adamw_decay_is_decoupled() {
        let cfg = AdamConfig { lr: 0.1, weight_decay: 0.5, ..AdamConfig::default() };
        let mut o = Adam::new(cfg, true, 1);
        let mut p = [2.0f32];
        o.step(&mut p, &[0.0], 0.1);
        o.step(&mut p, &[0.0], 0.1);
        assert!((p[0] - 2.0 * 0.95 * 0.95).abs() < 1e-6, "{}", p[0]);
    }
}
