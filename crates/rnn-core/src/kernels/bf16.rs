//! bf16 weights for inference: `W [k, n]` stored as the upper 16 bits of each f32 (rounded to
//! nearest, ties to even: 8 significant bits, a relative error of at most 2⁻⁹ per weight), and
//! multiplied by f32 rows in f32: each weight is widened back to f32 (its bits moved to the upper
//! half) just before its multiply-add, so the inputs keep full precision.
//!
//! Kernels: AVX-512F tiles of up to 6 rows × 4 panels of 16 columns (1 row × 8 panels), AVX2 + FMA
//! tiles of up to 6 rows × 1 panel (1 row × 4 panels), both one fused multiply-add per weight
//! in increasing depth (the same bits); the portable kernels multiply and add separately. Each
//! kernel merges its tile into the output itself (the AVX2 one a vector at a time).
//!
//! Packing: panels of 16 columns, each `[k][16]` (32 bytes per depth step).

use super::isa::Isa;
use super::precision::{for_each_tile, max_panels, split_panels, KernelTable, SharedOut, TileDst, PANEL};

/// `W [k, n]` packed as bf16 (see the module comment).
#[derive(Debug, Clone, Default)]
pub struct Bf16Matrix {
    k: usize,
    n: usize,
    /// `[⌈n/16⌉][k][16]`.
    data: Vec<u16>,
}

/// `x` rounded to bf16 (nearest, ties to even; NaN stays NaN).
pub fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// The f32 whose upper half is `v`.
pub fn from_bf16(v: u16) -> f32 {
    f32::from_bits((v as u32) << 16)
}

/// Computes a tile: R rows of A (row r at `a + r·lda`, k values) times P consecutive panels
/// (panel q at `b + q·k·16`), merged into C at `out` (`C[r, j] ← sum`, `+ beta · C[r, j]` unless
/// beta is 0).
type Kernel = unsafe fn(k: usize, a: *const f32, lda: usize, b: *const u16, out: TileDst);

/// Which kernels run the products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bf16Kernels {
    Portable,
    Avx2,
    Avx512,
}

impl Bf16Kernels {
    fn for_isa(isa: Isa) -> Self {
        match isa {
            Isa::Portable => Bf16Kernels::Portable,
            Isa::Avx2 => Bf16Kernels::Avx2,
            Isa::Avx512 => Bf16Kernels::Avx512,
        }
    }

    fn max_rows(self) -> usize {
        6
    }

    fn max_panels(self, rows: usize) -> usize {
        max_panels(self == Bf16Kernels::Avx2, rows)
    }

    fn kernel(self, rows: usize, panels: usize) -> Kernel {
        let table = match self {
            Bf16Kernels::Portable => &PORTABLE,
            #[cfg(target_arch = "x86_64")]
            Bf16Kernels::Avx2 => &avx2::TABLE,
            #[cfg(target_arch = "x86_64")]
            Bf16Kernels::Avx512 => &avx512::TABLE,
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("internal: x86 bf16 kernels on another architecture"),
        };
        table.get(rows, panels)
    }
}

static PORTABLE: KernelTable<Kernel> = kernel_table!(portable_tile);

