//! Attention of a decoder over an encoder's outputs (Luong et al. 2015 placement: the decoder's
//! hidden state `h_t` is the query, the attentional vector feeds the output layer).
//!
//! Scores of query `q` `[Hq]` against key `k_s` `[Hk]` (one per real source step s):
//! - additive (Bahdanau): `e_s = vᵀ tanh(W_q q + W_k k_s)`, `W_q` `[A, Hq]`, `W_k` `[A, Hk]`, `v` `[A]`;
//! - `dot`: `e_s = qᵀ k_s` (needs Hq = Hk);
//! - `general`: `e_s = qᵀ W k_s`, `W` `[Hq, Hk]`.
//!
//! `α = softmax(e)` over the real source steps only (steps at or past the row's source length get
//! weight 0), context `c = Σ_s α_s k_s` `[Hk]`, attentional vector `h̃ = tanh(W_c [c; q] + b_c)`
//! `[Hq]`, `W_c` `[Hq, Hk + Hq]`.
//!
//! Shapes (time-major, lib.rs): queries `[Tq, Bq, Hq]`, keys `[Ts, B, Hk]`, weights
//! `[Tq, Bq, Ts]`, output `[Tq, Bq, Hq]`. Query row r attends memory row `rows[r]` (identity
//! when None: training, batched greedy decoding); beam search runs many hypotheses of one source
//! against one memory row.
//!
//! The key side of a score (`W_k k_s` for additive, `W k_s` for general) does not depend on the
//! query, so [`Memory`] computes it once per source (one GEMM) instead of once per query step;
//! the naive reference in the tests recomputes everything per (query, key) pair.

use crate::error::{check_len, Error, Result};
use crate::kernels::gemm::{matmul, GemmShape, Merge, Op};
use crate::kernels::packed::PackedB;
use crate::layer::dense::{Dense, DenseGrads};
use crate::params::Params;

/// How a query scores a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionKind {
    /// `vᵀ tanh(W_q q + W_k k)` (Bahdanau).
    Additive,
    /// `qᵀ k` (Luong dot).
    Dot,
    /// `qᵀ W k` (Luong general).
    General,
}

impl AttentionKind {
    /// The name in configs and options (`"additive" | "dot" | "general"`).
    pub fn name(self) -> &'static str {
        match self {
            AttentionKind::Additive => "additive",
            AttentionKind::Dot => "dot",
            AttentionKind::General => "general",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "additive" => AttentionKind::Additive,
            "dot" => AttentionKind::Dot,
            "general" => AttentionKind::General,
            _ => {
                return Err(Error::Config(format!(
                    "attention: expected \"additive\", \"dot\" or \"general\", got \"{s}\""
                )))
            }
        })
    }
}

/// Sizes of an attention layer. Its tensors are named `attn.*` (docs/FORMAT.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attention {
    pub kind: AttentionKind,
    /// Hq, the query (decoder hidden) width; also the width of the attentional vector.
    pub query: usize,
    /// Hk, the key (encoder output) width.
    pub key: usize,
    /// A, the width of the additive score's hidden layer (unused by dot and general).
    pub units: usize,
}

/// The encoder's outputs prepared for attention: the keys and their query-independent projection.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    pub steps: usize,
    pub batch: usize,
    /// `[Ts, B, Hk]`
    pub keys: Vec<f32>,
    /// `[B]` real source lengths (each in 1..=Ts).
    pub lengths: Vec<usize>,
    /// Additive: `W_k k` `[Ts, B, A]`; general: `W k` `[Ts, B, Hq]`; dot: empty.
    projected: Vec<f32>,
}

/// What [`Attention::forward`] keeps for [`Attention::backward`].
#[derive(Debug, Clone, Default)]
pub struct AttentionCache {
    steps: usize,
    rows: Vec<usize>,
    /// `[Tq, Bq, Hq]`
    queries: Vec<f32>,
    /// Additive: `W_q q` `[Tq, Bq, A]`.
    projected_queries: Vec<f32>,
    /// Additive: `tanh(W_q q + W_k k_s)` `[Tq, Bq, Ts, A]`.
    hidden: Vec<f32>,
    /// `[Tq, Bq, Ts]` attention weights (0 past each source length).
    pub weights: Vec<f32>,
    /// `[Tq·Bq, Hk + Hq]` the combine layer's input `[c; q]`.
    combined: Vec<f32>,
    /// `[Tq, Bq, Hq]` the attentional vectors.
    out: Vec<f32>,
    /// The combine layer's weight packed once ([`AttentionCache::pack_combine`]), for decoding,
    /// which runs the layer on a few rows at every step; `None`: the weight is read in place.
    combine: Option<PackedB>,
}

