//! Fused gate nonlinearities for one time step over a batch block.
//!
//! Each function takes the gate pre-activations of one step, `[B, G·H]` row-major with the gate
//! blocks in PyTorch order, applies the nonlinearities in place and writes the new state. Two
//! implementations share one signature:
//! - [`naive`]: the reference, one `f32::exp`/`f32::tanh` library call per value;
//! - the public functions of this module: the same formulas with a polynomial `exp` and no
//!   library calls. On x86-64 with AVX2 (chosen at run time, `is_x86_feature_detected!`) they
//!   run as explicit 8-lane intrinsics ([`avx2`]); elsewhere the portable scalar loops. No fused
//!   multiply-add is introduced on either path (Rust never contracts `a * b + c`), so both
//!   compute the same bits per element: results do not depend on the CPU.

/// The reference implementations (library `exp`/`tanh`), kept for tests.
pub mod naive {
    fn sigmoid(x: f32) -> f32 {
        1.0 / (1.0 + (-x).exp())
    }

    /// LSTM step. `gates` `[B, 4H]` (i, f, g, o pre-activations, both biases included) becomes
    /// the activated gates; `c_prev` `[B, H]`; writes `c = f*c_prev + i*g`, `tanh_c = tanh(c)`,
    /// `h = o*tanh_c`, each `[B, H]`.
    pub fn lstm_step(
        gates: &mut [f32],
        c_prev: &[f32],
        c: &mut [f32],
        tanh_c: &mut [f32],
        h: &mut [f32],
        hidden: usize,
    ) {
        for b in 0..c.len() / hidden {
            let g = &mut gates[b * 4 * hidden..(b + 1) * 4 * hidden];
            for j in 0..hidden {
                let i_gate = sigmoid(g[j]);
                let f_gate = sigmoid(g[hidden + j]);
                let g_gate = g[2 * hidden + j].tanh();
                let o_gate = sigmoid(g[3 * hidden + j]);
                let k = b * hidden + j;
                c[k] = f_gate * c_prev[k] + i_gate * g_gate;
                tanh_c[k] = c[k].tanh();
                h[k] = o_gate * tanh_c[k];
                g[j] = i_gate;
                g[hidden + j] = f_gate;
                g[2 * hidden + j] = g_gate;
                g[3 * hidden + j] = o_gate;
            }
        }
    }

    /// GRU step (reset after the hidden matmul, as PyTorch). `gates` `[B, 3H]` holds the input
    /// side `W_ih x + b_ih` plus `b_hh` in the r and z blocks; `hh` `[B, 3H]` is `h_prev W_hhᵀ`
    /// without bias; `b_hn` `[H]`. Writes `hn = hh_n + b_hn` `[B, H]` (kept for backward), turns
    /// `gates` into `r, z, n` and writes `h = (1-z)*n + z*h_prev`.
    pub fn gru_step(
        gates: &mut [f32],
        hh: &[f32],
        b_hn: &[f32],
        hn: &mut [f32],
        h_prev: &[f32],
        h: &mut [f32],
        hidden: usize,
    ) {
        for b in 0..h.len() / hidden {
            let g = &mut gates[b * 3 * hidden..(b + 1) * 3 * hidden];
            let u = &hh[b * 3 * hidden..(b + 1) * 3 * hidden];
            for j in 0..hidden {
                let k = b * hidden + j;
                let r = sigmoid(g[j] + u[j]);
                let z = sigmoid(g[hidden + j] + u[hidden + j]);
                hn[k] = u[2 * hidden + j] + b_hn[j];
                let n = (g[2 * hidden + j] + r * hn[k]).tanh();
                h[k] = n + z * (h_prev[k] - n);
                g[j] = r;
                g[hidden + j] = z;
                g[2 * hidden + j] = n;
            }
        }
    }

    /// Elman step: `pre` `[B, H]` becomes `tanh(pre)` or `max(pre, 0)` in place.
    pub fn rnn_step(pre: &mut [f32], relu: bool) {
        for v in pre.iter_mut() {
            *v = if relu { v.max(0.0) } else { v.tanh() };
        }
    }
}

