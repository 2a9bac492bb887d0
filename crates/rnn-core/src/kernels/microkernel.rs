//! The register-blocked inner kernel of the packed GEMM ([`super::packed`]).
//!
//! One call computes a tile of at most `MR × NR` elements of C from a micro-panel of A (element
//! (r, p) at `a[r·rsa + p·csa]`: packed `[k][MR]`, or rows of A read in place) and a packed one
//! of B (`[k][NR]`):
//! `acc[r][j] = Σ_p a[p][r] · b[p][j]`, the sum running in increasing p, then merges it into C as
//! `C ← alpha · acc + beta · C` (`beta == 0`: C is not read, so it may hold garbage or NaN).
//!
//! Three implementations, chosen once at run time ([`Isa`]):
//! - AVX2 + FMA: 6 rows × 2 vectors of 8 = 12 accumulator registers, 2 for the B row, 1 for the
//!   broadcast A value (15 of the 16 ymm registers). Each depth step is 2 loads, 6 broadcasts and
//!   12 FMAs, so the two FMA ports stay busy while B's micro-panel (k·16 floats, 16 KiB at
//!   k = 256) sits in L1.
//! - AVX-512F: a *wide tile*, [`wide_kernel`]: 6 rows across up to [`WIDE_PANELS`] consecutive
//!   micro-panels of B, one zmm register per row and panel (24 accumulators, 4 B vectors and the
//!   broadcast: 29 of the 32 zmm registers). A depth step is 4 loads and 6 broadcasts for 24
//!   FMAs of 16 lanes: half the loads per FMA of the AVX2 tile, and a tile of few rows still has
//!   enough independent chains to cover the FMA latency. The packing is the AVX2 kernel's, so
//!   both read the same packed weights.
//! - portable: the same loops over `f32` arrays (the compiler vectorises them for the target's
//!   baseline: SSE2 on x86-64, NEON on aarch64).
//!
//! A product of a single row (batch-1 generation: `h [1, H] · W_hhᵀ`) has a kernel of its own,
//! [`row_kernel`]: one row of C across up to [`ROW_PANELS`] micro-panels at once. In a 1-row tile
//! each accumulator waits for the previous FMA (4 cycles), so two chains run at a quarter of the
//! FMA throughput (~21 GFLOP/s here); eight independent chains keep the units busy.
//!
//! Every C element gets the same sequence of operations whatever the tile's position, the number
//! of valid rows or columns, the kernel (tile, wide tile or row), the instruction set (AVX2 or
//! AVX-512) or the thread that runs it: results do not depend on how the GEMM splits its work.

pub use super::isa::Isa;

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

impl Merge {
    /// `C ← A · B`.
    pub const OVERWRITE: Merge = Merge { alpha: 1.0, beta: 0.0 };
    /// `C ← A · B + C`.
    pub const ACCUMULATE: Merge = Merge { alpha: 1.0, beta: 1.0 };
}

/// The A operand of a kernel: element (r, p) at `ptr[r·rs + p·cs]` for the kernel's rows and
/// depth p < k (a packed panel `[k][MR]`: rs 1, cs MR; a row block of A read in place: rs = A's
/// row stride, cs 1). A [`RowKernel`] reads one row: its `rs` is not used.
#[derive(Debug, Clone, Copy)]
pub struct APanel {
    pub ptr: *const f32,
    pub rs: usize,
    pub cs: usize,
}

/// The part of C a kernel writes: `cols` contiguous columns of each of its rows, from `ptr`
/// (the top-left element), rows `rs` apart. A [`RowKernel`] writes one row: its `rs` is not used.
#[derive(Debug, Clone, Copy)]
pub struct CTile {
    pub ptr: *mut f32,
    pub rs: usize,
    pub cols: usize,
}

/// A tile kernel for a fixed number of valid rows:
/// - `a`: A micro-panel (the kernel's rows × k),
/// - `b`: packed B micro-panel, `k · NR` floats (columns beyond `c.cols` are computed, not stored),
/// - `c`: the tile, `c.cols ≤ NR` columns and the kernel's row count written.
///
/// # Safety
/// `a` must address every element above and `b` hold `k · NR` floats; `c` must address
/// `rows × cols` writable elements not aliased by `a` or `b`.
pub type TileKernel = unsafe fn(k: usize, a: APanel, b: *const f32, c: CTile, merge: Merge);