impl AttentionCache {
    /// Packs the combine layer's weight of `p` once, for every later forward through this cache
    /// (until [`Attention::forward`] sees other parameters: the caller packs again after an
    /// update).
    pub fn pack_combine(&mut self, attention: &Attention, p: &Params) -> Result<()> {
        let combine = Dense { inputs: attention.key + attention.query, outputs: attention.query };
        self.combine = Some(combine.pack(p.view("attn.combine.weight"))?);
        Ok(())
    }

    /// The attentional vectors `[Tq, Bq, Hq]` of the last forward.
    pub fn output(&self) -> &[f32] {
        &self.out
    }
}

impl Attention {
    /// Checks the sizes (dot needs equal query and key widths).
    pub fn validate(&self) -> Result<()> {
        if self.query == 0 || self.key == 0 {
            return Err(Error::Range(format!(
                "attention: query and key widths must be at least 1, got {} and {}",
                self.query, self.key
            )));
        }
        if self.kind == AttentionKind::Dot && self.query != self.key {
            return Err(Error::Config(format!(
                "attention: \"dot\" scores need equal decoder and encoder output widths, got {} and {} (a \
                 bidirectional encoder doubles its width); use \"general\" or \"additive\"",
                self.query, self.key
            )));
        }
        if self.kind == AttentionKind::Additive && self.units == 0 {
            return Err(Error::Range("attention_size: expected at least 1, got 0".into()));
        }
        Ok(())
    }

    /// The parameter names and shapes, in file order.
    pub fn param_entries(&self) -> Vec<(String, Vec<usize>)> {
        let (q, k, a) = (self.query, self.key, self.units);
        let mut v = match self.kind {
            AttentionKind::Additive => vec![
                ("attn.query.weight".to_string(), vec![a, q]),
                ("attn.key.weight".to_string(), vec![a, k]),
                ("attn.v".to_string(), vec![a]),
            ],
            AttentionKind::Dot => vec![],
            AttentionKind::General => vec![("attn.weight".to_string(), vec![q, k])],
        };
        v.push(("attn.combine.weight".to_string(), vec![q, k + q]));
        v.push(("attn.combine.bias".to_string(), vec![q]));
        v
    }

    /// Width of the key-side projection kept in [`Memory`].
    fn projected_width(&self) -> usize {
        match self.kind {
            AttentionKind::Additive => self.units,
            AttentionKind::Dot => 0,
            AttentionKind::General => self.query,
        }
    }

    /// Prepares encoder outputs `keys` `[Ts, B, Hk]` with real lengths `lengths` `[B]`.
    pub fn memory(&self, p: &Params, keys: Vec<f32>, steps: usize, batch: usize, lengths: &[usize]) -> Result<Memory> {
        check_len("attention keys", keys.len(), steps * batch * self.key)?;
        check_len("source lengths", lengths.len(), batch)?;
        if let Some(r) = lengths.iter().position(|&l| l == 0 || l > steps) {
            return Err(Error::Range(format!(
                "source lengths: row {r} has length {}, expected 1..={steps}",
                lengths[r]
            )));
        }
        let w = self.projected_width();
        let mut projected = vec![0.0; steps * batch * w];
        let name = match self.kind {
            AttentionKind::Additive => Some("attn.key.weight"),
            AttentionKind::General => Some("attn.weight"),
            AttentionKind::Dot => None,
        };
        if let Some(name) = name {
            // [Ts·B, w] = keys [Ts·B, Hk] · Wᵀ, W stored [w, Hk].
            matmul(
                Op::Plain,
                Op::Transposed,
                GemmShape { m: steps * batch, n: w, k: self.key },
                &keys,
                p.view(name),
                Merge::OVERWRITE,
                &mut projected,
            );
        }
        Ok(Memory { steps, batch, keys, lengths: lengths.to_vec(), projected })
    }