/// Vectorisable formulas (no library calls, no branches in the loops).
mod portable {
    pub(super) const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in a short high part (exact products with small integers) and the remainder.
    pub(super) const LN2_HI: f32 = 0.693_359_4;
    pub(super) const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2²³: adding it rounds to an integer held in the low mantissa bits.
    pub(super) const ROUND_MAGIC: f32 = 12_582_912.0;
    /// Cephes' polynomial for e^r, highest degree first.
    pub(super) const EXP_POLY: [f32; 6] =
        [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5];

    /// `e^x` within about 2 ulp for x in [-87.3, 88.3] (clamped outside: the results stay normal
    /// and finite). Cephes' range reduction `x = n·ln2 + r`, |r| ≤ ln2/2, and its degree-5
    /// polynomial for e^r; 2ⁿ is built from the exponent bits.
    #[inline(always)]
    pub fn exp(x: f32) -> f32 {
        let x = x.clamp(-87.3, 88.3);
        let shifted = x * LOG2E + ROUND_MAGIC;
        let n = shifted - ROUND_MAGIC;
        let r = x - n * LN2_HI - n * LN2_LO;
        let mut p = EXP_POLY[0];
        for c in &EXP_POLY[1..] {
            p = p * r + c;
        }
        let e_r = p * r * r + r + 1.0;
        // The integer n sits in the low mantissa bits of `shifted` (its exponent is fixed).
        let n_int = shifted.to_bits().wrapping_sub(ROUND_MAGIC.to_bits()) as i32;
        let two_n = f32::from_bits(((n_int + 127) as u32) << 23);
        e_r * two_n
    }

    #[inline(always)]
    pub fn sigmoid(x: f32) -> f32 {
        1.0 / (1.0 + exp(-x))
    }

    /// `tanh x = sign(x)·(1 − e)/(1 + e)` with `e = e^{−2|x|}` ∈ (0, 1]: never overflows; the
    /// absolute error stays below 1e-7.
    #[inline(always)]
    pub fn tanh(x: f32) -> f32 {
        let e = exp(-2.0 * x.abs());
        ((1.0 - e) / (1.0 + e)).copysign(x)
    }

    #[inline(always)]
    pub fn lstm_step(
        gates: &mut [f32],
        c_prev: &[f32],
        c: &mut [f32],
        tanh_c: &mut [f32],
        h: &mut [f32],
        hidden: usize,
    ) {
        let rows = gates
            .chunks_exact_mut(4 * hidden)
            .zip(c_prev.chunks_exact(hidden))
            .zip(c.chunks_exact_mut(hidden))
            .zip(tanh_c.chunks_exact_mut(hidden))
            .zip(h.chunks_exact_mut(hidden));
        for ((((g, c_prev), c), tanh_c), h) in rows {
            let (gi, rest) = g.split_at_mut(hidden);
            let (gf, rest) = rest.split_at_mut(hidden);
            let (gg, go) = rest.split_at_mut(hidden);
            for j in 0..hidden {
                let i_gate = sigmoid(gi[j]);
                let f_gate = sigmoid(gf[j]);
                let g_gate = tanh(gg[j]);
                let o_gate = sigmoid(go[j]);
                let c_new = f_gate * c_prev[j] + i_gate * g_gate;
                let t = tanh(c_new);
                c[j] = c_new;
                tanh_c[j] = t;
                h[j] = o_gate * t;
                gi[j] = i_gate;
                gf[j] = f_gate;
                gg[j] = g_gate;
                go[j] = o_gate;
            }
        }
    }

