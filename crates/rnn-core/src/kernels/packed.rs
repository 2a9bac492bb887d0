//! The engine's own GEMM: operands packed into cache-sized blocks, then [`microkernel`] tiles.
//!
//! `C [m, n] ← alpha · A [m, k] · B [k, n] + beta · C`, C row-major (`csc == 1`), A and B at any
//! strides. The loops follow the Goto/BLIS layering:
//!
//! ```text
//! for each block of NC columns          (a thread owns whole blocks of panels)
//!   for each block of KC depth            B block packed: ⌈n/NR⌉ panels [kc][NR]  (L3)
//!     for each block of MC rows             A block packed: ⌈mc/MR⌉ panels [kc][MR] (L2)
//!       for each NR-column panel of B         B micro-panel, kc·NR floats (L1)
//!         for each MR-row panel of A            one MR × NR tile in registers
//! ```
//!
//! Why our own: the recurrences multiply by the same weights at every time step. [`PackedB`]
//! packs a weight matrix once (per forward/backward pass, or once per model for inference) and
//! every step reuses it; general-purpose GEMMs (matrixmultiply, gemm-f32) re-pack both operands
//! and allocate their buffers on every call. Here packing buffers are per-thread and reused, so
//! a product allocates nothing after the first call of its size.
//!
//! Threads split C into contiguous ranges of rows (tall products) or of whole NR-column panels
//! (wide ones); the depth loop is never split, so every element of C is the same sequence of
//! operations at any thread count: results are bit-identical whatever the number of threads.

use super::gemm::{GemmShape, MatMut, MatRef};
use super::microkernel::{self, APanel, BPanels, CTile, Isa, Merge, MR, NR, ROW_PANELS, WIDE_PANELS};
use super::tuning::{self, ShapeKey};
use std::cell::RefCell;
use std::ops::Range;

/// Depth of a packed block: a B micro-panel (KC·NR·4 = 16 KiB) stays in L1 while the tiles of a
/// row block use it.
pub const KC: usize = 256;
/// Rows of a packed A block (MC·KC·4 = 144 KiB, in L2).
const MC: usize = 144;
/// Columns of C a thread computes per packed B block (NC·KC·4 = 1 MiB, in L3).
const NC: usize = 1024;

/// A `f32` buffer whose start is 64-byte aligned (a cache line; every packed panel then starts on
/// one). Grows, never shrinks.
#[derive(Debug, Default, Clone)]
struct AlignedBuf {
    raw: Vec<f32>,
    offset: usize,
    len: usize,
}

impl AlignedBuf {
    /// The buffer resized to `len` values (contents unspecified).
    fn resize(&mut self, len: usize) -> &mut [f32] {
        if self.raw.len() < len + 16 {
            self.raw = vec![0.0; len + 16];
        }
        self.offset = (self.raw.as_ptr() as usize / 4).wrapping_neg() % 16;
        self.len = len;
        &mut self.raw[self.offset..self.offset + len]
    }

    fn as_slice(&self) -> &[f32] {
        &self.raw[self.offset..self.offset + self.len]
    }
}

/// A B operand `[k, n]` packed for [`gemm`]: depth blocks of KC, each holding ⌈n/NR⌉ panels
/// `[kc][NR]` (columns past n zero). Pack a weight matrix once and multiply by it many times.
#[derive(Debug, Default, Clone)]
pub struct PackedB {
    k: usize,
    n: usize,
    data: AlignedBuf,
}

impl PackedB {
    /// Packs `B [k, n]`, element (p, j) at `b[p · rsb + j · csb]`.
    pub fn new(k: usize, n: usize, b: &[f32], rsb: usize, csb: usize) -> Self {
        let mut packed = PackedB::default();
        packed.repack(k, n, b, rsb, csb);
        packed
    }