    /// Attention of `queries` `[Tq, Bq, Hq]` over `memory`; query row r reads memory row
    /// `rows[r]` (None: r, with Bq = B). Fills `cache` (weights, output) and returns nothing else:
    /// read [`AttentionCache::output`] and `weights`.
    pub fn forward(
        &self,
        p: &Params,
        memory: &Memory,
        queries: &[f32],
        steps: usize,
        rows: Option<&[usize]>,
        cache: &mut AttentionCache,
    ) -> Result<()> {
        let (hq, hk, ts) = (self.query, self.key, memory.steps);
        let bq = match rows {
            Some(r) => r.len(),
            None => memory.batch,
        };
        check_len("attention queries", queries.len(), steps * bq * hq)?;
        cache.rows.clear();
        match rows {
            Some(r) => {
                if let Some(&m) = r.iter().find(|&&m| m >= memory.batch) {
                    return Err(Error::Range(format!(
                        "attention rows: row {m} is outside the memory of {}",
                        memory.batch
                    )));
                }
                cache.rows.extend_from_slice(r);
            }
            None => cache.rows.extend(0..bq),
        }
        cache.steps = steps;
        cache.queries.clear();
        cache.queries.extend_from_slice(queries);
        let n = steps * bq;
        let a = self.units;
        if self.kind == AttentionKind::Additive {
            cache.projected_queries.resize(n * a, 0.0);
            matmul(
                Op::Plain,
                Op::Transposed,
                GemmShape { m: n, n: a, k: hq },
                queries,
                p.view("attn.query.weight"),
                Merge::OVERWRITE,
                &mut cache.projected_queries,
            );
            cache.hidden.resize(n * ts * a, 0.0);
        }
        cache.weights.clear();
        cache.weights.resize(n * ts, 0.0);
        cache.combined.resize(n * (hk + hq), 0.0);
        let v = if self.kind == AttentionKind::Additive { p.view("attn.v") } else { &[][..] };
        let pw = self.projected_width();
        for i in 0..n {
            let m = cache.rows[i % bq];
            let len = memory.lengths[m];
            let q = &queries[i * hq..(i + 1) * hq];
            let e = &mut cache.weights[i * ts..(i + 1) * ts];
            for (s, e) in e[..len].iter_mut().enumerate() {
                let km = (s * memory.batch + m) * hk;
                let pm = (s * memory.batch + m) * pw;
                *e = match self.kind {
                    AttentionKind::Dot => dot(q, &memory.keys[km..km + hk]),
                    AttentionKind::General => dot(q, &memory.projected[pm..pm + pw]),
                    AttentionKind::Additive => {
                        let qp = &cache.projected_queries[i * a..(i + 1) * a];
                        let u = &mut cache.hidden[(i * ts + s) * a..(i * ts + s + 1) * a];
                        for ((u, &x), &y) in u.iter_mut().zip(qp).zip(&memory.projected[pm..pm + a]) {
                            *u = (x + y).tanh();
                        }
                        dot(v, u)
                    }
                };
            }
            softmax_in_place(&mut e[..len]);
            // [c; q]: the context, then the query.
            let z = &mut cache.combined[i * (hk + hq)..(i + 1) * (hk + hq)];
            let (c, zq) = z.split_at_mut(hk);
            c.iter_mut().for_each(|x| *x = 0.0);
            for (s, &w) in e[..len].iter().enumerate() {
                let km = (s * memory.batch + m) * hk;
                c.iter_mut().zip(&memory.keys[km..km + hk]).for_each(|(c, &k)| *c += w * k);
            }
            zq.copy_from_slice(q);
        }
        cache.out.resize(n * hq, 0.0);
        let combine = Dense { inputs: hk + hq, outputs: hq };
        let bias = Some(p.view("attn.combine.bias"));
        match &cache.combine {
            Some(w_t) => combine.forward_packed(&cache.combined, n, w_t, bias, &mut cache.out, false)?,
            None => combine.forward(&cache.combined, n, p.view("attn.combine.weight"), bias, &mut cache.out, false)?,
        }
        cache.out.iter_mut().for_each(|x| *x = x.tanh());
        Ok(())
    }

