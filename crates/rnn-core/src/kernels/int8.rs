//! Int8 weights for inference: `W [k, n]` stored as one signed byte per weight with a scale per
//! column (per output unit: a row of the layer's `[out, in]` weight), multiplied by f32 rows
//! that are quantized, one scale per row, at the time of the product:
//!
//! ```text
//! s_w[j] = max_p |W[p, j]| / 127     q[p, j] = round(W[p, j] / s_w[j])     ∈ [−127, 127]  (ties to even)
//! s_a[r] = max_p |A[r, p]| / 127     a8[r, p] = round(A[r, p] / s_a[r])    ∈ [−127, 127]
//! C[r, j] = (Σ_p a8[r, p] · q[p, j]) · s_a[r] · s_w[j]  (+ beta · C)
//! ```
//!
//! Each weight carries a relative error of at most 1/254 of its column's largest, each input of
//! 1/254 of its row's largest. The sum is exact in i32 (|Σ| ≤ k · 255 · 127 < 2³¹ for
//! k ≤ [`MAX_DEPTH`]), so every kernel set gives the same bits:
//! - AVX-512 VNNI: `vpdpbusd` multiplies unsigned by signed bytes, four per 32-bit lane. It reads
//!   `a8 + 128` (a8 XOR 0x80), and the epilogue subtracts `128 · Σ_p q[p, j]`, kept per column.
//!   Tiles of up to 6 rows × 4 panels (24 zmm accumulators), or 1 row × 8 panels.
//! - AVX2: `vpmaddubsw` on |a8| and on q given a8's sign (`vpsignb`): a pair of products is at
//!   most 2 · 127² and fits i16 without saturating; `vpmaddwd` by ones adds pairs into i32
//!   lanes. Tiles of up to 4 rows × 1 panel, or 1 row × 4 panels.
//! - portable: the same sums in i32 loops.
//!
//! Packing: panels of 16 columns; in a panel, the depth in groups of 4: group g holds, for each
//! column c, the bytes q[4g..4g+4, c] (64 bytes: one cache line, one zmm load). The depth is
//! padded to a multiple of 4 with zero weights, so the padding of a8 adds nothing.

use super::isa::Isa;
use super::precision::{
    for_each_tile, max_panels, split_panels_into, split_parts, KernelTable, SharedOut, TileDst, PANEL,
};
use super::tuning::{self, SplitKey};
use crate::error::{Error, Result};
use std::cell::RefCell;

/// Depth (k) per 32-bit lane of the dot-product instructions.
const GROUP: usize = 4;
/// The deepest product whose integer sums cannot overflow i32 (k · 255 · 127 < 2³¹).
pub const MAX_DEPTH: usize = 1 << 16;

/// One depth group of one panel: 16 columns × 4 bytes, a cache line.
#[repr(C, align(64))]
#[derive(Debug, Clone, Copy)]
struct Line([i8; PANEL * GROUP]);

/// `W [k, n]` packed as bytes with per-column scales (see the module comment).
#[derive(Debug, Clone, Default)]
pub struct Int8Matrix {
    k: usize,
    n: usize,
    /// `[⌈n/16⌉][⌈k/4⌉]` lines.
    lines: Vec<Line>,
    /// `[⌈n/16⌉·16]` s_w (0 past n).
    scales: Vec<f32>,
    /// `[⌈n/16⌉·16]` Σ_p q[p, j] (the VNNI kernels' correction).
    col_sums: Vec<i32>,
}

/// The kernels of one instruction set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Int8Kernels {
    Portable,
    Avx2,
    Vnni,
}

impl Int8Kernels {
    /// The int8 kernels of the GEMM's kernel set `isa` (AVX-512 without VNNI uses AVX2's).
    pub fn for_isa(isa: Isa) -> Int8Kernels {
        match isa {
            Isa::Avx512 if Int8Kernels::Vnni.available() => Int8Kernels::Vnni,
            Isa::Avx512 | Isa::Avx2 => Int8Kernels::Avx2,
            Isa::Portable => Int8Kernels::Portable,
        }
    }

    /// Whether this CPU can run them.
    pub fn available(self) -> bool {
        match self {
            Int8Kernels::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Int8Kernels::Avx2 => is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Int8Kernels::Vnni => is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni"),
            #[cfg(not(target_arch = "x86_64"))]
            Int8Kernels::Avx2 | Int8Kernels::Vnni => false,
        }
    }