    /// [`new`](Self::new) reusing this buffer's allocation.
    pub fn repack(&mut self, k: usize, n: usize, b: &[f32], rsb: usize, csb: usize) {
        assert!(k == 0 || n == 0 || (k - 1) * rsb + (n - 1) * csb < b.len(), "PackedB: B [{k}, {n}] out of bounds");
        self.k = k;
        self.n = n;
        let panels = n.div_ceil(NR);
        let out = self.data.resize(k * panels * NR);
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            pack_b_block(&mut out[p0 * panels * NR..(p0 + kc) * panels * NR], kc, 0, n, &b[p0 * rsb..], rsb, csb);
        }
    }

    /// Depth `k` (rows of B).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Width `n` (columns of B).
    pub fn n(&self) -> usize {
        self.n
    }

    /// The depth block starting at `p0` (`kc` deep): its panels, `[⌈n/NR⌉][kc][NR]`.
    fn block(&self, p0: usize, kc: usize) -> &[f32] {
        let width = self.n.div_ceil(NR) * NR;
        &self.data.as_slice()[p0 * width..(p0 + kc) * width]
    }
}

/// Packs columns `j0..j1` of a `kc`-deep block of B (element (p, j) at `b[p·rsb + j·csb]`) into
/// panels `[kc][NR]`, zero-filling columns past `j1` in the last panel.
fn pack_b_block(out: &mut [f32], kc: usize, j0: usize, j1: usize, b: &[f32], rsb: usize, csb: usize) {
    for (panel, dst) in out.chunks_exact_mut(kc * NR).take((j1 - j0).div_ceil(NR)).enumerate() {
        let first = j0 + panel * NR;
        let cols = NR.min(j1 - first);
        if csb == 1 {
            // Rows of B are contiguous: copy NR-wide runs.
            for (p, d) in dst.chunks_exact_mut(NR).enumerate() {
                let src = &b[p * rsb + first..p * rsb + first + cols];
                if let (Ok(d), Ok(src)) = (<&mut [f32; NR]>::try_from(&mut *d), <&[f32; NR]>::try_from(src)) {
                    // A full panel row: a fixed-size copy, inlined (a `memcpy` call per 64
                    // bytes showed in the profile).
                    *d = *src;
                } else {
                    d[..cols].copy_from_slice(src);
                    d[cols..].fill(0.0);
                }
            }
        } else {
            // Columns of B are contiguous (a transposed weight): read each column in order.
            if cols < NR {
                dst.fill(0.0);
            }
            for jj in 0..cols {
                let col = &b[(first + jj) * csb..];
                for p in 0..kc {
                    dst[p * NR + jj] = col[p * rsb];
                }
            }
        }
    }
}

/// Packs `rows` (mc of them), `depth` (kc) of A into panels `[kc][MR]` (rows past mc zero).
fn pack_a_block(out: &mut [f32], a: MatRef, rows: Range<usize>, depth: Range<usize>) {
    let MatRef { data: a, rs: rsa, cs: csa } = a;
    let (i0, mc, p0, kc) = (rows.start, rows.len(), depth.start, depth.len());
    let panels = mc.div_ceil(MR);
    if !mc.is_multiple_of(MR) {
        // The last panel's rows past mc must be zero (the kernel multiplies them).
        out[(panels - 1) * kc * MR..panels * kc * MR].fill(0.0);
    }
    if rsa == 1 {
        // Columns of A contiguous (a transposed operand, e.g. dGᵀ in the weight gradients):
        // read each column's mc values in one run and deal them out to the panels, so every
        // cache line (and page) of A is touched once per block.
        for p in 0..kc {
            let col = &a[i0 + (p0 + p) * csa..][..mc];
            // Full runs as fixed-size copies (inlined moves; a copy of run-time length became a
            // `memcpy` call per 24 bytes, a tenth of a GRU training step).
            let mut runs = col.chunks_exact(MR);
            for (panel, run) in (&mut runs).enumerate() {
                let dst: &mut [f32; MR] = (&mut out[panel * kc * MR + p * MR..][..MR]).try_into().expect("MR values");
                *dst = run.try_into().expect("MR values");
            }
            let tail = runs.remainder();
            if !tail.is_empty() {
                out[(mc / MR) * kc * MR + p * MR..][..tail.len()].copy_from_slice(tail);
            }
        }
    } else {
        for panel in 0..panels {
            let first = i0 + panel * MR;
            let dst = &mut out[panel * kc * MR..(panel + 1) * kc * MR];
            for r in 0..MR.min(i0 + mc - first) {
                let row = &a[(first + r) * rsa + p0 * csa..];
                for p in 0..kc {
                    dst[p * MR + r] = row[p * csa];
                }
            }
        }
    }
}