    /// Backward of the forward in `cache` given `dout` `[Tq, Bq, Hq]`: adds the parameter
    /// gradients into `g` and the keys' gradient into `dkeys` `[Ts, B, Hk]`; returns the queries'
    /// gradient `[Tq, Bq, Hq]`.
    pub fn backward(
        &self,
        p: &Params,
        memory: &Memory,
        cache: &AttentionCache,
        dout: &[f32],
        g: &mut Params,
        dkeys: &mut [f32],
    ) -> Result<Vec<f32>> {
        let (hq, hk, ts, a) = (self.query, self.key, memory.steps, self.units);
        let bq = cache.rows.len();
        let n = cache.steps * bq;
        check_len("attention output gradient", dout.len(), n * hq)?;
        check_len("attention keys gradient", dkeys.len(), ts * memory.batch * hk)?;
        // Through the tanh of the combine layer: dpre = dout ⊙ (1 − h̃²).
        let dpre: Vec<f32> = dout.iter().zip(&cache.out).map(|(d, y)| d * (1.0 - y * y)).collect();
        let mut dz = vec![0.0; n * (hk + hq)];
        {
            let (dw, db) = combine_grads(g);
            Dense { inputs: hk + hq, outputs: hq }.backward(
                &cache.combined,
                n,
                p.view("attn.combine.weight"),
                &dpre,
                DenseGrads { dw, db: Some(db), dx: Some(&mut dz) },
            )?;
        }
        let pw = self.projected_width();
        let mut dq = vec![0.0; n * hq];
        // Gradients of the key-side projection [Ts, B, pw] and of the query-side one [n, A].
        let mut dprojected = vec![0.0; ts * memory.batch * pw];
        let mut dqp = vec![0.0; if self.kind == AttentionKind::Additive { n * a } else { 0 }];
        let mut dv = vec![0.0; if self.kind == AttentionKind::Additive { a } else { 0 }];
        let v = if self.kind == AttentionKind::Additive { p.view("attn.v") } else { &[][..] };
        let mut de = vec![0.0; ts];
        for i in 0..n {
            let m = cache.rows[i % bq];
            let len = memory.lengths[m];
            let alpha = &cache.weights[i * ts..i * ts + len];
            let dzi = &dz[i * (hk + hq)..(i + 1) * (hk + hq)];
            let (dc, dzq) = dzi.split_at(hk);
            let dqi = &mut dq[i * hq..(i + 1) * hq];
            dqi.iter_mut().zip(dzq).for_each(|(d, &x)| *d += x);
            // c = Σ α_s k_s: dα_s = dc·k_s, dk_s += α_s dc.
            let mut weighted = 0.0f32;
            for s in 0..len {
                let km = (s * memory.batch + m) * hk;
                de[s] = dot(dc, &memory.keys[km..km + hk]);
                weighted += alpha[s] * de[s];
                dkeys[km..km + hk].iter_mut().zip(dc).for_each(|(d, &x)| *d += alpha[s] * x);
            }
            // Softmax: de_s = α_s (dα_s − Σ_j α_j dα_j).
            for (d, &a) in de[..len].iter_mut().zip(alpha) {
                *d = a * (*d - weighted);
            }
            let q = &cache.queries[i * hq..(i + 1) * hq];
            for (s, &de) in de[..len].iter().enumerate() {
                let km = (s * memory.batch + m) * hk;
                let pm = (s * memory.batch + m) * pw;
                match self.kind {
                    AttentionKind::Dot => {
                        axpy(de, &memory.keys[km..km + hk], dqi);
                        axpy(de, q, &mut dkeys[km..km + hk]);
                    }
                    AttentionKind::General => {
                        axpy(de, &memory.projected[pm..pm + pw], dqi);
                        axpy(de, q, &mut dprojected[pm..pm + pw]);
                    }
                    AttentionKind::Additive => {
                        // e = v·u, u = tanh(W_q q + W_k k): dv += de u, dpre_u = de v (1 − u²).
                        let u = &cache.hidden[(i * ts + s) * a..(i * ts + s + 1) * a];
                        axpy(de, u, &mut dv);
                        let dqpi = &mut dqp[i * a..(i + 1) * a];
                        let dps = &mut dprojected[pm..pm + a];
                        for j in 0..a {
                            let d = de * v[j] * (1.0 - u[j] * u[j]);
                            dqpi[j] += d;
                            dps[j] += d;
                        }
                    }
                }
            }
        }
        match self.kind {
            AttentionKind::Dot => {}
            AttentionKind::General => {
                // projected = keys Wᵀ: dW [Hq, Hk] += dprojectedᵀ keys, dkeys += dprojected W.
                let rows = ts * memory.batch;
                matmul(
                    Op::Transposed,
                    Op::Plain,
                    GemmShape { m: hq, n: hk, k: rows },
                    &dprojected,
                    &memory.keys,
                    Merge::ACCUMULATE,
                    g.view_mut("attn.weight"),
                );
                matmul(
                    Op::Plain,
                    Op::Plain,
                    GemmShape { m: rows, n: hk, k: hq },
                    &dprojected,
                    p.view("attn.weight"),
                    Merge::ACCUMULATE,
                    dkeys,
                );
            }
            AttentionKind::Additive => {
                let rows = ts * memory.batch;
                matmul(
                    Op::Transposed,
                    Op::Plain,
                    GemmShape { m: a, n: hk, k: rows },
                    &dprojected,
                    &memory.keys,
                    Merge::ACCUMULATE,
                    g.view_mut("attn.key.weight"),
                );
                matmul(
                    Op::Plain,
                    Op::Plain,
                    GemmShape { m: rows, n: hk, k: a },
                    &dprojected,
                    p.view("attn.key.weight"),
                    Merge::ACCUMULATE,
                    dkeys,
                );
                matmul(
                    Op::Transposed,
                    Op::Plain,
                    GemmShape { m: a, n: hq, k: n },
                    &dqp,
                    &cache.queries,
                    Merge::ACCUMULATE,
                    g.view_mut("attn.query.weight"),
                );
                matmul(
                    Op::Plain,
                    Op::Plain,
                    GemmShape { m: n, n: hq, k: a },
                    &dqp,
                    p.view("attn.query.weight"),
                    Merge::ACCUMULATE,
                    &mut dq,
                );
                g.view_mut("attn.v").iter_mut().zip(&dv).for_each(|(g, d)| *g += d);
            }
        }
        Ok(dq)
    }
}