    /// The name `engineInfo()` reports.
    pub fn name(self) -> &'static str {
        match self {
            Int8Kernels::Portable => "portable",
            Int8Kernels::Avx2 => "avx2",
            Int8Kernels::Vnni => "avx512vnni",
        }
    }

    /// Byte multiply-adds per f32 multiply-add, in time: a product is split over threads when
    /// its work, so counted, pays for the split as an f32 product's would.
    /// - VNNI: 64 per `vpdpbusd` against 16 per FMA. At f32's threshold a batch-1 step's products
    ///   were split and measured slower on a Xeon (GEN-LSTM-b1 at 2 threads: 12.8–13.3 µs per
    ///   token, against 11.5–12.7 unsplit), and faster in some processes on a Zen 4 host: where
    ///   the two counts disagree, the split is measured ([`tuning::chosen_parts`]).
    /// - AVX2: 32 per `vpmaddubsw` + `vpmaddwd` pair against 2 FMAs of 8. Counted as VNNI's, a
    ///   batch-1 step's products stayed on one thread and ran no faster at 2 threads than at 1.
    /// - portable: taken as f32's.
    fn macs_per_fma(self) -> usize {
        match self {
            Int8Kernels::Vnni => 4,
            Int8Kernels::Avx2 => 2,
            Int8Kernels::Portable => 1,
        }
    }

    fn max_rows(self) -> usize {
        match self {
            Int8Kernels::Avx2 => 4,
            Int8Kernels::Portable | Int8Kernels::Vnni => 6,
        }
    }

    fn max_panels(self, rows: usize) -> usize {
        max_panels(self == Int8Kernels::Avx2, rows)
    }

    fn kernel(self, rows: usize, panels: usize) -> Kernel {
        let table = match self {
            Int8Kernels::Portable => &PORTABLE,
            #[cfg(target_arch = "x86_64")]
            Int8Kernels::Avx2 => &avx2::TABLE,
            #[cfg(target_arch = "x86_64")]
            Int8Kernels::Vnni => &vnni::TABLE,
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("internal: x86 int8 kernels on another architecture"),
        };
        table.get(rows, panels)
    }
}

/// Where a kernel puts its tile: `C[r, j] ← (sum − offset · Σq[j]) · s_a[r] · s_w[j]`
/// (`+ beta · C[r, j]` unless beta is 0), for the tile's rows and the first `dst.cols` columns;
/// the offset is the VNNI kernels' 128, else 0. Every kernel set computes these with the same
/// f32 operations (a conversion and two products, then the merge of [`TileDst`]), so the bits
/// agree.
#[derive(Clone, Copy)]
struct TileOut {
    /// `[R]` s_a of the tile's rows.
    s_a: *const f32,
    /// `[P·16]` s_w of the tile's columns (0 past n).
    s_w: *const f32,
    /// `[P·16]` Σ_p q[p, j] of the tile's columns.
    col_sums: *const i32,
    dst: TileDst,
}

/// Computes a tile: R rows of a8 (row r at `a + r·lda`, `groups` groups of 4 bytes) times P
/// consecutive panels (panel q's group g at `b + q·groups + g`), merged into C by `out`.
type Kernel = unsafe fn(groups: usize, a: *const i8, lda: usize, b: *const Line, out: TileOut);

/// Merges row `r` of a tile's sums (`sums` `[P·16]`, those of the first `out.dst.cols` columns
/// used) into C, as [`TileOut`] says, with offset 0.
///
/// # Safety
/// `out` must point at valid buffers for row r and `out.dst.cols` columns.
unsafe fn merge_sums(r: usize, sums: &[i32], out: TileOut) {
    let (s_a, s_w) = (*out.s_a.add(r), std::slice::from_raw_parts(out.s_w, out.dst.cols));
    out.dst.merge(r, sums.iter().zip(s_w).map(|(&sum, &s_w)| sum as f32 * s_a * s_w));
}

static PORTABLE: KernelTable<Kernel> = kernel_table!(portable_tile);