/// The kernel for a tile of `rows` valid rows (1..=MR) in the set `isa` (which must be
/// [available](Isa::available)). AVX-512 uses the AVX2 tile where a wide tile does not apply.
pub fn kernel(isa: Isa, rows: usize) -> TileKernel {
    debug_assert!((1..=MR).contains(&rows) && isa.available());
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 => avx2::KERNELS[rows - 1],
        _ => portable::KERNELS[rows - 1],
    }
}

/// Micro-panels of B a wide tile covers at most.
pub const WIDE_PANELS: usize = 4;

/// A kernel for a tile of up to MR rows across consecutive micro-panels of B:
/// - `a`: A micro-panel (the kernel's rows × k), as for a [`TileKernel`],
/// - `b`: the micro-panels,
/// - `c`: the tile's top-left element; `c.cols ≤ panels · NR` contiguous columns of each row.
///
/// Each element is computed exactly as by a [`TileKernel`] of the AVX2 set.
///
/// # Safety
/// As [`TileKernel`], with each panel `k · NR` floats.
pub type WideKernel = unsafe fn(k: usize, a: APanel, b: BPanels, c: CTile, merge: Merge);

/// The wide-tile kernel for `rows` valid rows (1..=MR) and `panels` micro-panels
/// (1..=WIDE_PANELS) when the set `isa` has one (AVX-512), else None.
pub fn wide_kernel(isa: Isa, rows: usize, panels: usize) -> Option<WideKernel> {
    debug_assert!((1..=MR).contains(&rows) && (1..=WIDE_PANELS).contains(&panels) && isa.available());
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Some(avx512::KERNELS[rows - 1][panels - 1]),
        _ => None,
    }
}

/// Micro-panels a [`RowKernel`] covers at most (4 × 2 vectors = 8 accumulator chains).
pub const ROW_PANELS: usize = 4;

/// Consecutive packed micro-panels of B (`k · NR` floats each): panel q starts at
/// `ptr + q·stride`.
#[derive(Debug, Clone, Copy)]
pub struct BPanels {
    pub ptr: *const f32,
    pub stride: usize,
}

/// A kernel for one row of C across consecutive micro-panels of B:
/// - `a`: the row of A, element p at `a.ptr[p·a.cs]`, p < k,
/// - `b`: the micro-panels,
/// - `c`: the row's first element of C; `c.cols ≤ panels · NR` contiguous columns are written.
///
/// Each element is computed exactly as by a [`TileKernel`] (same FMA chain, same merge).
///
/// # Safety
/// `a` must address k elements at stride `a.cs`, each panel `k · NR` floats, `c` `cols` writable
/// elements not aliased by `a` or `b`.
pub type RowKernel = unsafe fn(k: usize, a: APanel, b: BPanels, c: CTile, merge: Merge);

/// The row kernel for `panels` micro-panels (1..=ROW_PANELS) in the set `isa`. A single row is
/// bound by reading B, not by arithmetic, so AVX-512 keeps the AVX2 row kernel.
pub fn row_kernel(isa: Isa, panels: usize) -> RowKernel {
    debug_assert!((1..=ROW_PANELS).contains(&panels) && isa.available());
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 => avx2::ROW_KERNELS[panels - 1],
        _ => portable::ROW_KERNELS[panels - 1],
    }
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
            *dst = if merge.beta == 0.0 { scaled } else { merge.beta * *dst + scaled };
        }
    }
}

/// The portable kernel (plain loops the compiler vectorises).
pub mod portable {
    use super::{merge_spilled, APanel, BPanels, CTile, Merge, TileKernel, MR, NR};