    #[inline(always)]
    pub fn gru_step(
        gates: &mut [f32],
        hh: &[f32],
        b_hn: &[f32],
        hn: &mut [f32],
        h_prev: &[f32],
        h: &mut [f32],
        hidden: usize,
    ) {
        let rows = gates
            .chunks_exact_mut(3 * hidden)
            .zip(hh.chunks_exact(3 * hidden))
            .zip(hn.chunks_exact_mut(hidden))
            .zip(h_prev.chunks_exact(hidden))
            .zip(h.chunks_exact_mut(hidden));
        let b_hn = &b_hn[..hidden];
        for ((((g, u), hn), h_prev), h) in rows {
            let (gr, rest) = g.split_at_mut(hidden);
            let (gz, gn) = rest.split_at_mut(hidden);
            let (ur, rest) = u.split_at(hidden);
            let (uz, un) = rest.split_at(hidden);
            for j in 0..hidden {
                let r = sigmoid(gr[j] + ur[j]);
                let z = sigmoid(gz[j] + uz[j]);
                let hidden_n = un[j] + b_hn[j];
                let n = tanh(gn[j] + r * hidden_n);
                hn[j] = hidden_n;
                h[j] = n + z * (h_prev[j] - n);
                gr[j] = r;
                gz[j] = z;
                gn[j] = n;
            }
        }
    }

    #[inline(always)]
    pub fn rnn_step(pre: &mut [f32], relu: bool) {
        if relu {
            pre.iter_mut().for_each(|v| *v = v.max(0.0));
        } else {
            pre.iter_mut().for_each(|v| *v = tanh(*v));
        }
    }
}