/// # Safety
/// See [`Kernel`]: `a` holds R rows of `4·groups` bytes, `b` P panels of `groups` lines, `out`
/// R rows of its columns.
unsafe fn portable_tile<const R: usize, const P: usize>(
    groups: usize,
    a: *const i8,
    lda: usize,
    b: *const Line,
    out: TileOut,
) {
    let mut sums = [[0i32; PANEL]; P];
    for r in 0..R {
        let a_r = std::slice::from_raw_parts(a.add(r * lda), groups * GROUP);
        for (q, sums_q) in sums.iter_mut().enumerate() {
            let panel = std::slice::from_raw_parts(b.add(q * groups), groups);
            *sums_q = [0; PANEL];
            for (line, a4) in panel.iter().zip(a_r.chunks_exact(GROUP)) {
                for (c, sum) in sums_q.iter_mut().enumerate() {
                    let w = &line.0[c * GROUP..(c + 1) * GROUP];
                    *sum += w.iter().zip(a4).map(|(&w, &x)| w as i32 * x as i32).sum::<i32>();
                }
            }
        }
        merge_sums(r, sums.as_flattened(), out);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Kernel, KernelTable, Line, TileOut, GROUP};
    use std::arch::x86_64::*;

    pub(super) static TABLE: KernelTable<Kernel> = kernel_table!(tile);

    /// # Safety
    /// See [`Kernel`](super::Kernel); the CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn tile<const R: usize, const P: usize>(
        groups: usize,
        a: *const i8,
        lda: usize,
        b: *const Line,
        out: TileOut,
    ) {
        let ones = _mm256_set1_epi16(1);
        // Two vectors of 8 columns per panel.
        let mut sums = [[[_mm256_setzero_si256(); 2]; P]; R];
        for g in 0..groups {
            let mut w = [[_mm256_setzero_si256(); 2]; P];
            for (q, w_q) in w.iter_mut().enumerate() {
                let line = b.add(q * groups + g) as *const __m256i;
                *w_q = [_mm256_loadu_si256(line), _mm256_loadu_si256(line.add(1))];
            }
            for (r, sums_r) in sums.iter_mut().enumerate() {
                let a4 = _mm256_set1_epi32((a.add(r * lda + g * GROUP) as *const i32).read_unaligned());
                let magnitude = _mm256_sign_epi8(a4, a4);
                for (sum, w_q) in sums_r.iter_mut().zip(&w) {
                    for half in 0..2 {
                        let pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(w_q[half], a4));
                        sum[half] = _mm256_add_epi32(sum[half], _mm256_madd_epi16(pairs, ones));
                    }
                }
            }
        }
        // `merge_sums` 8 columns at a time: the same conversion and products (s_w is padded to
        // whole panels), then the merge of `TileDst`.
        for (r, sums_r) in sums.iter().enumerate() {
            let s_a = _mm256_set1_ps(*out.s_a.add(r));
            let mut values = [_mm256_setzero_ps(); 8];
            for (v, value) in values.iter_mut().enumerate().take(2 * P) {
                let scaled = _mm256_mul_ps(_mm256_cvtepi32_ps(sums_r[v / 2][v % 2]), s_a);
                *value = _mm256_mul_ps(scaled, _mm256_loadu_ps(out.s_w.add(v * 8)));
            }
            out.dst.merge_vectors(r, &values[..2 * P]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{Kernel, KernelTable, Line, TileOut, GROUP, PANEL};
    use std::arch::x86_64::*;

    pub(super) static TABLE: KernelTable<Kernel> = kernel_table!(tile);

    /// # Safety
    /// See [`Kernel`](super::Kernel); the CPU must support AVX-512F and AVX-512 VNNI.
    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn tile<const R: usize, const P: usize>(
        groups: usize,
        a: *const i8,
        lda: usize,
        b: *const Line,
        out: TileOut,
    ) {
        let flip = _mm512_set1_epi32(0x8080_8080_u32 as i32);
        let mut sums = [[_mm512_setzero_si512(); P]; R];
        for g in 0..groups {
            let mut w = [_mm512_setzero_si512(); P];
            for (q, w_q) in w.iter_mut().enumerate() {
                *w_q = _mm512_loadu_si512(b.add(q * groups + g) as *const _);
            }
            for (r, sums_r) in sums.iter_mut().enumerate() {
                let a4 = (a.add(r * lda + g * GROUP) as *const i32).read_unaligned();
                let unsigned = _mm512_xor_si512(_mm512_set1_epi32(a4), flip);
                for (sum, &w_q) in sums_r.iter_mut().zip(&w) {
                    *sum = _mm512_dpbusd_epi32(*sum, unsigned, w_q);
                }
            }
        }
        // `merge_sums` 16 columns at a time, after taking off the 128 · Σq that reading a8 + 128
        // added.
        let (dst, beta) = (out.dst, _mm512_set1_ps(out.dst.beta));
        for (r, sums_r) in sums.iter().enumerate() {
            let s_a = _mm512_set1_ps(*out.s_a.add(r));
            for (q, &sum) in sums_r.iter().enumerate() {
                let cols = dst.cols.saturating_sub(q * PANEL).min(PANEL);
                if cols == 0 {
                    break;
                }
                let mask: __mmask16 = if cols == PANEL { 0xffff } else { (1 << cols) - 1 };
                let col_sums = _mm512_loadu_si512(out.col_sums.add(q * PANEL) as *const _);
                let exact = _mm512_sub_epi32(sum, _mm512_slli_epi32::<7>(col_sums));
                let scaled = _mm512_mul_ps(_mm512_cvtepi32_ps(exact), s_a);
                let value = _mm512_mul_ps(scaled, _mm512_loadu_ps(out.s_w.add(q * PANEL)));
                let at = dst.c.add(r * dst.ldc + q * PANEL);
                let merged = if dst.beta == 0.0 {
                    value
                } else {
                    _mm512_add_ps(value, _mm512_mul_ps(beta, _mm512_maskz_loadu_ps(mask, at)))
                };
                _mm512_mask_storeu_ps(at, mask, merged);
            }
        }
    }
}

/// Per-thread buffers of the quantized rows.
#[derive(Default)]
struct QuantizedRows {
    /// `[rows][4·⌈k/4⌉]` a8.
    values: Vec<i8>,
    /// `[rows]` s_a.
    scales: Vec<f32>,
}

thread_local! {
    static ROWS: RefCell<QuantizedRows> = RefCell::new(QuantizedRows::default());
}

/// Quantizes `a [rows, k]` into `out` (rows padded with zeros to `lda` bytes).
fn quantize_rows(a: &[f32], rows: usize, k: usize, lda: usize, out: &mut QuantizedRows) {
    out.values.clear();
    out.values.resize(rows * lda, 0);
    out.scales.clear();
    for (row, dst) in a.chunks_exact(k).take(rows).zip(out.values.chunks_exact_mut(lda)) {
        let (scale, inverse) = row_scale(row);
        out.scales.push(scale);
        for (d, &x) in dst.iter_mut().zip(row) {
            *d = quantize(x, inverse);
        }
    }
}

/// [`scale_of`] a row, in 8 independent lanes (the same result: a maximum does not depend on
/// the order; a lane-wise loop is what the compiler vectorises, a chained fold is not).
fn row_scale(row: &[f32]) -> (f32, f32) {
    const LANES: usize = 8;
    let (mut max, mut poison) = ([0.0f32; LANES], [0.0f32; LANES]);
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for i in 0..LANES {
            max[i] = max[i].max(chunk[i].abs());
            poison[i] += chunk[i] * 0.0;
        }
    }
    scale_of(max.into_iter().chain(poison).chain(tail.iter().copied()))
}