/// The combine layer's weight and bias gradients, borrowed together (the bias follows the weight
/// in every layout this layer makes).
fn combine_grads(g: &mut Params) -> (&mut [f32], &mut [f32]) {
    let w = g.layout.require("attn.combine.weight").expect("every attention has a combine layer").clone();
    let b = g.layout.require("attn.combine.bias").expect("every attention has a combine layer").clone();
    debug_assert_eq!(w.offset + w.len, b.offset, "attn.combine.bias follows attn.combine.weight");
    let (left, right) = g.data.split_at_mut(b.offset);
    (&mut left[w.offset..w.offset + w.len], &mut right[..b.len])
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    y.iter_mut().zip(x).for_each(|(y, &x)| *y += alpha * x);
}

/// Stable softmax of a non-empty slice, in place.
fn softmax_in_place(e: &mut [f32]) {
    let m = e.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut z = 0.0f64;
    for x in e.iter_mut() {
        *x = (*x - m).exp();
        z += *x as f64;
    }
    let inv = (1.0 / z) as f32;
    e.iter_mut().for_each(|x| *x *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ParamLayout;
    use crate::rng::Rng;
    use std::sync::Arc;

    const KINDS: [AttentionKind; 3] = [AttentionKind::Additive, AttentionKind::Dot, AttentionKind::General];

    fn setup(kind: AttentionKind, hq: usize, hk: usize, seed: u64) -> (Attention, Params) {
        let att = Attention { kind, query: hq, key: hk, units: 5 };
        att.validate().unwrap();
        let mut p = Params::zeros(Arc::new(ParamLayout::new(att.param_entries())));
        let mut rng = Rng::new(seed);
        p.data.iter_mut().for_each(|x| *x = rng.uniform_range(-0.6, 0.6));
        (att, p)
    }

    /// The encoder side of a reference computation: keys `[Ts, B, Hk]` and each row's length.
    struct Keys<'a> {
        keys: &'a [f32],
        ts: usize,
        b: usize,
        lengths: &'a [usize],
    }

    /// The naive reference: every score computed from the raw weights for each (query, key)
    /// pair, in f64, for queries `q` `[Tq, B, Hq]`. Returns (output [Tq, B, Hq], weights
    /// [Tq, B, Ts]).
    fn reference(att: &Attention, p: &Params, memory: &Keys, q: &[f32], tq: usize) -> (Vec<f32>, Vec<f32>) {
        let Keys { keys, ts, b, lengths } = *memory;
        let (hq, hk, a) = (att.query, att.key, att.units);
        let mut out = vec![0.0; tq * b * hq];
        let mut weights = vec![0.0; tq * b * ts];
        let w = |name: &str, r: usize, c: usize, cols: usize| p.view(name)[r * cols + c] as f64;
        for t in 0..tq {
            for r in 0..b {
                let qi = &q[(t * b + r) * hq..(t * b + r + 1) * hq];
                let k = |s: usize, j: usize| keys[(s * b + r) * hk + j] as f64;
                let mut e = vec![f64::NEG_INFINITY; ts];
                for (s, e) in e[..lengths[r]].iter_mut().enumerate() {
                    *e = match att.kind {
                        AttentionKind::Dot => (0..hq).map(|j| qi[j] as f64 * k(s, j)).sum(),
                        AttentionKind::General => (0..hq)
                            .map(|i| qi[i] as f64 * (0..hk).map(|j| w("attn.weight", i, j, hk) * k(s, j)).sum::<f64>())
                            .sum(),
                        AttentionKind::Additive => (0..a)
                            .map(|u| {
                                let x: f64 =
                                    (0..hq).map(|j| w("attn.query.weight", u, j, hq) * qi[j] as f64).sum::<f64>()
                                        + (0..hk).map(|j| w("attn.key.weight", u, j, hk) * k(s, j)).sum::<f64>();
                                p.view("attn.v")[u] as f64 * x.tanh()
                            })
                            .sum(),
                    };
                }
                let m = e.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = e.iter().map(|x| (x - m).exp()).sum();
                let alpha: Vec<f64> = e.iter().map(|x| (x - m).exp() / z).collect();
                let mut zc: Vec<f64> = (0..hk)
                    .map(|j| (0..ts).map(|s| if s < lengths[r] { alpha[s] * k(s, j) } else { 0.0 }).sum())
                    .collect();
                zc.extend(qi.iter().map(|&x| x as f64));
                for o in 0..hq {
                    let pre: f64 = (0..hk + hq).map(|j| w("attn.combine.weight", o, j, hk + hq) * zc[j]).sum::<f64>()
                        + p.view("attn.combine.bias")[o] as f64;
                    out[(t * b + r) * hq + o] = pre.tanh() as f32;
                }
                for s in 0..ts {
                    weights[(t * b + r) * ts + s] = alpha[s] as f32;
                }
            }
        }
        (out, weights)
    }

    fn random(n: usize, rng: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| rng.uniform_range(-1.0, 1.0)).collect()
    }

    #[test]
    fn forward_matches_the_naive_reference_and_masks_padding() {
        for kind in KINDS {
            let (hq, hk) = (4, if kind == AttentionKind::Dot { 4 } else { 6 });
            let (att, p) = setup(kind, hq, hk, 3);
            let (ts, b, tq, lengths) = (5, 3, 4, [5, 2, 1]);
            let mut rng = Rng::new(9);
            let mut keys = random(ts * b * hk, &mut rng);
            let q = random(tq * b * hq, &mut rng);
            let (want, want_w) = reference(&att, &p, &Keys { keys: &keys, ts, b, lengths: &lengths }, &q, tq);
            // Padded keys must not matter: make them huge.
            for s in 0..ts {
                for r in 0..b {
                    if s >= lengths[r] {
                        keys[(s * b + r) * hk..(s * b + r + 1) * hk].iter_mut().for_each(|x| *x = 1e3);
                    }
                }
            }
            let mem = att.memory(&p, keys, ts, b, &lengths).unwrap();
            let mut cache = AttentionCache::default();
            att.forward(&p, &mem, &q, tq, None, &mut cache).unwrap();
            for (i, (x, y)) in cache.output().iter().zip(&want).enumerate() {
                assert!((x - y).abs() < 1e-5, "{kind:?} output[{i}]: {x} vs {y}");
            }
            for (i, (x, y)) in cache.weights.iter().zip(&want_w).enumerate() {
                assert!((x - y).abs() < 1e-6, "{kind:?} weights[{i}]: {x} vs {y}");
            }
        }
    }

    #[test]
    fn rows_map_queries_to_memory_rows() {
        let (att, p) = setup(AttentionKind::General, 3, 4, 5);
        let mut rng = Rng::new(1);
        let keys = random(4 * 2 * 4, &mut rng);
        let mem = att.memory(&p, keys, 4, 2, &[4, 3]).unwrap();
        let q = random(2 * 3, &mut rng);
        let mut all = AttentionCache::default();
        att.forward(&p, &mem, &[&q[3..6], &q[3..6]].concat(), 1, None, &mut all).unwrap();
        let mut one = AttentionCache::default();
        att.forward(&p, &mem, &q[3..6], 1, Some(&[1]), &mut one).unwrap();
        assert_eq!(&all.output()[3..6], one.output());
        assert!(att.forward(&p, &mem, &q[3..6], 1, Some(&[2]), &mut one).is_err());
    }

    /// Central differences of L = Σ out ⊙ R (R fixed random) against the analytic backward, for
    /// every parameter, query and (real) key value.
    #[test]
    fn backward_matches_finite_differences() {
        for kind in KINDS {
            let (hq, hk) = (3, if kind == AttentionKind::Dot { 3 } else { 4 });
            let (att, p) = setup(kind, hq, hk, 11);
            let (ts, b, tq, lengths) = (4, 2, 3, [4, 2]);
            let mut rng = Rng::new(21);
            let keys = random(ts * b * hk, &mut rng);
            let q = random(tq * b * hq, &mut rng);
            let r = random(tq * b * hq, &mut rng);
            let loss = |p: &Params, keys: &[f32], q: &[f32]| -> f64 {
                let mem = att.memory(p, keys.to_vec(), ts, b, &lengths).unwrap();
                let mut c = AttentionCache::default();
                att.forward(p, &mem, q, tq, None, &mut c).unwrap();
                c.output().iter().zip(&r).map(|(x, y)| (*x as f64) * (*y as f64)).sum()
            };
            let mem = att.memory(&p, keys.clone(), ts, b, &lengths).unwrap();
            let mut c = AttentionCache::default();
            att.forward(&p, &mem, &q, tq, None, &mut c).unwrap();
            let mut g = Params::zeros(p.layout.clone());
            let mut dkeys = vec![0.0; keys.len()];
            let dq = att.backward(&p, &mem, &c, &r, &mut g, &mut dkeys).unwrap();
            let eps = 1e-2f32;
            let close = |what: String, num: f64, ana: f32| {
                assert!(
                    (num - ana as f64).abs() <= 2e-3 + 1e-2 * num.abs(),
                    "{kind:?} {what}: numeric {num} vs analytic {ana}"
                );
            };
            for i in 0..p.data.len() {
                let (mut pp, mut pm) = (p.clone(), p.clone());
                pp.data[i] += eps;
                pm.data[i] -= eps;
                close(
                    format!("param {i}"),
                    (loss(&pp, &keys, &q) - loss(&pm, &keys, &q)) / (2.0 * eps as f64),
                    g.data[i],
                );
            }
            for i in 0..q.len() {
                let (mut qp, mut qm) = (q.clone(), q.clone());
                qp[i] += eps;
                qm[i] -= eps;
                close(format!("query {i}"), (loss(&p, &keys, &qp) - loss(&p, &keys, &qm)) / (2.0 * eps as f64), dq[i]);
            }
            for i in 0..keys.len() {
                let (mut kp, mut km) = (keys.clone(), keys.clone());
                kp[i] += eps;
                km[i] -= eps;
                close(format!("key {i}"), (loss(&p, &kp, &q) - loss(&p, &km, &q)) / (2.0 * eps as f64), dkeys[i]);
            }
            // Padded keys get no gradient.
            for s in 2..ts {
                assert!(dkeys[(s * b + 1) * hk..(s * b + 2) * hk].iter().all(|&d| d == 0.0));
            }
        }
    }

    #[test]
    fn bad_sizes_and_lengths_are_errors() {
        assert!(Attention { kind: AttentionKind::Dot, query: 3, key: 6, units: 0 }.validate().is_err());
        assert!(AttentionKind::parse("bahdanau").is_err());
        let (att, p) = setup(AttentionKind::Dot, 2, 2, 1);
        assert!(att.memory(&p, vec![0.0; 2 * 2 * 2], 2, 2, &[2, 0]).is_err());
        assert!(att.memory(&p, vec![0.0; 2 * 2 * 2], 2, 2, &[3, 1]).is_err());
        assert!(att.memory(&p, vec![0.0; 3], 2, 2, &[1, 1]).is_err());
    }
}