/// The portable formulas written out with AVX2 intrinsics, 8 lanes at a time: the compiler does
/// not vectorise the portable loops (their `exp` bit tricks defeat it; measured: scalar code,
/// a fifth of a training step). Every lane runs the portable operations in the same order with
/// the same rounding (no FMA), so the bits equal the portable build's; row tails shorter than 8
/// go through the portable code itself.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::portable;
    use std::arch::x86_64::*;

    const SIGN: f32 = -0.0;

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn exp(x: __m256) -> __m256 {
        // max(lo, x) then min(hi, ·) keep a NaN x (the second operand wins when unordered), as
        // `f32::clamp` does.
        let x = _mm256_min_ps(_mm256_set1_ps(88.3), _mm256_max_ps(_mm256_set1_ps(-87.3), x));
        let magic = _mm256_set1_ps(portable::ROUND_MAGIC);
        let shifted = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(portable::LOG2E)), magic);
        let n = _mm256_sub_ps(shifted, magic);
        let r = _mm256_sub_ps(
            _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(portable::LN2_HI))),
            _mm256_mul_ps(n, _mm256_set1_ps(portable::LN2_LO)),
        );
        let mut p = _mm256_set1_ps(portable::EXP_POLY[0]);
        for &c in &portable::EXP_POLY[1..] {
            p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(c));
        }
        let e_r = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, r), r), r), _mm256_set1_ps(1.0));
        let n_int = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_castps_si256(magic));
        let two_n = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n_int, _mm256_set1_epi32(127))));
        _mm256_mul_ps(e_r, two_n)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn sigmoid(x: __m256) -> __m256 {
        let one = _mm256_set1_ps(1.0);
        _mm256_div_ps(one, _mm256_add_ps(one, exp(_mm256_xor_ps(x, _mm256_set1_ps(SIGN)))))
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn tanh(x: __m256) -> __m256 {
        let sign = _mm256_set1_ps(SIGN);
        let abs = _mm256_andnot_ps(sign, x);
        let e = exp(_mm256_mul_ps(_mm256_set1_ps(-2.0), abs));
        let one = _mm256_set1_ps(1.0);
        let t = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
        _mm256_or_ps(_mm256_andnot_ps(sign, t), _mm256_and_ps(sign, x))
    }

    /// `gate ← σ(gate)` (or `tanh`) over `len` values (a multiple of 8) at `g`: the exp of each
    /// vector is independent of the next, so the loop runs at the throughput of the vector units.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn activate_in_place<const TANH: bool>(g: *mut f32, len: usize) {
        for j in (0..len).step_by(8) {
            let x = _mm256_loadu_ps(g.add(j));
            _mm256_storeu_ps(g.add(j), if TANH { tanh(x) } else { sigmoid(x) });
        }
    }

    /// Safety contract of the public functions: the CPU supports AVX2 (checked by the caller);
    /// slice lengths as in [`super::naive`].
    ///
    /// Each row runs in two passes: first the four gates, then `c`, `tanh c` and `h` from the
    /// activated gates. One fused loop chains two exps per vector (a gate's, then tanh c's),
    /// about 150 dependent cycles that the out-of-order window cannot overlap with the next
    /// vector's; split, each pass's vectors are independent (measured on 32 rows × 256 units:
    /// 8.1 → 5.5 ns per unit; GEN b64 +7 %). Same operations per element, so the same bits.
    #[target_feature(enable = "avx2")]
    pub unsafe fn lstm_step(
        gates: &mut [f32],
        c_prev: &[f32],
        c: &mut [f32],
        tanh_c: &mut [f32],
        h: &mut [f32],
        hidden: usize,
    ) {
        let vec_end = hidden / 8 * 8;
        for b in 0..c.len() / hidden {
            let g = gates[b * 4 * hidden..(b + 1) * 4 * hidden].as_mut_ptr();
            let k0 = b * hidden;
            activate_in_place::<false>(g, vec_end);
            activate_in_place::<false>(g.add(hidden), vec_end);
            activate_in_place::<true>(g.add(2 * hidden), vec_end);
            activate_in_place::<false>(g.add(3 * hidden), vec_end);
            for j in (0..vec_end).step_by(8) {
                let (i_gate, f_gate) = (_mm256_loadu_ps(g.add(j)), _mm256_loadu_ps(g.add(hidden + j)));
                let (g_gate, o_gate) = (_mm256_loadu_ps(g.add(2 * hidden + j)), _mm256_loadu_ps(g.add(3 * hidden + j)));
                let c_new = _mm256_add_ps(
                    _mm256_mul_ps(f_gate, _mm256_loadu_ps(c_prev[k0 + j..k0 + j + 8].as_ptr())),
                    _mm256_mul_ps(i_gate, g_gate),
                );
                let t = tanh(c_new);
                _mm256_storeu_ps(c[k0 + j..k0 + j + 8].as_mut_ptr(), c_new);
                _mm256_storeu_ps(tanh_c[k0 + j..k0 + j + 8].as_mut_ptr(), t);
                _mm256_storeu_ps(h[k0 + j..k0 + j + 8].as_mut_ptr(), _mm256_mul_ps(o_gate, t));
            }
            let g = std::slice::from_raw_parts_mut(g, 4 * hidden);
            for j in vec_end..hidden {
                let k = k0 + j;
                let (i_gate, f_gate) = (portable::sigmoid(g[j]), portable::sigmoid(g[hidden + j]));
                let (g_gate, o_gate) = (portable::tanh(g[2 * hidden + j]), portable::sigmoid(g[3 * hidden + j]));
                let c_new = f_gate * c_prev[k] + i_gate * g_gate;
                let t = portable::tanh(c_new);
                (c[k], tanh_c[k], h[k]) = (c_new, t, o_gate * t);
                (g[j], g[hidden + j], g[2 * hidden + j], g[3 * hidden + j]) = (i_gate, f_gate, g_gate, o_gate);
            }
        }
    }

    /// Two passes per row as in [`lstm_step`]: `r` and `z`, then `n` (which needs `r`) and `h`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn gru_step(
        gates: &mut [f32],
        hh: &[f32],
        b_hn: &[f32],
        hn: &mut [f32],
        h_prev: &[f32],
        h: &mut [f32],
        hidden: usize,
    ) {
        let vec_end = hidden / 8 * 8;
        let ld = |s: &[f32], at: usize| _mm256_loadu_ps(s[at..at + 8].as_ptr());
        for b in 0..h.len() / hidden {
            let g = gates[b * 3 * hidden..(b + 1) * 3 * hidden].as_mut_ptr();
            let u = &hh[b * 3 * hidden..(b + 1) * 3 * hidden];
            let k0 = b * hidden;
            for j in (0..vec_end).step_by(8) {
                let (gr, gz) = (g.add(j), g.add(hidden + j));
                _mm256_storeu_ps(gr, sigmoid(_mm256_add_ps(_mm256_loadu_ps(gr), ld(u, j))));
                _mm256_storeu_ps(gz, sigmoid(_mm256_add_ps(_mm256_loadu_ps(gz), ld(u, hidden + j))));
            }
            for j in (0..vec_end).step_by(8) {
                let (r, z, gn) = (_mm256_loadu_ps(g.add(j)), _mm256_loadu_ps(g.add(hidden + j)), g.add(2 * hidden + j));
                let hidden_n = _mm256_add_ps(ld(u, 2 * hidden + j), ld(b_hn, j));
                let n = tanh(_mm256_add_ps(_mm256_loadu_ps(gn), _mm256_mul_ps(r, hidden_n)));
                _mm256_storeu_ps(hn[k0 + j..k0 + j + 8].as_mut_ptr(), hidden_n);
                let h_new = _mm256_add_ps(n, _mm256_mul_ps(z, _mm256_sub_ps(ld(h_prev, k0 + j), n)));
                _mm256_storeu_ps(h[k0 + j..k0 + j + 8].as_mut_ptr(), h_new);
                _mm256_storeu_ps(gn, n);
            }
            let g = std::slice::from_raw_parts_mut(g, 3 * hidden);
            for j in vec_end..hidden {
                let k = k0 + j;
                let r = portable::sigmoid(g[j] + u[j]);
                let z = portable::sigmoid(g[hidden + j] + u[hidden + j]);
                let hidden_n = u[2 * hidden + j] + b_hn[j];
                let n = portable::tanh(g[2 * hidden + j] + r * hidden_n);
                (hn[k], h[k]) = (hidden_n, n + z * (h_prev[k] - n));
                (g[j], g[hidden + j], g[2 * hidden + j]) = (r, z, n);
            }
        }
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn rnn_step(pre: &mut [f32], relu: bool) {
        let mut chunks = pre.chunks_exact_mut(8);
        for v in &mut chunks {
            let x = _mm256_loadu_ps(v.as_ptr());
            // 0 as the second operand: a NaN lane gives 0, as the portable `v.max(0.0)` does.
            let y = if relu { _mm256_max_ps(x, _mm256_setzero_ps()) } else { tanh(x) };
            _mm256_storeu_ps(v.as_mut_ptr(), y);
        }
        portable::rnn_step(chunks.into_remainder(), relu);
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    // The macro caches the CPUID result: this is one atomic load per call.
    std::is_x86_feature_detected!("avx2")
}

/// Values per step below which a gate kernel runs on one thread (a fork-join costs a few
/// microseconds; 4,096 values take about as long).
const MIN_PARALLEL_VALUES: usize = 4096;

/// Where to cut `rows` rows of width `hidden` in two halves run on two threads of the engine's
/// pool, or None when the step is too small or the pool has one thread. Rows are independent, so
/// the split never changes the results. Each half splits again while it is large enough.
fn split_point(rows: usize, hidden: usize) -> Option<usize> {
    (rows >= 2 && rows * hidden >= 2 * MIN_PARALLEL_VALUES && crate::parallel::threads() > 1).then_some(rows / 2)
}

/// LSTM step, fast path; same contract as [`naive::lstm_step`].
pub fn lstm_step(gates: &mut [f32], c_prev: &[f32], c: &mut [f32], tanh_c: &mut [f32], h: &mut [f32], hidden: usize) {
    debug_assert!(
        gates.len() == 4 * c.len() && c_prev.len() == c.len() && tanh_c.len() == c.len() && h.len() == c.len()
    );
    if let Some(half) = split_point(c.len() / hidden, hidden) {
        let (g0, g1) = gates.split_at_mut(half * 4 * hidden);
        let (p0, p1) = c_prev.split_at(half * hidden);
        let (c0, c1) = c.split_at_mut(half * hidden);
        let (t0, t1) = tanh_c.split_at_mut(half * hidden);
        let (h0, h1) = h.split_at_mut(half * hidden);
        let mut halves = [(g0, p0, c0, t0, h0), (g1, p1, c1, t1, h1)];
        crate::parallel::for_each_mut(&mut halves, |(g, p, c, t, h)| lstm_step(g, p, c, t, h, hidden));
        return;
    }
    lstm_rows(gates, c_prev, c, tanh_c, h, hidden)
}

/// [`lstm_step`] on the calling thread (a caller that already split the rows over threads).
pub fn lstm_rows(gates: &mut [f32], c_prev: &[f32], c: &mut [f32], tanh_c: &mut [f32], h: &mut [f32], hidden: usize) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2 is available on this CPU (checked just above).
        return unsafe { avx2::lstm_step(gates, c_prev, c, tanh_c, h, hidden) };
    }
    portable::lstm_step(gates, c_prev, c, tanh_c, h, hidden)
}

