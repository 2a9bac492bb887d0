//! The engine's only GEMM entry point, over strided `f32` slices.
//!
//! Three implementations sit behind [`sgemm`], chosen per call from the shape ([`choose`]); the
//! choice was made by measuring the real shapes of the standard configurations
//! (`cargo bench -p rnn-core --bench speed -- gemm`, see `choose`):
//! - [`Backend::Packed`]: the engine's own packed GEMM ([`super::packed`]), threaded inside the
//!   engine's pool, bit-identical at any thread count;
//! - [`Backend::Faer`]: the `gemm` crate's f32 kernels (`gemm-f32`), for single rows (its GEMV
//!   path reads B in place; a packing GEMM would copy all of B for one row);
//! - [`Backend::MatrixMultiply`]: the `matrixmultiply` crate (single-threaded AVX2/FMA), the
//!   well-known baseline the benchmark compares against, and the path for C stored with
//!   neither stride 1.
//!
//! A transposed operand is the same slice with its strides swapped, so no copy is ever made.
//! [`reference`] is the naive triple loop the tests compare every backend against.

use super::packed::{self, BSource};
use gemm_common::Parallelism;

pub use super::microkernel::Merge;

/// The sizes of a product `C [m, n] = A [m, k] · B [k, n]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmShape {
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

/// A read-only matrix operand: element (i, j) at `data[i · rs + j · cs]` (its row and column
/// counts come from the product's [`GemmShape`]).
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl MatRef<'_> {
    /// The transpose: the same elements with the strides swapped (no copy).
    pub fn t(self) -> Self {
        MatRef { rs: self.cs, cs: self.rs, ..self }
    }
}

/// The written matrix C: element (i, j) at `data[i · rs + j · cs]`.
#[derive(Debug)]
pub struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rs: usize,
    pub cs: usize,
}

/// A GEMM implementation (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `gemm-f32` on this many threads of the engine's pool (1 = no threading).
    Faer(usize),
    /// `matrixmultiply`, single-threaded.
    MatrixMultiply,
    /// The engine's own packed GEMM ([`super::packed`]) on this many threads of the pool.
    Packed(usize),
}

/// The backend [`sgemm`] uses for a shape at `threads` threads. Measured on a 2-vCPU AVX2/FMA
/// x86-64 VM (Zen 3, no AVX-512; GFLOP/s, one thread, medians of 15 interleaved rounds, B packed per call): the packed GEMM
/// beats matrixmultiply on every shape of the standard configurations but the weight gradients,
/// where they tie (head [2048x256]x[256x96]ᵀ 77 vs 66, projection [8192x128]x[128x2048]ᵀ 58 vs
/// 55, dW [1024x2048]ᵀx[2048x256] 64 vs 64), and it scales to 2 threads (head 137, projection
/// 109, dW-M 92) where matrixmultiply is single-threaded; gemm-f32 wins single rows (GEMV 20
/// vs 1.2, the packed GEMM copies all of B for one row) and is slower elsewhere (its
/// projection: 19). With B packed once (the recurrences, `packed::PackedB`) the packed GEMM
/// reaches 75–88 on one thread.
pub fn choose(m: usize, _n: usize, _k: usize, threads: usize) -> Backend {
    if m == 1 {
        return Backend::Faer(1);
    }
    Backend::Packed(threads)
}

/// `C ← alpha · A · B + beta · C` (`merge`) with A `[m, k]`, B `[k, n]`, C `[m, n]` at any
/// strides. When `beta == 0` the previous contents of C are ignored (may be garbage, even NaN).
///
/// Panics if a stride would address past the end of a slice or make two elements of C alias:
/// that is a programming error inside the engine, never a user error (callers validate shapes).
pub fn sgemm(shape: GemmShape, a: MatRef, b: MatRef, merge: Merge, c: MatMut) {
    let backend = choose(shape.m, shape.n, shape.k, crate::parallel::threads());
    sgemm_with(backend, shape, a, b, merge, c)
}

