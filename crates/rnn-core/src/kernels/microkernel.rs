//! The register-blocked inner kernel of the packed GEMM ([`super::packed`]).
//!
//! One call computes a tile of at most `MR × NR` elements of C from a micro-panel of A (element
//! (r, p) at `a[r·rsa + p·csa]`: packed `[k][MR]`, or rows of A read in place) and a packed one
//! of B (`[k][NR]`):
//! `acc[r][j] = Σ_p a[p][r] · b[p][j]`, the sum running in increasing p, then merges it into C as
//! `C ← alpha · acc + beta · C` (`beta == 0`: C is not read, so it may hold garbage or NaN).
//!
//! Two implementations, chosen once at run time:
//! - AVX2 + FMA: 6 rows × 2 vectors of 8 = 12 accumulator registers, 2 for the B row, 1 for the
//!   broadcast A value (15 of the 16 ymm registers). Each depth step is 2 loads, 6 broadcasts and
//!   12 FMAs, so the two FMA ports stay busy while B's micro-panel (k·16 floats, 16 KiB at
//!   k = 256) sits in L1.
//! - portable: the same loops over `f32` arrays (the compiler vectorises them for the target's
//!   baseline: SSE2 on x86-64, NEON on aarch64).
//!
//! Every C element gets the same sequence of operations whatever the tile's position, the number
//! of valid rows or columns, or the thread that runs it: results do not depend on how the GEMM
//! splits its work.

/// Rows of a tile (A micro-panel height).
pub const MR: usize = 6;
/// Columns of a tile (B micro-panel width): two AVX2 vectors.
pub const NR: usize = 16;

/// How a tile's product is merged into C: `C ← alpha · acc + beta · C`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Merge {
    pub alpha: f32,
    /// 0 means C is overwritten without being read.
    pub beta: f32,
}

/// A tile kernel for a fixed number of valid rows: `(k, a, rsa, csa, b, c, rsc, cols, merge)`:
/// - `a`: A micro-panel, element (r, p) at `a[r·rsa + p·csa]` for the kernel's rows and p < k,
/// - `b`: packed B micro-panel, `k · NR` floats (columns beyond `cols` are computed, not stored),
/// - `c`: the tile's top-left element of C, rows `rsc` apart, columns contiguous; `cols ≤ NR`
///   columns and the kernel's row count are written.
///
/// # Safety
/// `a` must address every element above and `b` hold `k · NR` floats; `c` must address
/// `rows × cols` writable elements at row stride `rsc` not aliased by `a` or `b`.
pub type TileKernel = unsafe fn(usize, *const f32, usize, usize, *const f32, *mut f32, usize, usize, Merge);

/// The kernel for a tile of `rows` valid rows (1..=MR), best implementation for this CPU.
pub fn kernel(rows: usize) -> TileKernel {
    debug_assert!((1..=MR).contains(&rows));
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        return avx2::KERNELS[rows - 1];
    }
    portable::KERNELS[rows - 1]
}

/// Merges a spilled tile `acc` (`rows × NR`) into C for the first `cols` columns (edge tiles).
///
/// # Safety
/// As [`TileKernel`] for `c`.
#[inline]
unsafe fn merge_spilled(acc: &[[f32; NR]], c: *mut f32, rsc: usize, cols: usize, merge: Merge) {
    for (r, row) in acc.iter().enumerate() {
        let c_row = c.add(r * rsc);
        for (j, &v) in row[..cols].iter().enumerate() {
            let dst = c_row.add(j);
            let scaled = merge.alpha * v;
            *dst = if merge.beta == 0.0 {
                scaled
            } else {
                merge.beta * *dst + scaled
            };
        }
    }
}

/// The portable kernel (plain loops the compiler vectorises).
pub mod portable {
    use super::{merge_spilled, Merge, TileKernel, MR, NR};