    /// The portable kernel for `ROWS` valid rows.
    ///
    /// # Safety
    /// See [`TileKernel`].
    pub unsafe fn tile<const ROWS: usize>(k: usize, a: APanel, b: *const f32, c: CTile, merge: Merge) {
        let (APanel { ptr: a, rs: rsa, cs: csa }, CTile { ptr: c, rs: rsc, cols }) = (a, c);
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

    pub(super) const KERNELS: [TileKernel; MR] = [tile::<1>, tile::<2>, tile::<3>, tile::<4>, tile::<5>, tile::<6>];

    /// The portable row kernel: one 1-row tile per panel.
    ///
    /// # Safety
    /// See [`RowKernel`](super::RowKernel).
    pub unsafe fn row<const PANELS: usize>(k: usize, a: APanel, b: BPanels, c: CTile, merge: Merge) {
        for q in 0..PANELS {
            let panel_cols = c.cols.saturating_sub(q * NR).min(NR);
            if panel_cols > 0 {
                let panel = CTile { ptr: c.ptr.add(q * NR), rs: 0, cols: panel_cols };
                tile::<1>(k, APanel { rs: 0, ..a }, b.ptr.add(q * b.stride), panel, merge);
            }
        }
    }

    pub(super) const ROW_KERNELS: [super::RowKernel; super::ROW_PANELS] = [row::<1>, row::<2>, row::<3>, row::<4>];
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{merge_spilled, APanel, BPanels, CTile, Merge, TileKernel, MR, NR};
    use std::arch::x86_64::*;

    /// # Safety
    /// See [`TileKernel`]; the CPU must support AVX2 and FMA ([`Isa::Avx2`](super::Isa) available).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const ROWS: usize>(k: usize, a: APanel, b: *const f32, c: CTile, merge: Merge) {
        let (APanel { ptr: a, rs: rsa, cs: csa }, CTile { ptr: c, rs: rsc, cols }) = (a, c);
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
                    let out =
                        if merge.beta == 0.0 { scaled } else { _mm256_fmadd_ps(beta, _mm256_loadu_ps(dst), scaled) };
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

    /// # Safety
    /// See [`RowKernel`](super::RowKernel); the CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn row<const PANELS: usize>(k: usize, a: APanel, b: BPanels, c: CTile, merge: Merge) {
        let (APanel { ptr: a, cs: csa, .. }, BPanels { ptr: b, stride: panel_stride }, CTile { ptr: c, cols, .. }) =
            (a, b, c);
        let mut acc = [[_mm256_setzero_ps(); 2]; PANELS];
        for p in 0..k {
            let a_p = _mm256_broadcast_ss(&*a.add(p * csa));
            for (q, acc_q) in acc.iter_mut().enumerate() {
                let b_p = b.add(q * panel_stride + p * NR);
                acc_q[0] = _mm256_fmadd_ps(a_p, _mm256_loadu_ps(b_p), acc_q[0]);
                acc_q[1] = _mm256_fmadd_ps(a_p, _mm256_loadu_ps(b_p.add(8)), acc_q[1]);
            }
        }
        let alpha = _mm256_set1_ps(merge.alpha);
        let beta = _mm256_set1_ps(merge.beta);
        for (q, acc_q) in acc.iter().enumerate() {
            let panel_cols = cols.saturating_sub(q * NR).min(NR);
            let dst = c.add(q * NR);
            if panel_cols == NR {
                // The same merge as the tile kernel's full tiles.
                for (half, &v) in acc_q.iter().enumerate() {
                    let scaled = _mm256_mul_ps(alpha, v);
                    let out = if merge.beta == 0.0 {
                        scaled
                    } else {
                        _mm256_fmadd_ps(beta, _mm256_loadu_ps(dst.add(half * 8)), scaled)
                    };
                    _mm256_storeu_ps(dst.add(half * 8), out);
                }
            } else if panel_cols > 0 {
                let mut spilled = [[0.0f32; NR]; 1];
                _mm256_storeu_ps(spilled[0].as_mut_ptr(), acc_q[0]);
                _mm256_storeu_ps(spilled[0].as_mut_ptr().add(8), acc_q[1]);
                merge_spilled(&spilled, dst, 0, panel_cols, merge);
            }
        }
    }

    macro_rules! wrap_row {
        ($($name:ident = $panels:literal),*) => {$(
            unsafe fn $name(k: usize, a: APanel, b: BPanels, c: CTile, merge: Merge) {
                row::<$panels>(k, a, b, c, merge)
            }
        )*};
    }
    wrap_row!(row_panels1 = 1, row_panels2 = 2, row_panels3 = 3, row_panels4 = 4);