/// [`sgemm`] on a given backend (benchmarks and tests compare them).
pub fn sgemm_with(backend: Backend, shape: GemmShape, a_view: MatRef, b_view: MatRef, merge: Merge, c: MatMut) {
    let GemmShape { m, n, k } = shape;
    let (MatRef { data: a, rs: rsa, cs: csa }, MatRef { data: b, rs: rsb, cs: csb }) = (a_view, b_view);
    let (Merge { alpha, beta }, MatMut { data: c, rs: rsc, cs: csc }) = (merge, c);
    if m == 0 || n == 0 {
        return;
    }
    // The last element each operand touches must lie inside its slice (soundness of the
    // unsafe calls below).
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(last(m, n, rsc, csc) < c.len(), "sgemm: C [{m}, {n}] out of bounds");
    assert!((csc >= 1 && rsc >= n * csc) || (rsc >= 1 && csc >= m * rsc), "sgemm: C strides ({rsc}, {csc}) alias");
    if k == 0 {
        // An empty sum: C ← beta · C (beta == 0 means overwrite, even over NaN).
        for i in 0..m {
            for j in 0..n {
                let v = &mut c[i * rsc + j * csc];
                *v = if beta == 0.0 { 0.0 } else { beta * *v };
            }
        }
        return;
    }
    assert!(last(m, k, rsa, csa) < a.len(), "sgemm: A [{m}, {k}] out of bounds");
    assert!(last(k, n, rsb, csb) < b.len(), "sgemm: B [{k}, {n}] out of bounds");
    match backend {
        Backend::Faer(threads) => {
            let par = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
            let mut run = || {
                // SAFETY: bounds and aliasing checked above; `c` is borrowed mutably so it
                // cannot overlap a or b. gemm-f32 computes dst ← alpha·dst + beta·lhs·rhs
                // (its names are swapped relative to BLAS) and ignores dst when read_dst is false.
                unsafe {
                    gemm_f32::gemm::f32::get_gemm_fn()(
                        m,
                        n,
                        k,
                        c.as_mut_ptr(),
                        csc as isize,
                        rsc as isize,
                        beta != 0.0,
                        a.as_ptr(),
                        csa as isize,
                        rsa as isize,
                        b.as_ptr(),
                        csb as isize,
                        rsb as isize,
                        beta,
                        alpha,
                        false,
                        false,
                        false,
                        par,
                    )
                }
            };
            if threads > 1 {
                // Its rayon calls then run on the engine's pool, not the global one.
                crate::parallel::install(run)
            } else {
                run()
            }
        }
        Backend::Packed(threads) if csc == 1 => {
            packed::gemm(shape, a_view, BSource::Strided(b_view), merge, MatMut { data: c, rs: rsc, cs: csc }, threads)
        }
        Backend::Packed(threads) if rsc == 1 => {
            // Column-major C: compute Cᵀ [n, m] = Bᵀ · Aᵀ, which is row-major.
            let c_t = MatMut { data: c, rs: csc, cs: rsc };
            packed::gemm(GemmShape { m: n, n: m, k }, b_view.t(), BSource::Strided(a_view.t()), merge, c_t, threads)
        }
        // SAFETY: as above.
        Backend::MatrixMultiply | Backend::Packed(_) => unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                alpha,
                a.as_ptr(),
                rsa as isize,
                csa as isize,
                b.as_ptr(),
                rsb as isize,
                csb as isize,
                beta,
                c.as_mut_ptr(),
                rsc as isize,
                csc as isize,
            );
        },
    }
}

/// The naive reference: `C ← alpha · A · B + beta · C` by the triple loop, f64 accumulation.
pub fn reference(shape: GemmShape, a: MatRef, b: MatRef, merge: Merge, c: MatMut) {
    let GemmShape { m, n, k } = shape;
    let (MatRef { data: a, rs: rsa, cs: csa }, MatRef { data: b, rs: rsb, cs: csb }) = (a, b);
    let (Merge { alpha, beta }, MatMut { data: c, rs: rsc, cs: csc }) = (merge, c);
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k).map(|p| a[i * rsa + p * csa] as f64 * b[p * rsb + j * csb] as f64).sum();
            let v = &mut c[i * rsc + j * csc];
            let old = if beta == 0.0 { 0.0 } else { beta as f64 * *v as f64 };
            *v = (alpha as f64 * dot + old) as f32;
        }
    }
}

/// Whether a row-major operand is used as stored or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Use the stored matrix as is.
    Plain,
    /// Use the transpose of the stored matrix.
    Transposed,
}