/// The scale (largest magnitude / 127) of `values` and its inverse (0 for all zeros). A
/// non-finite value makes the scale NaN, so every product it reaches is NaN too, as in f32.
/// Branch-free, so that the compiler vectorises it (it runs over every row of every product).
fn scale_of(values: impl Iterator<Item = f32>) -> (f32, f32) {
    // `poison` becomes NaN when a value is NaN or infinite (∞ · 0 = NaN).
    let (max, poison) = values.fold((0.0f32, 0.0f32), |(m, p), v| (m.max(v.abs()), p + v * 0.0));
    if poison.is_nan() {
        return (f32::NAN, 0.0);
    }
    (max / 127.0, if max > 0.0 { 127.0 / max } else { 0.0 })
}

/// 1.5 · 2²³: adding and subtracting it rounds an f32 of magnitude below 2²² to the nearest
/// integer, ties to even, with two additions the compiler vectorises (`f32::round` is a libm
/// call on the baseline x86-64 target).
const ROUNDING: f32 = 12_582_912.0;

/// `x / scale` rounded to the nearest integer. |x · inverse| ≤ 127 by the choice of scale; the
/// clamp only removes NaN (from a non-finite x, whose row's scale is NaN anyway), so that the
/// conversion needs no saturation and vectorises.
#[allow(clippy::manual_clamp)] // `clamp` keeps a NaN; `max`/`min` return the other operand
fn quantize(x: f32, inverse: f32) -> i8 {
    let rounded = ((x * inverse + ROUNDING) - ROUNDING).max(-127.0).min(127.0);
    // SAFETY: `rounded` is finite and in [−127, 127].
    unsafe { rounded.to_int_unchecked::<i32>() as i8 }
}