    pub(super) const ROW_KERNELS: [super::RowKernel; super::ROW_PANELS] =
        [row_panels1, row_panels2, row_panels3, row_panels4];

    /// Safe-signature wrappers: [`TileKernel`] is an `unsafe fn` pointer without target
    /// features; these are only handed out when the AVX2 set is available.
    macro_rules! wrap {
        ($($name:ident = $rows:literal),*) => {$(
            unsafe fn $name(k: usize, a: APanel, b: *const f32, c: CTile, merge: Merge) {
                tile::<$rows>(k, a, b, c, merge)
            }
        )*};
    }
    wrap!(rows1 = 1, rows2 = 2, rows3 = 3, rows4 = 4, rows5 = 5, rows6 = 6);

    pub(super) const KERNELS: [TileKernel; MR] = [rows1, rows2, rows3, rows4, rows5, rows6];
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{merge_spilled, APanel, BPanels, CTile, Merge, WideKernel, MR, NR, WIDE_PANELS};
    use std::arch::x86_64::*;

    /// `ROWS` rows × `PANELS` micro-panels, one zmm accumulator each.
    ///
    /// # Safety
    /// See [`WideKernel`]; the CPU must support AVX-512F ([`Isa::Avx512`](super::Isa) available).
    #[target_feature(enable = "avx512f")]
    unsafe fn wide<const ROWS: usize, const PANELS: usize>(k: usize, a: APanel, b: BPanels, c: CTile, merge: Merge) {
        let (APanel { ptr: a, rs: rsa, cs: csa }, BPanels { ptr: b, stride }, CTile { ptr: c, rs: rsc, cols }) =
            (a, b, c);
        for r in 0..ROWS {
            for q in 0..PANELS {
                _mm_prefetch::<_MM_HINT_T0>(c.add(r * rsc + q * NR) as *const i8);
            }
        }
        let mut acc = [[_mm512_setzero_ps(); PANELS]; ROWS];
        for p in 0..k {
            let mut b_p = [_mm512_setzero_ps(); PANELS];
            for (q, b_q) in b_p.iter_mut().enumerate() {
                *b_q = _mm512_loadu_ps(b.add(q * stride + p * NR));
            }
            let a_p = a.add(p * csa);
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let a_r = _mm512_set1_ps(*a_p.add(r * rsa));
                for (acc_rq, &b_q) in acc_r.iter_mut().zip(&b_p) {
                    *acc_rq = _mm512_fmadd_ps(a_r, b_q, *acc_rq);
                }
            }
        }
        // The AVX2 tile's merge, so that the bits agree: full panels scale and fuse the old C
        // in; a partial panel goes through the spilled (scalar) merge.
        let alpha = _mm512_set1_ps(merge.alpha);
        let beta = _mm512_set1_ps(merge.beta);
        for q in 0..PANELS {
            let panel_cols = cols.saturating_sub(q * NR).min(NR);
            if panel_cols == NR {
                for (r, acc_r) in acc.iter().enumerate() {
                    let dst = c.add(r * rsc + q * NR);
                    let scaled = _mm512_mul_ps(alpha, acc_r[q]);
                    let out =
                        if merge.beta == 0.0 { scaled } else { _mm512_fmadd_ps(beta, _mm512_loadu_ps(dst), scaled) };
                    _mm512_storeu_ps(dst, out);
                }
            } else if panel_cols > 0 {
                let mut spilled = [[0.0f32; NR]; ROWS];
                for (out, acc_r) in spilled.iter_mut().zip(&acc) {
                    _mm512_storeu_ps(out.as_mut_ptr(), acc_r[q]);
                }
                merge_spilled(&spilled, c.add(q * NR), rsc, panel_cols, merge);
            }
        }
    }

    /// Safe-signature wrappers (see the AVX2 ones), one per (rows, panels).
    macro_rules! wrap {
        ($($name:ident = ($rows:literal, $panels:literal)),*) => {$(
            unsafe fn $name(k: usize, a: APanel, b: BPanels, c: CTile, merge: Merge) {
                wide::<$rows, $panels>(k, a, b, c, merge)
            }
        )*};
    }
    wrap!(
        r1p1 = (1, 1),
        r1p2 = (1, 2),
        r1p3 = (1, 3),
        r1p4 = (1, 4),
        r2p1 = (2, 1),
        r2p2 = (2, 2),
        r2p3 = (2, 3),
        r2p4 = (2, 4),
        r3p1 = (3, 1),
        r3p2 = (3, 2),
        r3p3 = (3, 3),
        r3p4 = (3, 4),
        r4p1 = (4, 1),
        r4p2 = (4, 2),
        r4p3 = (4, 3),
        r4p4 = (4, 4),
        r5p1 = (5, 1),
        r5p2 = (5, 2),
        r5p3 = (5, 3),
        r5p4 = (5, 4),
        r6p1 = (6, 1),
        r6p2 = (6, 2),
        r6p3 = (6, 3),
        r6p4 = (6, 4)
    );

    pub(super) const KERNELS: [[WideKernel; WIDE_PANELS]; MR] = [
        [r1p1, r1p2, r1p3, r1p4],
        [r2p1, r2p2, r2p3, r2p4],
        [r3p1, r3p2, r3p3, r3p4],
        [r4p1, r4p2, r4p3, r4p4],
        [r5p1, r5p2, r5p3, r5p4],
        [r6p1, r6p2, r6p3, r6p4],
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    const MERGES: [Merge; 3] =
        [Merge { alpha: 1.0, beta: 0.0 }, Merge { alpha: 1.0, beta: 1.0 }, Merge { alpha: 0.5, beta: -2.0 }];

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The row kernel of `isa` computes every element with the same bits as a 1-row tile over the
    /// same panel (so a batch-1 product equals the same row inside a larger batch), for every
    /// panel count, a partial last panel and every merge.
    fn row_kernel_equals_one_row_tiles_bit_for_bit(isa: Isa) {
        let k = 45;
        let stride = k * NR + 8;
        let a: Vec<f32> = (0..k * 3).map(|i| (i as f32 * 0.53).sin()).collect();
        let b: Vec<f32> = (0..ROW_PANELS * stride).map(|i| (i as f32 * 0.29).cos()).collect();
        for panels in 1..=ROW_PANELS {
            for cols in [panels * NR, panels * NR - 5] {
                for merge in MERGES {
                    let before: Vec<f32> = (0..ROW_PANELS * NR + 4).map(|i| i as f32 * 0.01 - 0.2).collect();
                    let mut got = before.clone();
                    let row_a = APanel { ptr: a.as_ptr(), rs: 0, cs: 3 };
                    let panels_b = BPanels { ptr: b.as_ptr(), stride };
                    let row_c = CTile { ptr: got.as_mut_ptr(), rs: 0, cols };
                    unsafe { row_kernel(isa, panels)(k, row_a, panels_b, row_c, merge) };
                    let mut want = before.clone();
                    for q in 0..panels {
                        let panel_cols = cols.saturating_sub(q * NR).min(NR);
                        let panel = b[q * stride..].as_ptr();
                        let tile_c = CTile { ptr: want[q * NR..].as_mut_ptr(), rs: 0, cols: panel_cols };
                        unsafe { kernel(isa, 1)(k, row_a, panel, tile_c, merge) };
                    }
                    assert_eq!(bits(&got), bits(&want), "{isa:?} panels {panels} cols {cols} {merge:?}");
                }
            }
        }
    }

    /// Every tile kernel of `isa`, every row count, full and partial tiles, beta 0 / 1 / other,
    /// against f64 sums; nothing outside the tile is written.
    fn tiles_match_f64_sums_for_every_row_count_and_merge(isa: Isa) {
        let k = 37;
        let a: Vec<f32> = (0..k * MR).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * NR).map(|i| (i as f32 * 0.91).cos()).collect();
        let exact = |r: usize, j: usize| (0..k).map(|p| a[p * MR + r] as f64 * b[p * NR + j] as f64).sum::<f64>();
        for rows in 1..=MR {
            for cols in [NR, 5] {
                for merge in MERGES {
                    let rsc = NR + 3;
                    let before: Vec<f32> =
                        (0..MR * rsc).map(|i| if merge.beta == 0.0 { f32::NAN } else { i as f32 * 0.01 }).collect();
                    let mut c = before.clone();
                    let (panel_a, tile_c) =
                        (APanel { ptr: a.as_ptr(), rs: 1, cs: MR }, CTile { ptr: c.as_mut_ptr(), rs: rsc, cols });
                    unsafe { kernel(isa, rows)(k, panel_a, b.as_ptr(), tile_c, merge) };
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
                                assert!(
                                    (got as f64 - want).abs() < 1e-4,
                                    "{isa:?} rows {rows} cols {cols} {merge:?} [{r},{j}]: {got} vs {want}"
                                );
                            } else {
                                assert_eq!(
                                    got.to_bits(),
                                    before[r * rsc + j].to_bits(),
                                    "{isa:?} wrote outside the tile at [{r},{j}]"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn portable_tiles_match_f64_sums() {
        tiles_match_f64_sums_for_every_row_count_and_merge(Isa::Portable);
    }

    #[test]
    fn portable_row_kernel_equals_one_row_tiles_bit_for_bit() {
        row_kernel_equals_one_row_tiles_bit_for_bit(Isa::Portable);
    }

    #[test]
    #[cfg_attr(not(rnnkit_host_avx2), ignore = "this CPU lacks AVX2/FMA")]
    fn avx2_tiles_match_f64_sums() {
        assert!(Isa::Avx2.available());
        tiles_match_f64_sums_for_every_row_count_and_merge(Isa::Avx2);
    }

    #[test]
    #[cfg_attr(not(rnnkit_host_avx2), ignore = "this CPU lacks AVX2/FMA")]
    fn avx2_row_kernel_equals_one_row_tiles_bit_for_bit() {
        assert!(Isa::Avx2.available());
        row_kernel_equals_one_row_tiles_bit_for_bit(Isa::Avx2);
    }

    /// A wide tile equals, bit for bit, the AVX2 tiles of its panels, for every row count, panel
    /// count, a partial last panel, in-place (row-major) and packed A, and every merge; nothing
    /// outside it is written.
    #[test]
    #[cfg_attr(not(rnnkit_host_avx512), ignore = "this CPU lacks AVX-512F")]
    fn avx512_wide_tiles_equal_avx2_tiles_bit_for_bit() {
        assert!(Isa::Avx512.available());
        let k = 53;
        let stride = k * NR + 16;
        let a: Vec<f32> = (0..k * MR * 2).map(|i| (i as f32 * 0.41).sin()).collect();
        let b: Vec<f32> = (0..WIDE_PANELS * stride).map(|i| (i as f32 * 0.23).cos()).collect();
        let rsc = WIDE_PANELS * NR + 7;
        for (rs, cs) in [(1, MR), (k + 3, 1)] {
            for rows in 1..=MR {
                for panels in 1..=WIDE_PANELS {
                    for cols in [panels * NR, panels * NR - 9] {
                        for merge in MERGES {
                            let before: Vec<f32> = (0..MR * rsc)
                                .map(|i| if merge.beta == 0.0 { f32::NAN } else { i as f32 * 0.01 - 0.3 })
                                .collect();
                            let a_panel = APanel { ptr: a.as_ptr(), rs, cs };
                            let mut got = before.clone();
                            let wide = wide_kernel(Isa::Avx512, rows, panels).expect("an AVX-512 wide kernel");
                            let tile = CTile { ptr: got.as_mut_ptr(), rs: rsc, cols };
                            unsafe { wide(k, a_panel, BPanels { ptr: b.as_ptr(), stride }, tile, merge) };
                            let mut want = before.clone();
                            for q in 0..panels {
                                let panel_cols = cols.saturating_sub(q * NR).min(NR);
                                let tile = CTile { ptr: want[q * NR..].as_mut_ptr(), rs: rsc, cols: panel_cols };
                                unsafe { kernel(Isa::Avx2, rows)(k, a_panel, b[q * stride..].as_ptr(), tile, merge) };
                            }
                            let name = format!("rows {rows} panels {panels} cols {cols} a ({rs}, {cs}) {merge:?}");
                            assert_eq!(bits(&got), bits(&want), "{name}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn only_the_avx512_set_has_wide_tiles() {
        assert!(wide_kernel(Isa::Portable, MR, WIDE_PANELS).is_none());
        if Isa::Avx2.available() {
            assert!(wide_kernel(Isa::Avx2, MR, WIDE_PANELS).is_none());
        }
    }
}