/// # Safety
/// See [`Kernel`]: `a` holds R rows of k values at stride `lda`, `b` P panels of `k·16`, `out`
/// R rows of its columns.
unsafe fn portable_tile<const R: usize, const P: usize>(
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const u16,
    out: TileDst,
) {
    for r in 0..R {
        let a_r = std::slice::from_raw_parts(a.add(r * lda), k);
        let mut sums = [[0.0f32; PANEL]; P];
        for (q, sums_q) in sums.iter_mut().enumerate() {
            let panel = std::slice::from_raw_parts(b.add(q * k * PANEL), k * PANEL);
            for (w, &x) in panel.chunks_exact(PANEL).zip(a_r) {
                for (sum, &w) in sums_q.iter_mut().zip(w) {
                    *sum += x * from_bf16(w);
                }
            }
        }
        out.merge(r, sums.as_flattened().iter().copied());
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Kernel, KernelTable, TileDst, PANEL};
    use std::arch::x86_64::*;

    pub(super) static TABLE: KernelTable<Kernel> = kernel_table!(tile);

    /// # Safety
    /// See [`Kernel`](super::Kernel); the CPU must support AVX2 and FMA.
    ///
    /// Widening: a panel's 16 weights at one depth load as 8 u32 lanes, lane i holding columns
    /// 2i (low half) and 2i + 1 (high half). A shift left by 16 makes the even columns' f32 and
    /// masking off the low half the odd columns': two instructions per 16 weights, where
    /// zero-extending each half and shifting took four (both compete with the FMAs for the
    /// vector ports). The sums stay in that even/odd order until the tile's end, where one
    /// interleave puts them back in column order. Each column's multiply-adds are the same, in
    /// the same order, so the bits are too.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const R: usize, const P: usize>(k: usize, a: *const f32, lda: usize, b: *const u16, out: TileDst) {
        let high_half = _mm256_set1_epi32(0xffff_0000_u32 as i32);
        // sums[r][q]: [even columns 0, 2, …, 14; odd columns 1, 3, …, 15] of panel q.
        let mut sums = [[[_mm256_setzero_ps(); 2]; P]; R];
        for p in 0..k {
            let mut w = [[_mm256_setzero_ps(); 2]; P];
            for (q, w_q) in w.iter_mut().enumerate() {
                let pairs = _mm256_loadu_si256(b.add(q * k * PANEL + p * PANEL) as *const __m256i);
                w_q[0] = _mm256_castsi256_ps(_mm256_slli_epi32::<16>(pairs));
                w_q[1] = _mm256_castsi256_ps(_mm256_and_si256(pairs, high_half));
            }
            for (r, sums_r) in sums.iter_mut().enumerate() {
                let x = _mm256_set1_ps(*a.add(r * lda + p));
                for (sum, w_q) in sums_r.iter_mut().zip(&w) {
                    sum[0] = _mm256_fmadd_ps(x, w_q[0], sum[0]);
                    sum[1] = _mm256_fmadd_ps(x, w_q[1], sum[1]);
                }
            }
        }
        for (r, sums_r) in sums.iter().enumerate() {
            let mut ordered = [_mm256_setzero_ps(); 8];
            for (q, [even, odd]) in sums_r.iter().enumerate() {
                // Within each 128-bit half: [0 1 2 3 | 8 9 10 11] and [4 5 6 7 | 12 13 14 15].
                let (low, high) = (_mm256_unpacklo_ps(*even, *odd), _mm256_unpackhi_ps(*even, *odd));
                ordered[2 * q] = _mm256_permute2f128_ps::<0x20>(low, high);
                ordered[2 * q + 1] = _mm256_permute2f128_ps::<0x31>(low, high);
            }
            out.merge_vectors(r, &ordered[..2 * P]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Kernel, KernelTable, TileDst, PANEL};
    use std::arch::x86_64::*;

    pub(super) static TABLE: KernelTable<Kernel> = kernel_table!(tile);

    /// # Safety
    /// See [`Kernel`](super::Kernel); the CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const R: usize, const P: usize>(k: usize, a: *const f32, lda: usize, b: *const u16, out: TileDst) {
        let mut sums = [[_mm512_setzero_ps(); P]; R];
        for p in 0..k {
            let mut w = [_mm512_setzero_ps(); P];
            for (q, w_q) in w.iter_mut().enumerate() {
                let src = b.add(q * k * PANEL + p * PANEL) as *const __m256i;
                let wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(src));
                *w_q = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(wide));
            }
            for (r, sums_r) in sums.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*a.add(r * lda + p));
                for (sum, &w_q) in sums_r.iter_mut().zip(&w) {
                    *sum = _mm512_fmadd_ps(x, w_q, *sum);
                }
            }
        }
        for (r, sums_r) in sums.iter().enumerate() {
            let mut spilled = [[0.0f32; PANEL]; P];
            for (spilled_q, &sum) in spilled.iter_mut().zip(sums_r) {
                _mm512_storeu_ps(spilled_q.as_mut_ptr(), sum);
            }
            out.merge(r, spilled.as_flattened().iter().copied());
        }
    }
}

impl Bf16Matrix {
    /// Rounds and packs `B [k, n]` (element (p, j) at `b[p·rsb + j·csb]`).
    pub fn new(k: usize, n: usize, b: &[f32], rsb: usize, csb: usize) -> Self {
        assert!(k == 0 || n == 0 || (k - 1) * rsb + (n - 1) * csb < b.len(), "Bf16Matrix: B [{k}, {n}] out of bounds");
        let mut data = vec![0u16; n.div_ceil(PANEL) * k * PANEL];
        for j in 0..n {
            let (panel, c) = (j / PANEL, j % PANEL);
            for p in 0..k {
                data[(panel * k + p) * PANEL + c] = to_bf16(b[p * rsb + j * csb]);
            }
        }
        Bf16Matrix { k, n, data }
    }