/// Row-major convenience over [`sgemm`]: `C[m, n] ← alpha · op(A) · op(B) + beta · C`
/// (`merge`), where A is stored contiguous as `[m, k]` (or `[k, m]` when transposed), B as
/// `[k, n]` (or `[n, k]`), and C as `[m, n]`.
pub fn matmul(op_a: Op, op_b: Op, shape: GemmShape, a: &[f32], b: &[f32], merge: Merge, c: &mut [f32]) {
    let GemmShape { m, n, k } = shape;
    let (rsa, csa) = match op_a {
        Op::Plain => (k, 1),
        Op::Transposed => (1, m),
    };
    let (rsb, csb) = match op_b {
        Op::Plain => (n, 1),
        Op::Transposed => (1, k),
    };
    let (a, b) = (MatRef { data: a, rs: rsa, cs: csa }, MatRef { data: b, rs: rsb, cs: csb });
    sgemm(shape, a, b, merge, MatMut { data: c, rs: n, cs: 1 });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain triple loop in f64: the reference.
    fn naive(op_a: Op, op_b: Op, m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
        let at = |i: usize, p: usize| match op_a {
            Op::Plain => a[i * k + p],
            Op::Transposed => a[p * m + i],
        };
        let bt = |p: usize, j: usize| match op_b {
            Op::Plain => b[p * n + j],
            Op::Transposed => b[j * k + p],
        };
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| at(i, p) as f64 * bt(p, j) as f64).sum();
            }
        }
        c
    }

    #[test]
    fn matmul_matches_naive_for_every_transpose_and_accumulates_with_beta() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
        for op_a in [Op::Plain, Op::Transposed] {
            for op_b in [Op::Plain, Op::Transposed] {
                let want = naive(op_a, op_b, m, n, k, &a, &b);
                let mut c = vec![f32::NAN; m * n];
                matmul(op_a, op_b, GemmShape { m, n, k }, &a, &b, Merge::OVERWRITE, &mut c);
                for (got, w) in c.iter().zip(&want) {
                    assert!((*got as f64 - w).abs() < 1e-5, "{op_a:?} {op_b:?}: {got} vs {w}");
                }
                // beta = 1 adds a second product on top of the first.
                matmul(op_a, op_b, GemmShape { m, n, k }, &a, &b, Merge { alpha: 2.0, beta: 1.0 }, &mut c);
                for (got, w) in c.iter().zip(&want) {
                    assert!((*got as f64 - 3.0 * w).abs() < 1e-5);
                }
            }
        }
    }

    /// Every backend against the naive reference, on shapes with ragged edges (not multiples of
    /// any register width), for both transposes of B and beta 0 / 1, at 1 and 2 threads.
    #[test]
    fn every_backend_matches_the_reference() {
        let shapes = [(1, 37, 53), (1, 1024, 256), (7, 29, 31), (33, 130, 70), (64, 96, 256), (96, 130, 200)];
        for (m, n, k) in shapes {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
            let c0: Vec<f32> = (0..m * n).map(|i| (i as f32 * 0.13).sin()).collect();
            for op_b in [Op::Plain, Op::Transposed] {
                let (rsb, csb) = if op_b == Op::Plain { (n, 1) } else { (1, k) };
                let backends = vec![
                    Backend::MatrixMultiply,
                    Backend::Faer(1),
                    Backend::Faer(2),
                    Backend::Packed(1),
                    Backend::Packed(2),
                ];
                let (shape, a, b) =
                    (GemmShape { m, n, k }, MatRef { data: &a, rs: k, cs: 1 }, MatRef { data: &b, rs: rsb, cs: csb });
                for beta in [0.0, 1.0] {
                    let merge = Merge { alpha: 0.5, beta };
                    let mut want = c0.clone();
                    reference(shape, a, b, merge, MatMut { data: &mut want, rs: n, cs: 1 });
                    for &backend in &backends {
                        let mut got = if beta == 0.0 { vec![f32::NAN; m * n] } else { c0.clone() };
                        let c = MatMut { data: &mut got, rs: n, cs: 1 };
                        crate::parallel::install(|| sgemm_with(backend, shape, a, b, merge, c));
                        for (idx, (g, w)) in got.iter().zip(&want).enumerate() {
                            assert!(
                                (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                                "{backend:?} {m}x{n}x{k} {op_b:?} beta {beta} [{idx}]: {g} vs {w}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn empty_inner_dimension_scales_c() {
        let mut c = vec![f32::NAN, f32::NAN];
        let empty = MatRef { data: &[], rs: 0, cs: 0 };
        sgemm(GemmShape { m: 1, n: 2, k: 0 }, empty, empty, Merge::OVERWRITE, MatMut { data: &mut c, rs: 2, cs: 1 });
        assert_eq!(c, vec![0.0, 0.0]);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn out_of_bounds_strides_are_refused() {
        let mut c = vec![0.0; 4];
        let (a, b) = (MatRef { data: &[1.0; 3], rs: 2, cs: 1 }, MatRef { data: &[1.0; 4], rs: 2, cs: 1 });
        sgemm(GemmShape { m: 2, n: 2, k: 2 }, a, b, Merge::OVERWRITE, MatMut { data: &mut c, rs: 2, cs: 1 });
    }
}