impl Int8Matrix {
    /// Quantizes and packs `B [k, n]` (element (p, j) at `b[p·rsb + j·csb]`); a depth past
    /// [`MAX_DEPTH`] is an error.
    pub fn new(k: usize, n: usize, b: &[f32], rsb: usize, csb: usize) -> Result<Self> {
        if k > MAX_DEPTH {
            return Err(Error::Config(format!(
                "int8 weights: a product {k} deep could overflow the 32-bit sums (at most {MAX_DEPTH})"
            )));
        }
        assert!(k == 0 || n == 0 || (k - 1) * rsb + (n - 1) * csb < b.len(), "Int8Matrix: B [{k}, {n}] out of bounds");
        let (panels, groups) = (n.div_ceil(PANEL), k.div_ceil(GROUP));
        let mut m = Int8Matrix {
            k,
            n,
            lines: vec![Line([0; PANEL * GROUP]); panels * groups],
            scales: vec![0.0; panels * PANEL],
            col_sums: vec![0; panels * PANEL],
        };
        for j in 0..n {
            let column = |p: usize| b[p * rsb + j * csb];
            let (scale, inverse) = scale_of((0..k).map(column));
            m.scales[j] = scale;
            let (panel, c) = (j / PANEL, j % PANEL);
            for p in 0..k {
                let q = quantize(column(p), inverse);
                m.lines[panel * groups + p / GROUP].0[c * GROUP + p % GROUP] = q;
                m.col_sums[j] += q as i32;
            }
        }
        Ok(m)
    }

    /// Depth `k`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Width `n`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Bytes held (weights, scales and sums).
    pub fn bytes(&self) -> usize {
        self.lines.len() * std::mem::size_of::<Line>() + self.scales.len() * 8
    }

    /// `out [rows, n] ← a [rows, k] · W + beta · out` on this CPU's kernels (those of the GEMM's
    /// kernel set, [`Isa::selected`]).
    pub fn multiply(&self, rows: usize, a: &[f32], beta: f32, out: &mut [f32], threads: usize) {
        self.multiply_on(Int8Kernels::for_isa(Isa::selected()), rows, a, beta, out, threads)
    }