    /// Depth `k`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Width `n`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() * 2
    }

    /// `out [rows, n] ← a [rows, k] · W + beta · out` on the kernels of the GEMM's kernel set.
    pub fn multiply(&self, rows: usize, a: &[f32], beta: f32, out: &mut [f32], threads: usize) {
        self.multiply_on(Isa::selected(), rows, a, beta, out, threads)
    }

    /// [`multiply`](Self::multiply) on the kernels of `isa`, which must be [available](Isa::available).
    pub fn multiply_on(&self, isa: Isa, rows: usize, a: &[f32], beta: f32, out: &mut [f32], threads: usize) {
        assert!(isa.available(), "bf16 product: this CPU cannot run the {} kernels", isa.name());
        let (k, n, kernels) = (self.k, self.n, Bf16Kernels::for_isa(isa));
        assert!(a.len() >= rows * k && out.len() >= rows * n, "bf16 product: operands too short");
        if rows == 0 || n == 0 {
            return;
        }
        let shared = SharedOut(out.as_mut_ptr());
        split_panels(n.div_ceil(PANEL), rows * k * n, threads, |panels| {
            for_each_tile(
                rows,
                panels,
                kernels.max_rows(),
                |r| kernels.max_panels(r),
                |r0, tile_rows, tile| {
                    let kernel = kernels.kernel(tile_rows, tile.len());
                    let first = tile.start * PANEL;
                    // SAFETY: the kernel reads `tile_rows` rows of k values from row r0 of `a` and
                    // `tile.len()` panels from panel `tile.start`, all inside the buffers, and
                    // writes rows r0.. r0 + tile_rows, columns first..min(n, tile end) of `out`:
                    // inside it, in this thread's panels only. The CPU has its instructions
                    // (asserted above).
                    unsafe {
                        let c = shared.at(r0 * n + first);
                        let out = TileDst { c, ldc: n, cols: (tile.end * PANEL).min(n) - first, beta };
                        kernel(k, a[r0 * k..].as_ptr(), k, self.data[tile.start * k * PANEL..].as_ptr(), out)
                    };
                },
            );
        });
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

    const SHAPES: [(usize, usize, usize); 6] =
        [(1, 5, 3), (1, 64, 130), (3, 33, 17), (7, 128, 64), (13, 70, 150), (64, 96, 40)];

    /// In f64 from the rounded weights.
    fn naive(b: &[f32], a: &[f32], rows: usize, k: usize, n: usize) -> Vec<f64> {
        let mut out = vec![0.0; rows * n];
        for r in 0..rows {
            for j in 0..n {
                out[r * n + j] = (0..k).map(|p| a[r * k + p] as f64 * from_bf16(to_bf16(b[p * n + j])) as f64).sum();
            }
        }
        out
    }

    fn run(isa: Isa, rows: usize, k: usize, n: usize, beta: f32, threads: usize) -> Vec<f32> {
        let (a, b) = (random(rows * k, 1 + k as u64), random(k * n, 2 + n as u64));
        let m = Bf16Matrix::new(k, n, &b, n, 1);
        let mut out = vec![if beta == 0.0 { f32::NAN } else { 0.5 }; rows * n];
        m.multiply_on(isa, rows, &a, beta, &mut out, threads);
        out
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0)), 1.0, "a tie rounds to the even neighbour");
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 / 256.0)), 1.0 + 4.0 / 256.0);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
    }

    #[test]
    fn portable_kernels_equal_the_definition() {
        for (rows, k, n) in SHAPES {
            let (a, b) = (random(rows * k, 1 + k as u64), random(k * n, 2 + n as u64));
            let want = naive(&b, &a, rows, k, n);
            for (threads, beta) in [(1, 0.0), (2, 0.0), (2, 1.0)] {
                let got = run(Isa::Portable, rows, k, n, beta, threads);
                for (g, w) in got.iter().zip(&want) {
                    let w = w + if beta == 0.0 { 0.0 } else { 0.5 };
                    assert!((*g as f64 - w).abs() <= 1e-5 * k as f64, "{rows}×{k}×{n}: {g} vs {w}");
                }
            }
        }
    }

    /// AVX2 and AVX-512 give the same bits, at any thread count, within rounding of the portable set.
    fn check_simd(isa: Isa) {
        for (rows, k, n) in SHAPES {
            for beta in [0.0, 1.0] {
                let got = run(isa, rows, k, n, beta, 1);
                assert_eq!(got, run(isa, rows, k, n, beta, 2), "{isa:?} {rows}×{k}×{n}: thread count");
                if Isa::Avx2.available() {
                    assert_eq!(got, run(Isa::Avx2, rows, k, n, beta, 1), "{isa:?} {rows}×{k}×{n}: vs AVX2");
                }
                for (g, p) in got.iter().zip(run(Isa::Portable, rows, k, n, beta, 1)) {
                    assert!((g - p).abs() <= 1e-5 * k as f32, "{isa:?} {rows}×{k}×{n}: {g} vs {p}");
                }
            }
        }
    }

    #[test]
    #[cfg_attr(not(rnnkit_host_avx2), ignore = "this CPU lacks AVX2/FMA")]
    fn avx2_kernels_match_the_portable_ones() {
        check_simd(Isa::Avx2);
    }

    #[test]
    #[cfg_attr(not(rnnkit_host_avx512), ignore = "this CPU lacks AVX-512F")]
    fn avx512_kernels_equal_the_avx2_ones() {
        check_simd(Isa::Avx512);
    }
}