    /// The portable kernel for `ROWS` valid rows.
    ///
    /// # Safety
    /// See [`TileKernel`].
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile<const ROWS: usize>(k: usize, a: *const f32, rsa: usize, csa: usize, b: *const f32, c: *mut f32, rsc: usize, cols: usize, merge: Merge) {
        let mut acc = [[0.0f32; NR]; ROWS];
        let b = std::slice::from_raw_parts(b, k * NR);
        for (p, b_p) in b.chunks_exact(NR).enumerate() {
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let a_r = *a.add(r * rsa + p * csa);
                for (acc_rj, &b_j) in acc_r.iter_mut().zip(b_p) {
                    // Separate multiply and add: `mul_add` is a slow library call without hardware FMA.
                    *acc_rj += a_r * b_j;
                }
            }
        }
        merge_spilled(&acc, c, rsc, cols, merge);
    }

    pub(super) const KERNELS: [TileKernel; MR] = [
        tile::<1>, tile::<2>, tile::<3>, tile::<4>, tile::<5>, tile::<6>,
    ];
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{merge_spilled, Merge, TileKernel, MR, NR};
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    pub(super) fn available() -> bool {
        static AVAILABLE: OnceLock<bool> = OnceLock::new();
        *AVAILABLE
            .get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }

    /// # Safety
    /// See [`TileKernel`]; the CPU must support AVX2 and FMA (checked by [`available`]).
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const ROWS: usize>(k: usize, a: *const f32, rsa: usize, csa: usize, b: *const f32, c: *mut f32, rsc: usize, cols: usize, merge: Merge) {
        // Ask for C's tile now: it is read (beta ≠ 0) or written after the depth loop, and at a
        // small depth the loop is too short to hide a miss to memory.
        for r in 0..ROWS {
            _mm_prefetch::<_MM_HINT_T0>(c.add(r * rsc) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(c.add(r * rsc + NR - 1) as *const i8);
        }
        let mut acc = [[_mm256_setzero_ps(); 2]; ROWS];
        for p in 0..k {
            let b0 = _mm256_loadu_ps(b.add(p * NR));
            let b1 = _mm256_loadu_ps(b.add(p * NR + 8));
            let a_p = a.add(p * csa);
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let a_r = _mm256_broadcast_ss(&*a_p.add(r * rsa));
                acc_r[0] = _mm256_fmadd_ps(a_r, b0, acc_r[0]);
                acc_r[1] = _mm256_fmadd_ps(a_r, b1, acc_r[1]);
            }
        }
        if cols == NR {
            let alpha = _mm256_set1_ps(merge.alpha);
            let beta = _mm256_set1_ps(merge.beta);
            for (r, acc_r) in acc.iter().enumerate() {
                for (half, &v) in acc_r.iter().enumerate() {
                    let dst = c.add(r * rsc + half * 8);
                    let scaled = _mm256_mul_ps(alpha, v);
                    let out = if merge.beta == 0.0 {
                        scaled
                    } else {
                        _mm256_fmadd_ps(beta, _mm256_loadu_ps(dst), scaled)
                    };
                    _mm256_storeu_ps(dst, out);
                }
            }
        } else {
            let mut spilled = [[0.0f32; NR]; ROWS];
            for (out, acc_r) in spilled.iter_mut().zip(&acc) {
                _mm256_storeu_ps(out.as_mut_ptr(), acc_r[0]);
                _mm256_storeu_ps(out.as_mut_ptr().add(8), acc_r[1]);
            }
            merge_spilled(&spilled, c, rsc, cols, merge);
        }
    }

    /// Safe-signature wrappers: [`TileKernel`] is an `unsafe fn` pointer without target
    /// features; these are only handed out after [`available`] said yes.
    macro_rules! wrap {
        ($($name:ident = $rows:literal),*) => {$(
            #[allow(clippy::too_many_arguments)]
            unsafe fn $name(k: usize, a: *const f32, rsa: usize, csa: usize, b: *const f32, c: *mut f32, rsc: usize, cols: usize, merge: Merge) {
                tile::<$rows>(k, a, rsa, csa, b, c, rsc, cols, merge)
            }
        )*};
    }
    wrap!(
        rows1 = 1,
        rows2 = 2,
        rows3 = 3,
        rows4 = 4,
        rows5 = 5,
        rows6 = 6
    );

    pub(super) const KERNELS: [TileKernel; MR] = [rows1, rows2, rows3, rows4, rows5, rows6];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel, every row count, full and partial tiles, beta 0 / 1 / other, against f64 sums.
    #[test]
    fn kernels_match_f64_sums_for_every_row_count_and_merge() {
        let k = 37;
        let a: Vec<f32> = (0..k * MR).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * NR).map(|i| (i as f32 * 0.91).cos()).collect();
        let exact = |r: usize, j: usize| {
            (0..k)
                .map(|p| a[p * MR + r] as f64 * b[p * NR + j] as f64)
                .sum::<f64>()
        };
        let mut impls: Vec<(&str, TileKernel)> = (1..=MR)
            .map(|rows| ("portable", portable::KERNELS[rows - 1]))
            .collect();
        impls.extend((1..=MR).map(|rows| ("selected", kernel(rows))));
        for (idx, (name, kern)) in impls.into_iter().enumerate() {
            let rows = idx % MR + 1;
            for cols in [NR, 5] {
                for merge in [
                    Merge {
                        alpha: 1.0,
                        beta: 0.0,
                    },
                    Merge {
                        alpha: 1.0,
                        beta: 1.0,
                    },
                    Merge {
                        alpha: 0.5,
                        beta: -2.0,
                    },
                ] {
                    let rsc = NR + 3;
                    let before: Vec<f32> = (0..MR * rsc)
                        .map(|i| {
                            if merge.beta == 0.0 {
                                f32::NAN
                            } else {
                                i as f32 * 0.01
                            }
                        })
                        .collect();
                    let mut c = before.clone();
                    unsafe { kern(k, a.as_ptr(), 1, MR, b.as_ptr(), c.as_mut_ptr(), rsc, cols, merge) };
                    for r in 0..MR {
                        for j in 0..rsc {
                            let got = c[r * rsc + j];
                            if r < rows && j < cols {
                                let old = if merge.beta == 0.0 {
                                    0.0
                                } else {
                                    merge.beta as f64 * before[r * rsc + j] as f64
                                };
                                let want = merge.alpha as f64 * exact(r, j) + old;
                                assert!((got as f64 - want).abs() < 1e-4, "{name} rows {rows} cols {cols} {merge:?} [{r},{j}]: {got} vs {want}");
                            } else {
                                assert_eq!(
                                    got.to_bits(),
                                    before[r * rsc + j].to_bits(),
                                    "{name} wrote outside the tile at [{r},{j}]"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