/// GRU step, fast path; same contract as [`naive::gru_step`].
pub fn gru_step(
    gates: &mut [f32],
    hh: &[f32],
    b_hn: &[f32],
    hn: &mut [f32],
    h_prev: &[f32],
    h: &mut [f32],
    hidden: usize,
) {
    debug_assert!(
        gates.len() == 3 * h.len() && hh.len() == gates.len() && hn.len() == h.len() && h_prev.len() == h.len()
    );
    if let Some(half) = split_point(h.len() / hidden, hidden) {
        let (g0, g1) = gates.split_at_mut(half * 3 * hidden);
        let (u0, u1) = hh.split_at(half * 3 * hidden);
        let (n0, n1) = hn.split_at_mut(half * hidden);
        let (p0, p1) = h_prev.split_at(half * hidden);
        let (h0, h1) = h.split_at_mut(half * hidden);
        let mut halves = [(g0, u0, n0, p0, h0), (g1, u1, n1, p1, h1)];
        crate::parallel::for_each_mut(&mut halves, |(g, u, n, p, h)| gru_step(g, u, b_hn, n, p, h, hidden));
        return;
    }
    gru_rows(gates, hh, b_hn, hn, h_prev, h, hidden)
}

/// [`gru_step`] on the calling thread (a caller that already split the rows over threads).
pub fn gru_rows(
    gates: &mut [f32],
    hh: &[f32],
    b_hn: &[f32],
    hn: &mut [f32],
    h_prev: &[f32],
    h: &mut [f32],
    hidden: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2 is available on this CPU (checked just above).
        return unsafe { avx2::gru_step(gates, hh, b_hn, hn, h_prev, h, hidden) };
    }
    portable::gru_step(gates, hh, b_hn, hn, h_prev, h, hidden)
}