    /// [`multiply`](Self::multiply) on `kernels`, which must be [available](Int8Kernels::available).
    pub fn multiply_on(
        &self,
        kernels: Int8Kernels,
        rows: usize,
        a: &[f32],
        beta: f32,
        out: &mut [f32],
        threads: usize,
    ) {
        assert!(kernels.available(), "int8 product: this CPU cannot run the {} kernels", kernels.name());
        let (k, n) = (self.k, self.n);
        assert!(a.len() >= rows * k && out.len() >= rows * n, "int8 product: operands too short");
        if rows == 0 || n == 0 {
            return;
        }
        let groups = k.div_ceil(GROUP);
        let lda = groups * GROUP;
        let (panels, work) = (n.div_ceil(PANEL), rows * k * n / kernels.macs_per_fma());
        let row_block = kernels.max_rows() * 2;
        if threads > 1 && rows >= row_block * threads && work >= crate::parallel::min_split_work() {
            // Many rows (batched generation): each thread quantizes and multiplies its own rows
            // by all of W, so that no thread waits for the others' quantization.
            let per = rows.div_ceil(threads).div_ceil(row_block) * row_block;
            let shared = SharedOut(out.as_mut_ptr());
            crate::parallel::for_each_index(rows.div_ceil(per), |part| {
                let (r0, count) = (part * per, per.min(rows - part * per));
                // SAFETY: this part writes rows r0..r0 + count of `out` only.
                let c = SharedOut(unsafe { shared.at(r0 * n) });
                self.quantize_and_multiply(kernels, &a[r0 * k..(r0 + count) * k], count, beta, c, 0..panels);
            });
        } else {
            // Few rows (a batch-1 step): quantize them once, split the columns into as many
            // parts as the kernels' count of the work is worth or, where f32's count would split
            // further, as many as measured faster.
            let key = SplitKey { rows, k, n, threads, kernels };
            let parts = [split_parts(panels, work, threads), split_parts(panels, rows * k * n, threads)];
            ROWS.with(|buffers| {
                let mut quantized = buffers.borrow_mut();
                quantize_rows(a, rows, k, lda, &mut quantized);
                let quantized = &*quantized;
                // Each thread writes its own columns of `out` (`[rows, n]`) through one shared pointer.
                let product = |out: &mut [f32], parts: usize| {
                    let shared = SharedOut(out.as_mut_ptr());
                    split_panels_into(panels, parts, |range| {
                        self.multiply_quantized(kernels, quantized, beta, shared, range)
                    })
                };
                let out = &mut out[..rows * n];
                match tuning::chosen_parts(key, parts) {
                    Some(parts) => product(out, parts),
                    None => {
                        tuning::measure_parts(key, parts, tuning::from_same_output(out, beta, product));
                    }
                }
            });
        }
    }

    /// Quantizes `a [rows, k]` into this thread's buffers, then multiplies it by panels
    /// `panels` into `c` (`[rows, n]`, this caller's rows).
    fn quantize_and_multiply(
        &self,
        kernels: Int8Kernels,
        a: &[f32],
        rows: usize,
        beta: f32,
        c: SharedOut,
        panels: std::ops::Range<usize>,
    ) {
        ROWS.with(|buffers| {
            let mut quantized = buffers.borrow_mut();
            quantize_rows(a, rows, self.k, self.k.div_ceil(GROUP) * GROUP, &mut quantized);
            self.multiply_quantized(kernels, &quantized, beta, c, panels);
        });
    }