/// Per-thread packing buffers (A block; B block when B is not prepacked).
#[derive(Default)]
struct Scratch {
    a: AlignedBuf,
    b: AlignedBuf,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Where B comes from.
#[derive(Clone, Copy)]
pub enum BSource<'a> {
    /// Packed once beforehand.
    Packed(&'a PackedB),
    /// Strided `[k, n]`, packed block by block on the fly.
    Strided(MatRef<'a>),
}

/// `C [m, n] ← alpha · A · B + beta · C` over `columns` of C (a whole number of NR panels from
/// 0, or the end). C is a pointer, not a slice: threads that split a product by columns write
/// the same rows at once, each in its own columns, and overlapping `&mut` slices would alias.
///
/// # Safety
/// `c` addresses C `[m, n]` ((m−1)·rs + n values, checked by the caller with A's bounds), and no
/// other thread touches `columns` of those rows meanwhile.
unsafe fn gemm_columns(
    isa: Isa,
    shape: GemmShape,
    a: MatRef,
    b: BSource,
    merge: Merge,
    c: SharedC,
    columns: Range<usize>,
) {
    let GemmShape { m, n, k } = shape;
    let (rsa, csa) = (a.rs, a.cs);
    let (Merge { alpha, beta }, SharedC { ptr: c, rs: rsc }) = (merge, c);
    let (j_lo, j_hi) = (columns.start, columns.end);
    SCRATCH.with(|scratch| {
        let scratch = &mut *scratch.borrow_mut();
        for jc in (j_lo..j_hi).step_by(NC) {
            let nc = NC.min(j_hi - jc);
            for p0 in (0..k).step_by(KC) {
                let kc = KC.min(k - p0);
                // The first depth block applies beta; later ones add to it.
                let merge = Merge { alpha, beta: if p0 == 0 { beta } else { 1.0 } };
                let b_block: &[f32] = match b {
                    BSource::Packed(packed) => &packed.block(p0, kc)[jc * kc..],
                    BSource::Strided(MatRef { data: b, rs: rsb, cs: csb }) => {
                        let out = scratch.b.resize(nc.div_ceil(NR) * NR * kc);
                        pack_b_block(out, kc, jc, jc + nc, &b[p0 * rsb..], rsb, csb);
                        scratch.b.as_slice()
                    }
                };
                for i0 in (0..m).step_by(MC) {
                    let mc = MC.min(m - i0);
                    // Rows of A contiguous: the kernel reads them in place (no copy at every step
                    // of a recurrence); otherwise the block is packed into MR-row panels.
                    let in_place = csa == 1;
                    if !in_place {
                        let out = scratch.a.resize(mc.div_ceil(MR) * MR * kc);
                        pack_a_block(out, a, i0..i0 + mc, p0..p0 + kc);
                    }
                    let a_block = scratch.a.as_slice();
                    if mc == 1 {
                        let (a_row, a_cs) = if in_place { (&a.data[i0 * rsa + p0..], 1) } else { (a_block, MR) };
                        let panels = nc.div_ceil(NR);
                        for first in (0..panels).step_by(ROW_PANELS) {
                            let count = ROW_PANELS.min(panels - first);
                            let j = jc + first * NR;
                            // SAFETY: A's row holds kc values at stride a_cs (in place: checked
                            // by the caller; packed: one MR-wide panel), each B panel kc·NR floats
                            // inside the block; the `cols` columns from j lie in C's row i0.
                            unsafe {
                                microkernel::row_kernel(isa, count)(
                                    kc,
                                    APanel { ptr: a_row.as_ptr(), rs: 0, cs: a_cs },
                                    BPanels { ptr: b_block[first * kc * NR..].as_ptr(), stride: kc * NR },
                                    CTile { ptr: c.add(i0 * rsc + j), rs: 0, cols: (count * NR).min(n - j) },
                                    merge,
                                )
                            };
                        }
                        continue;
                    }
                    // Panels in groups a wide tile covers (AVX-512), or one at a time.
                    let panels = nc.div_ceil(NR);
                    let group = if microkernel::wide_kernel(isa, MR, 1).is_some() { WIDE_PANELS } else { 1 };
                    for first in (0..panels).step_by(group) {
                        let count = group.min(panels - first);
                        let j = jc + first * NR;
                        let cols = (count * NR).min(n - j);
                        let b_panels = BPanels { ptr: b_block[first * kc * NR..].as_ptr(), stride: kc * NR };
                        for (row_panel, i) in (i0..i0 + mc).step_by(MR).enumerate() {
                            let rows = MR.min(i0 + mc - i);
                            let (a_panel, a_rs, a_cs) = if in_place {
                                (&a.data[i * rsa + p0..], rsa, 1)
                            } else {
                                (&a_block[row_panel * kc * MR..], 1, MR)
                            };
                            let a_panel = APanel { ptr: a_panel.as_ptr(), rs: a_rs, cs: a_cs };
                            let tile = CTile { ptr: c.add(i * rsc + j), rs: rsc, cols };
                            // SAFETY: the A panel addresses `rows` rows of kc values (packed, or
                            // inside A: checked by the caller), each of the `count` B panels
                            // holds kc·NR floats inside the block; the tile's `rows` rows of
                            // `cols` columns lie inside C (checked by the caller:
                            // (m−1)·rsc + n − 1 < c.len()).
                            unsafe {
                                match microkernel::wide_kernel(isa, rows, count) {
                                    Some(wide) => wide(kc, a_panel, b_panels, tile, merge),
                                    None => microkernel::kernel(isa, rows)(kc, a_panel, b_panels.ptr, tile, merge),
                                }
                            };
                        }
                    }
                }
            }
        }
    });
}

/// `C [m, n] ← alpha · A · B + beta · C` (`merge`): A `[m, k]` at any strides, C row-major (its
/// column stride must be 1), B from `b` (packed or strided; its k and n must match). Runs on up
/// to `threads` threads of the engine's pool, each owning a range of rows or columns.
/// `beta == 0`: C is not read. The kernels are those of [`Isa::selected`], or for each shape the
/// fastest of the sets that give the same bits ([`tuning`]).
pub fn gemm(shape: GemmShape, a: MatRef, b: BSource, merge: Merge, c: MatMut, threads: usize) {
    let key = ShapeKey { m: shape.m, n: shape.n, k: shape.k, threads, packed: matches!(b, BSource::Packed(_)) };
    if let Some(isa) = tuning::chosen(key) {
        return gemm_on(isa, shape, a, b, merge, c, threads);
    }
    // First product of this shape: run it on each candidate set from the same C.
    let MatMut { data, rs, cs } = c;
    tuning::measure(
        key,
        tuning::from_same_output(data, merge.beta, |data, isa| {
            gemm_on(isa, shape, a, b, merge, MatMut { data, rs, cs }, threads)
        }),
    );
}

/// [`gemm`] on the kernels of `isa`, which must be [available](Isa::available) (benchmarks and
/// tests compare the sets).
pub fn gemm_on(isa: Isa, shape: GemmShape, a: MatRef, b: BSource, merge: Merge, c: MatMut, threads: usize) {
    assert!(isa.available(), "packed gemm: this CPU cannot run the {} kernels", isa.name());
    let GemmShape { m, n, k } = shape;
    assert_eq!(c.cs, 1, "packed gemm: C must be row-major");
    let (MatMut { data: c, rs: rsc, .. }, beta) = (c, merge.beta);
    if m == 0 || n == 0 {
        return;
    }
    if let BSource::Packed(p) = b {
        assert!(p.k == k && p.n == n, "packed gemm: B is [{}, {}], the product needs [{k}, {n}]", p.k, p.n);
    }
    assert!((m - 1) * rsc + n <= c.len() && rsc >= n, "packed gemm: C [{m}, {n}] out of bounds");
    assert!(k == 0 || (m - 1) * a.rs + (k - 1) * a.cs < a.data.len(), "packed gemm: A [{m}, {k}] out of bounds");
    if k == 0 {
        for row in c.chunks_mut(rsc).take(m) {
            row[..n].iter_mut().for_each(|v| *v = if beta == 0.0 { 0.0 } else { beta * *v });
        }
        return;
    }
    // Below a few microseconds of work, the fork-join would cost more than splitting saves.
    let threads = if m * n * k < crate::parallel::min_split_work() { 1 } else { threads };
    if threads <= 1 {
        // SAFETY: bounds checked above; C is borrowed mutably for the call.
        return unsafe { gemm_columns(isa, shape, a, b, merge, SharedC { ptr: c.as_mut_ptr(), rs: rsc }, 0..n) };
    }
    // Either way each element of C is computed by one thread with the same operations, so the
    // split never changes the bits.
    let c_ptr = &SharedC { ptr: c.as_mut_ptr(), rs: rsc };
    if m >= n {
        // Tall products (the weight gradients, the input projection, the head over all steps):
        // split the rows, so that each thread reads only its share of the large A.
        let per = m.div_ceil(threads).div_ceil(MR) * MR;
        crate::parallel::for_each_index(m.div_ceil(per), |block| {
            let (i_lo, rows) = (block * per, per.min(m - block * per));
            // SAFETY: each block writes only rows i_lo..i_lo + rows of C, disjoint from every
            // other block's; C outlives the call.
            unsafe {
                let block_a = MatRef { data: &a.data[i_lo * a.rs..], ..a };
                let block_c = SharedC { ptr: c_ptr.ptr.add(i_lo * rsc), rs: rsc };
                gemm_columns(isa, GemmShape { m: rows, n, k }, block_a, b, merge, block_c, 0..n)
            }
        });
        return;
    }
    // Wide products (the per-step recurrence: a few rows of h against all of W): split the
    // columns into ranges of whole panels, and of whole row-kernel groups when they are large
    // enough (a batch-1 step). C's rows interleave the ranges, so the threads share the buffer
    // through a raw pointer.
    let panels = n.div_ceil(NR).div_ceil(threads);
    let per = if panels >= 2 * ROW_PANELS { panels.div_ceil(ROW_PANELS) * ROW_PANELS * NR } else { panels * NR };
    crate::parallel::for_each_index(n.div_ceil(per), |range| {
        let (j_lo, j_hi) = (range * per, ((range + 1) * per).min(n));
        // SAFETY: each range writes only columns j_lo..j_hi of C's rows (the tiles of its
        // panels), disjoint from every other range's; C outlives the call.
        unsafe { gemm_columns(isa, shape, a, b, merge, *c_ptr, j_lo..j_hi) };
    });
}

/// C's buffer shared by the row-block and column-range tasks of [`gemm`]: row-major, rows `rs`
/// apart.
#[derive(Clone, Copy)]
struct SharedC {
    ptr: *mut f32,
    rs: usize,
}
// SAFETY: the tasks write disjoint parts of C (see `gemm`).
unsafe impl Sync for SharedC {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gemm::reference;

    const HALF: Merge = Merge { alpha: 0.5, beta: 0.0 };

    fn available_sets() -> impl Iterator<Item = Isa> {
        Isa::ALL.into_iter().filter(|isa| isa.available())
    }

    fn values(len: usize, seed: f32) -> Vec<f32> {
        (0..len).map(|i| (i as f32 * seed).sin()).collect()
    }

    /// Shapes crossing every block edge (MR, NR, WIDE_PANELS, KC, MC, NC), both B layouts,
    /// prepacked or not, beta 0 / 1, at 1 and 3 threads, on every kernel set this CPU has: equal
    /// to the f64 reference, and bit-identical across thread counts, between prepacked and
    /// strided B, and between the AVX2 and AVX-512 sets.
    #[test]
    fn packed_gemm_matches_the_reference_at_every_block_edge() {
        for (m, n, k) in
            [(1, 1, 1), (7, 17, 5), (13, 33, 257), (150, 40, 300), (6, 1100, 20), (2, 96, 513), (32, 200, 70)]
        {
            let a = values(m * k, 0.37);
            let b = values(k * n, 0.91);
            let c0 = values(m * (n + 2), 0.13);
            for transposed_b in [false, true] {
                let (rsb, csb) = if transposed_b { (1, k) } else { (n, 1) };
                let packed = PackedB::new(k, n, &b, rsb, csb);
                for beta in [0.0, 1.0] {
                    let mut want = c0.clone();
                    let (shape, merge) = (GemmShape { m, n, k }, Merge { beta, ..HALF });
                    let (a_view, b_view) = (MatRef { data: &a, rs: k, cs: 1 }, MatRef { data: &b, rs: rsb, cs: csb });
                    reference(shape, a_view, b_view, merge, MatMut { data: &mut want, rs: n + 2, cs: 1 });
                    // One result per bit class: the fused-multiply-add sets (AVX2, AVX-512) must
                    // agree with each other, the portable set with itself.
                    let mut first: [Option<Vec<f32>>; 2] = [None, None];
                    for (isa, threads) in available_sets().flat_map(|isa| [(isa, 1), (isa, 3)]) {
                        let first = &mut first[usize::from(isa != Isa::Portable)];
                        for source in [BSource::Packed(&packed), BSource::Strided(b_view)] {
                            let mut got = if beta == 0.0 { vec![f32::NAN; c0.len()] } else { c0.clone() };
                            let out = MatMut { data: &mut got, rs: n + 2, cs: 1 };
                            gemm_on(isa, shape, a_view, source, merge, out, threads);
                            for i in 0..m {
                                for j in 0..n + 2 {
                                    let (g, w) = (got[i * (n + 2) + j], want[i * (n + 2) + j]);
                                    if j < n {
                                        assert!(
                                            (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                                            "{isa:?} {m}x{n}x{k} bT={transposed_b} beta {beta} [{i},{j}]: {g} vs {w}"
                                        );
                                    } else if beta != 0.0 {
                                        assert_eq!(g.to_bits(), c0[i * (n + 2) + j].to_bits(), "wrote past column n");
                                    }
                                }
                            }
                            match first {
                                None => *first = Some(got),
                                Some(f) => assert!(
                                    f.iter()
                                        .zip(&got)
                                        .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())),
                                    "{isa:?}: results differ between thread counts, B sources or kernel sets"
                                ),
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn transposed_a_is_read_through_its_strides() {
        let (m, n, k) = (9, 20, 11);
        let at = values(k * m, 0.29); // A stored [k, m]
        let b = values(k * n, 0.53);
        let mut want = vec![0.0; m * n];
        let (shape, at_view, b_view) =
            (GemmShape { m, n, k }, MatRef { data: &at, rs: 1, cs: m }, MatRef { data: &b, rs: n, cs: 1 });
        reference(shape, at_view, b_view, Merge::OVERWRITE, MatMut { data: &mut want, rs: n, cs: 1 });
        let mut got = vec![0.0; m * n];
        gemm(shape, at_view, BSource::Strided(b_view), Merge::OVERWRITE, MatMut { data: &mut got, rs: n, cs: 1 }, 1);
        assert!(got.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-4));
    }

    /// The first product of a shape runs on every candidate set from the same C (C is put back
    /// between runs, so an accumulating product adds once), then the shape keeps its set.
    #[test]
    fn a_measured_shape_gives_the_bits_of_its_set_and_is_remembered() {
        let (m, n, k) = (5, 77, 19); // a shape no other test multiplies
        let (a, b, c0) = (values(m * k, 0.41), values(k * n, 0.67), values(m * n, 0.23));
        let (shape, merge) = (GemmShape { m, n, k }, Merge::ACCUMULATE);
        let (a_view, b_view) = (MatRef { data: &a, rs: k, cs: 1 }, MatRef { data: &b, rs: n, cs: 1 });
        let mut got = c0.clone();
        gemm(shape, a_view, BSource::Strided(b_view), merge, MatMut { data: &mut got, rs: n, cs: 1 }, 2);
        let mut want = c0.clone();
        gemm_on(
            Isa::selected(),
            shape,
            a_view,
            BSource::Strided(b_view),
            merge,
            MatMut { data: &mut want, rs: n, cs: 1 },
            2,
        );
        assert_eq!(got, want);
        let key = ShapeKey { m, n, k, threads: 2, packed: false };
        let chosen = tuning::chosen(key).expect("measured by the first product");
        if tuning::candidates().is_empty() {
            assert_eq!(chosen, Isa::selected());
        } else {
            assert!(tuning::candidates().contains(&chosen));
        }
    }

    #[test]
    #[should_panic(expected = "needs")]
    fn a_packed_b_of_the_wrong_shape_is_refused() {
        let packed = PackedB::new(3, 4, &[0.0; 12], 4, 1);
        let mut c = vec![0.0; 8];
        let a = MatRef { data: &[0.0; 4], rs: 2, cs: 1 };
        let c = MatMut { data: &mut c, rs: 4, cs: 1 };
        gemm(GemmShape { m: 2, n: 4, k: 2 }, a, BSource::Packed(&packed), Merge::OVERWRITE, c, 1);
    }
}