/// Elman step, fast path; same contract as [`naive::rnn_step`].
pub fn rnn_step(pre: &mut [f32], relu: bool) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2 is available on this CPU (checked just above).
        return unsafe { avx2::rnn_step(pre, relu) };
    }
    portable::rnn_step(pre, relu)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pre-activations spanning saturation (±30), the usual range and exact zero.
    fn inputs(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| match i % 7 {
                0 => 0.0,
                1 => 30.0 * ((i as f32) * 0.61).sin(),
                _ => 4.0 * ((i as f32) * 1.37).sin(),
            })
            .collect()
    }

    fn assert_close(what: &str, fast: &[f32], naive: &[f32], tol: f32) {
        assert_eq!(fast.len(), naive.len());
        for (k, (a, b)) in fast.iter().zip(naive).enumerate() {
            assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{what}[{k}]: fast {a} vs naive {b}");
        }
    }

    #[test]
    fn fast_exp_tanh_sigmoid_match_the_library_functions() {
        for i in -20_000..=20_000 {
            let x = i as f32 * 0.004_35; // [-87, 87], inside the unclamped range
            let (e, want) = (portable::exp(x), x.exp());
            assert!((e - want).abs() <= 4.0 * f32::EPSILON * want, "exp({x}) = {e}, want {want}");
            assert!((portable::tanh(x) - x.tanh()).abs() <= 2e-7, "tanh({x})");
            assert!((portable::sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs() <= 2e-7, "sigmoid({x})");
        }
        assert_eq!(portable::tanh(0.0), 0.0);
        assert_eq!(portable::tanh(1e6), 1.0);
        assert_eq!(portable::sigmoid(-1e6), portable::sigmoid(-200.0));
        assert!(portable::sigmoid(-1e6) < 1e-37);
    }

    // Sizes cover a tail that is not a multiple of the vector width (H = 13).
    const B: usize = 3;
    const H: usize = 13;

    #[test]
    fn lstm_fast_matches_naive_and_both_builds_agree_bitwise() {
        let pre = inputs(B * 4 * H);
        let c_prev = inputs(B * H + 3)[3..].to_vec();
        let (mut g1, mut g2) = (pre.clone(), pre);
        let mut out1 = vec![vec![0.0; B * H]; 3];
        let mut out2 = out1.clone();
        {
            let [c, t, h] = &mut out1[..] else { unreachable!() };
            lstm_step(&mut g1, &c_prev, c, t, h, H);
        }
        {
            let [c, t, h] = &mut out2[..] else { unreachable!() };
            naive::lstm_step(&mut g2, &c_prev, c, t, h, H);
        }
        assert_close("gates", &g1, &g2, 1e-6);
        for (name, (a, b)) in ["c", "tanh_c", "h"].iter().zip(out1.iter().zip(&out2)) {
            assert_close(name, a, b, 1e-6);
        }
        // The portable build gives the same bits as the run-time selected one.
        let mut g3 = inputs(B * 4 * H);
        let mut out3 = vec![vec![0.0; B * H]; 3];
        {
            let [c, t, h] = &mut out3[..] else { unreachable!() };
            portable::lstm_step(&mut g3, &c_prev, c, t, h, H);
        }
        assert_eq!((g3, out3), (g1, out1));
    }

    #[test]
    fn gru_fast_matches_naive_and_both_builds_agree_bitwise() {
        let pre = inputs(B * 3 * H);
        let hh = inputs(B * 3 * H + 5)[5..].to_vec();
        let b_hn = inputs(H + 2)[2..].to_vec();
        let h_prev: Vec<f32> = inputs(B * H).iter().map(|v| v.tanh()).collect();
        let (mut g1, mut g2) = (pre.clone(), pre);
        let (mut hn1, mut hn2, mut h1, mut h2) =
            (vec![0.0; B * H], vec![0.0; B * H], vec![0.0; B * H], vec![0.0; B * H]);
        gru_step(&mut g1, &hh, &b_hn, &mut hn1, &h_prev, &mut h1, H);
        naive::gru_step(&mut g2, &hh, &b_hn, &mut hn2, &h_prev, &mut h2, H);
        assert_close("gates", &g1, &g2, 1e-6);
        assert_close("hn", &hn1, &hn2, 0.0);
        assert_close("h", &h1, &h2, 1e-6);
        let (mut g3, mut hn3, mut h3) = (inputs(B * 3 * H), vec![0.0; B * H], vec![0.0; B * H]);
        portable::gru_step(&mut g3, &hh, &b_hn, &mut hn3, &h_prev, &mut h3, H);
        assert_eq!((g3, hn3, h3), (g1, hn1, h1), "portable and selected builds differ");
    }

    #[test]
    fn rnn_fast_matches_naive_and_both_builds_agree_bitwise() {
        for relu in [false, true] {
            let (mut a, mut b) = (inputs(B * H), inputs(B * H));
            rnn_step(&mut a, relu);
            naive::rnn_step(&mut b, relu);
            assert_close(if relu { "relu" } else { "tanh" }, &a, &b, 1e-6);
            let mut c = inputs(B * H);
            portable::rnn_step(&mut c, relu);
            assert_eq!(c, a, "portable and selected builds differ");
        }
    }

    /// Steps large enough to be split over the pool's threads (64 rows × 256 units) give the
    /// same bits as the portable kernel run on the whole block at once.
    #[test]
    fn steps_split_over_threads_equal_the_whole_block() {
        let (b, h) = (64, 256);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let c_prev = inputs(b * h + 3)[3..].to_vec();
        let (mut g_ref, mut g) = (inputs(b * 4 * h), inputs(b * 4 * h));
        let mut o_ref = vec![vec![0.0; b * h]; 3];
        let mut o = o_ref.clone();
        {
            let [c, t, hh] = &mut o_ref[..] else { unreachable!() };
            portable::lstm_step(&mut g_ref, &c_prev, c, t, hh, h);
        }
        {
            let [c, t, hh] = &mut o[..] else { unreachable!() };
            lstm_step(&mut g, &c_prev, c, t, hh, h);
        }
        assert_eq!(bits(&g), bits(&g_ref), "lstm gates");
        for (x, y) in o.iter().zip(&o_ref) {
            assert_eq!(bits(x), bits(y), "lstm state");
        }
        let hh = inputs(b * 3 * h + 5)[5..].to_vec();
        let b_hn = inputs(h + 2)[2..].to_vec();
        let h_prev: Vec<f32> = inputs(b * h).iter().map(|v| v.tanh()).collect();
        let (mut g_ref, mut g) = (inputs(b * 3 * h), inputs(b * 3 * h));
        let (mut n_ref, mut n, mut h_ref, mut h_out) =
            (vec![0.0; b * h], vec![0.0; b * h], vec![0.0; b * h], vec![0.0; b * h]);
        portable::gru_step(&mut g_ref, &hh, &b_hn, &mut n_ref, &h_prev, &mut h_ref, h);
        gru_step(&mut g, &hh, &b_hn, &mut n, &h_prev, &mut h_out, h);
        assert_eq!((bits(&g), bits(&n), bits(&h_out)), (bits(&g_ref), bits(&n_ref), bits(&h_ref)), "gru");
    }

    /// The AVX2 kernels, called directly, give the portable build's bits (which the tests above
    /// hold against the naive reference), on rows of several vectors plus a tail, NaN included.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_agrees_with_the_portable_build_bitwise() {
        if !has_avx2() {
            eprintln!("avx2: not available on this CPU, skipped");
            return;
        }
        const H: usize = 37;
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let mut pre = inputs(B * 4 * H);
        pre[5] = f32::NAN;
        let c_prev = inputs(B * H + 3)[3..].to_vec();
        let (mut g_ref, mut g) = (pre.clone(), pre);
        let mut o_ref = vec![vec![0.0; B * H]; 3];
        let mut o = o_ref.clone();
        {
            let [c, t, h] = &mut o_ref[..] else { unreachable!() };
            portable::lstm_step(&mut g_ref, &c_prev, c, t, h, H);
        }
        {
            let [c, t, h] = &mut o[..] else { unreachable!() };
            // SAFETY: the feature was detected above.
            unsafe { avx2::lstm_step(&mut g, &c_prev, c, t, h, H) }
        }
        assert_eq!(bits(&g), bits(&g_ref), "lstm gates");
        for (a, b) in o.iter().zip(&o_ref) {
            assert_eq!(bits(a), bits(b), "lstm state");
        }

        let hh = inputs(B * 3 * H + 5)[5..].to_vec();
        let b_hn = inputs(H + 2)[2..].to_vec();
        let h_prev: Vec<f32> = inputs(B * H).iter().map(|v| v.tanh()).collect();
        let (mut g_ref, mut g) = (inputs(B * 3 * H), inputs(B * 3 * H));
        let (mut hn_ref, mut hn, mut h_ref, mut h) =
            (vec![0.0; B * H], vec![0.0; B * H], vec![0.0; B * H], vec![0.0; B * H]);
        portable::gru_step(&mut g_ref, &hh, &b_hn, &mut hn_ref, &h_prev, &mut h_ref, H);
        // SAFETY: the feature was detected above.
        unsafe { avx2::gru_step(&mut g, &hh, &b_hn, &mut hn, &h_prev, &mut h, H) }
        assert_eq!((bits(&g), bits(&hn), bits(&h)), (bits(&g_ref), bits(&hn_ref), bits(&h_ref)), "gru");

        for relu in [false, true] {
            let (mut r_ref, mut r) = (inputs(B * H), inputs(B * H));
            r_ref[3] = f32::NAN;
            r[3] = f32::NAN;
            portable::rnn_step(&mut r_ref, relu);
            // SAFETY: the feature was detected above.
            unsafe { avx2::rnn_step(&mut r, relu) }
            assert_eq!(bits(&r), bits(&r_ref), "rnn relu={relu}");
        }
    }
}