    /// `c [rows, n]` (the quantized rows' count) at columns of `panels` ← quantized · W (+ beta · c).
    fn multiply_quantized(
        &self,
        kernels: Int8Kernels,
        quantized: &QuantizedRows,
        beta: f32,
        c: SharedOut,
        panels: std::ops::Range<usize>,
    ) {
        let (n, groups) = (self.n, self.k.div_ceil(GROUP));
        let lda = groups * GROUP;
        let rows = quantized.scales.len();
        for_each_tile(
            rows,
            panels,
            kernels.max_rows(),
            |r| kernels.max_panels(r),
            |r0, tile_rows, tile| {
                let kernel = kernels.kernel(tile_rows, tile.len());
                let first = tile.start * PANEL;
                let out = TileOut {
                    s_a: quantized.scales[r0..].as_ptr(),
                    s_w: self.scales[first..].as_ptr(),
                    col_sums: self.col_sums[first..].as_ptr(),
                    dst: TileDst {
                        // SAFETY: row r0 < rows and column first < n: inside `c`.
                        c: unsafe { c.at(r0 * n + first) },
                        ldc: n,
                        cols: (tile.end * PANEL).min(n) - first,
                        beta,
                    },
                };
                let a_tile = quantized.values[r0 * lda..].as_ptr();
                // SAFETY: the kernel reads `tile_rows` rows of `lda` bytes from row r0, their scales,
                // `tile.len()` panels of `groups` lines and their columns' scales and sums, all
                // inside the buffers (scales and sums are padded to whole panels), and writes c's
                // rows r0.. at columns first..first + cols, the caller's only; the CPU has the
                // kernels' instructions (asserted by `multiply_on`).
                unsafe { kernel(groups, a_tile, lda, self.lines[tile.start * groups..].as_ptr(), out) };
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..len).map(|_| rng.uniform() * 2.0 - 1.0).collect()
    }

    /// The definition in the module comment, in f64 from the quantized values.
    fn naive(m: &Int8Matrix, b: &[f32], a: &[f32], rows: usize) -> Vec<f32> {
        let (k, n) = (m.k, m.n);
        let mut out = vec![0.0; rows * n];
        for r in 0..rows {
            let row = &a[r * k..(r + 1) * k];
            let (s_a, inv_a) = scale_of(row.iter().copied());
            for j in 0..n {
                let (s_w, inv_w) = scale_of((0..k).map(|p| b[p * n + j]));
                let sum: i64 =
                    (0..k).map(|p| quantize(row[p], inv_a) as i64 * quantize(b[p * n + j], inv_w) as i64).sum();
                out[r * n + j] = sum as f32 * s_a * s_w;
            }
        }
        out
    }

    fn check(kernels: Int8Kernels) {
        // The last two split their rows over 2 threads, the rest (at 2 threads) their columns
        // when their work is worth it (a batch-1 step's [1×256]·[256×1024] on the AVX2 set).
        // [1×250]·[250×1000], a shape no model here has, is split by measurement on the AVX2 and
        // VNNI sets, and its first product accumulates: each measured run starts from `out`.
        for (rows, k, n) in [
            (1, 5, 3),
            (1, 256, 1024),
            (1, 250, 1000),
            (1, 64, 130),
            (3, 33, 17),
            (7, 128, 64),
            (13, 70, 150),
            (64, 96, 40),
            (64, 256, 40),
            (50, 129, 70),
        ] {
            let (a, b) = (random(rows * k, 1 + k as u64), random(k * n, 2 + n as u64));
            let m = Int8Matrix::new(k, n, &b, n, 1).unwrap();
            let want = naive(&m, &b, &a, rows);
            for threads in [1, 2] {
                let mut acc = vec![0.5; rows * n];
                m.multiply_on(kernels, rows, &a, 1.0, &mut acc, threads);
                let added: Vec<f32> = want.iter().map(|v| v + 0.5).collect();
                assert_eq!(acc, added, "{kernels:?} {rows}×{k}×{n} accumulated");
                let mut out = vec![f32::NAN; rows * n];
                m.multiply_on(kernels, rows, &a, 0.0, &mut out, threads);
                assert_eq!(out, want, "{kernels:?} {rows}×{k}×{n}, {threads} threads");
            }
            // Against the f32 product: the error bound of the module comment.
            for r in 0..rows {
                for j in 0..n {
                    let exact: f32 = (0..k).map(|p| a[r * k + p] * b[p * n + j]).sum();
                    assert!((want[r * n + j] - exact).abs() <= k as f32 * 2.1 / 254.0, "{rows}×{k}×{n} [{r}, {j}]");
                }
            }
        }
    }

    #[test]
    fn portable_kernels_equal_the_definition() {
        check(Int8Kernels::Portable);
    }

    #[test]
    #[cfg_attr(not(rnnkit_host_avx2), ignore = "this CPU lacks AVX2")]
    fn avx2_kernels_equal_the_definition() {
        check(Int8Kernels::Avx2);
    }

    #[test]
    #[cfg_attr(not(rnnkit_host_avx512vnni), ignore = "this CPU lacks AVX-512 VNNI")]
    fn vnni_kernels_equal_the_definition() {
        check(Int8Kernels::Vnni);
    }

    #[test]
    fn zero_rows_columns_and_non_finite_inputs() {
        let b = random(8 * 20, 3);
        let m = Int8Matrix::new(8, 20, &b, 20, 1).unwrap();
        let mut out = vec![1.0; 2 * 20];
        let mut a = vec![0.0; 16];
        m.multiply_on(Int8Kernels::Portable, 2, &a, 0.0, &mut out, 1);
        assert!(out.iter().all(|&v| v == 0.0));
        a[9] = f32::NAN;
        m.multiply_on(Int8Kernels::Portable, 2, &a, 0.0, &mut out, 1);
        assert!(out[..20].iter().all(|&v| v == 0.0) && out[20..].iter().all(|v| v.is_nan()));
        assert!(matches!(Int8Matrix::new(MAX_DEPTH + 1, 1, &vec![0.0; MAX_DEPTH + 1], 1, 1), Err(Error::Config(_))));
    }
}
