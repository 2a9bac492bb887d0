//! The precision of a model's weights at inference: `f32` (the trained values, [`PackedB`]),
//! `bf16` ([`Bf16Matrix`]: the upper half of each f32, f32 arithmetic) or `int8`
//! ([`Int8Matrix`]: a byte per weight and a scale per output unit, integer products). Chosen
//! when a model is loaded for generation or serving; training always runs in f32.
//!
//! [`WeightMatrix`] is a weight matrix packed at one of them, and [`PackedOperand`] is what the
//! recurrent steps and the output layer need of it: `out [R, n] ← a [R, k] · W + beta · out`.
//! Both reduced-precision matrices store columns in panels of [`PANEL`] = 16 and split a product
//! over threads by whole panels ([`split_panels`]), then cover each thread's part by tiles
//! ([`for_each_tile`]), as the f32 GEMM does.

use super::bf16::Bf16Matrix;
use super::gemm::{GemmShape, MatMut, MatRef, Merge};
use super::int8::Int8Matrix;
use super::packed::{self, BSource, PackedB};
use crate::error::{Error, Result};
use std::ops::Range;

/// A `KernelTable { row, tiles }` of the const-generic kernel `$tile::<ROWS, PANELS>`: one row
/// across 1–8 panels, 2–6 rows across 1–4 panels (the int8 and bf16 kernels).
macro_rules! kernel_table {
    ($tile:ident) => {
        KernelTable {
            row: [
                $tile::<1, 1>,
                $tile::<1, 2>,
                $tile::<1, 3>,
                $tile::<1, 4>,
                $tile::<1, 5>,
                $tile::<1, 6>,
                $tile::<1, 7>,
                $tile::<1, 8>,
            ],
            tiles: [
                [$tile::<2, 1>, $tile::<2, 2>, $tile::<2, 3>, $tile::<2, 4>],
                [$tile::<3, 1>, $tile::<3, 2>, $tile::<3, 3>, $tile::<3, 4>],
                [$tile::<4, 1>, $tile::<4, 2>, $tile::<4, 3>, $tile::<4, 4>],
                [$tile::<5, 1>, $tile::<5, 2>, $tile::<5, 3>, $tile::<5, 4>],
                [$tile::<6, 1>, $tile::<6, 2>, $tile::<6, 3>, $tile::<6, 4>],
            ],
        }
    };
}

/// The kernels of one instruction set for every tile shape: 1 row × 1–8 panels, 2–6 rows × 1–4
/// panels (each a const-generic instance, see `kernel_table!`).
pub(super) struct KernelTable<K> {
    pub(super) row: [K; 8],
    pub(super) tiles: [[K; 4]; 5],
}

impl<K: Copy> KernelTable<K> {
    /// The kernel of a tile of `rows` rows × `panels` panels.
    pub(super) fn get(&self, rows: usize, panels: usize) -> K {
        if rows == 1 {
            self.row[panels - 1]
        } else {
            self.tiles[rows - 2][panels - 1]
        }
    }
}

/// Panels per tile of `rows` rows: the AVX2 kernels (16 ymm registers, 8 lanes) hold 4 panels of
/// one row or 1 panel of several; the others (AVX-512's 32 zmm registers, and the portable
/// loops) 8 of one row or 4 of several.
pub(super) fn max_panels(avx2: bool, rows: usize) -> usize {
    match (avx2, rows) {
        (true, 1) => 4,
        (true, _) => 1,
        (false, 1) => 8,
        (false, _) => 4,
    }
}

/// Columns of a panel of a reduced-precision matrix (one zmm register of f32 or i32 lanes).
pub const PANEL: usize = 16;

/// The precision of the weights at inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    F32,
    Bf16,
    Int8,
}

impl Precision {
    /// Every precision, in the order the error messages list them.
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::Bf16, Precision::Int8];

    /// The name the API uses (`'f32'`, `'bf16'`, `'int8'`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        }
    }

    /// The precision called `name`; anything else is a range error naming the choices.
    pub fn parse(name: &str) -> Result<Precision> {
        Precision::ALL.into_iter().find(|p| p.name() == name).ok_or_else(|| {
            let names: Vec<String> = Precision::ALL.iter().map(|p| format!("\"{}\"", p.name())).collect();
            Error::Range(format!("precision: expected one of {}, got {name:?}", names.join(", ")))
        })
    }
}

/// A right-hand operand `W [k, n]` packed for repeated products.
pub trait PackedOperand: Sync {
    /// Depth (rows of W).
    fn k(&self) -> usize;
    /// Width (columns of W).
    fn n(&self) -> usize;
    /// `out [rows, n] ← a [rows, k] · W + beta · out` (all row-major; `beta == 0`: `out` is not
    /// read), on up to `threads` threads, with results that do not depend on the thread count.
    fn multiply(&self, rows: usize, a: &[f32], beta: f32, out: &mut [f32], threads: usize);
}

impl PackedOperand for PackedB {
    fn k(&self) -> usize {
        PackedB::k(self)
    }

    fn n(&self) -> usize {
        PackedB::n(self)
    }

    fn multiply(&self, rows: usize, a: &[f32], beta: f32, out: &mut [f32], threads: usize) {
        let (k, n) = (self.k(), self.n());
        let (a, c) = (MatRef { data: a, rs: k, cs: 1 }, MatMut { data: out, rs: n, cs: 1 });
        packed::gemm(GemmShape { m: rows, n, k }, a, BSource::Packed(self), Merge { alpha: 1.0, beta }, c, threads);
    }
}

/// A weight matrix `W [k, n]` packed at a [`Precision`].
#[derive(Debug, Clone)]
pub enum WeightMatrix {
    F32(PackedB),
    Bf16(Bf16Matrix),
    Int8(Int8Matrix),
}

impl Default for WeightMatrix {
    fn default() -> Self {
        WeightMatrix::F32(PackedB::default())
    }
}

impl WeightMatrix {
    /// Packs `B [k, n]` (element (p, j) at `b[p·rsb + j·csb]`) at `precision`.
    pub fn new(precision: Precision, k: usize, n: usize, b: &[f32], rsb: usize, csb: usize) -> Result<Self> {
        Ok(match precision {
            Precision::F32 => WeightMatrix::F32(PackedB::new(k, n, b, rsb, csb)),
            Precision::Bf16 => WeightMatrix::Bf16(Bf16Matrix::new(k, n, b, rsb, csb)),
            Precision::Int8 => WeightMatrix::Int8(Int8Matrix::new(k, n, b, rsb, csb)?),
        })
    }

    /// The precision it is stored at.
    pub fn precision(&self) -> Precision {
        match self {
            WeightMatrix::F32(_) => Precision::F32,
            WeightMatrix::Bf16(_) => Precision::Bf16,
            WeightMatrix::Int8(_) => Precision::Int8,
        }
    }

    /// Bytes of packed weights (panels, scales and sums; padding included).
    pub fn bytes(&self) -> usize {
        match self {
            WeightMatrix::F32(m) => m.k() * m.n().div_ceil(super::microkernel::NR) * super::microkernel::NR * 4,
            WeightMatrix::Bf16(m) => m.bytes(),
            WeightMatrix::Int8(m) => m.bytes(),
        }
    }
}

impl PackedOperand for WeightMatrix {
    fn k(&self) -> usize {
        match self {
            WeightMatrix::F32(m) => m.k(),
            WeightMatrix::Bf16(m) => m.k(),
            WeightMatrix::Int8(m) => m.k(),
        }
    }

    fn n(&self) -> usize {
        match self {
            WeightMatrix::F32(m) => m.n(),
            WeightMatrix::Bf16(m) => m.n(),
            WeightMatrix::Int8(m) => m.n(),
        }
    }

    fn multiply(&self, rows: usize, a: &[f32], beta: f32, out: &mut [f32], threads: usize) {
        match self {
            WeightMatrix::F32(m) => PackedOperand::multiply(m, rows, a, beta, out, threads),
            WeightMatrix::Bf16(m) => m.multiply(rows, a, beta, out, threads),
            WeightMatrix::Int8(m) => m.multiply(rows, a, beta, out, threads),
        }
    }
}

/// `out`, written by several threads at once, each at its own columns.
#[derive(Clone, Copy)]
pub(super) struct SharedOut(pub *mut f32);

impl SharedOut {
    /// Element `offset` (a method, so that closures capture the whole `SharedOut`).
    ///
    /// # Safety
    /// `offset` must be inside `out`, in the caller's columns.
    pub(super) unsafe fn at(self, offset: usize) -> *mut f32 {
        self.0.add(offset)
    }
}
// SAFETY: `split_panels` hands each thread a disjoint range of columns, and every writer stays
// inside its own (see the callers).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// Where a reduced-precision kernel merges its tile: C at the tile's first row and column (rows
/// `ldc` apart), its first `cols` columns, as `C ← value` (beta 0: C is not read) or
/// `C ← value + beta · C`, a multiply then an add, never fused, in every kernel set (so the bits
/// agree between them).
#[derive(Clone, Copy)]
pub(super) struct TileDst {
    pub(super) c: *mut f32,
    pub(super) ldc: usize,
    pub(super) cols: usize,
    pub(super) beta: f32,
}

impl TileDst {
    /// The same rows from column `cols` on (`cols` ≤ `self.cols`).
    ///
    /// # Safety
    /// As [`pointer::add`]: the columns skipped are inside C.
    unsafe fn columns_from(self, cols: usize) -> TileDst {
        TileDst { c: self.c.add(cols), cols: self.cols - cols, ..self }
    }

    /// Merges `values` into row `r`'s first `cols` columns, as slice loops the compiler
    /// vectorises.
    ///
    /// # Safety
    /// Row r's `cols` columns must be inside C and written by this caller only.
    pub(super) unsafe fn merge(self, r: usize, values: impl Iterator<Item = f32>) {
        let dst = std::slice::from_raw_parts_mut(self.c.add(r * self.ldc), self.cols);
        if self.beta == 0.0 {
            dst.iter_mut().zip(values).for_each(|(d, v)| *d = v);
        } else {
            dst.iter_mut().zip(values).for_each(|(d, v)| *d = v + self.beta * *d);
        }
    }

    /// Merges row `r`'s values held as vectors of 8 columns (`values[v]`: columns 8v..8v + 8,
    /// those past `cols` ignored), a vector at a time, and the columns of a last partial vector
    /// through [`merge`](Self::merge): the same operations, so the same bits.
    ///
    /// # Safety
    /// As [`merge`](Self::merge); the CPU must support AVX.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn merge_vectors(self, r: usize, values: &[std::arch::x86_64::__m256]) {
        use std::arch::x86_64::*;
        let full = (self.cols / 8).min(values.len());
        for (v, &value) in values[..full].iter().enumerate() {
            let dst = self.c.add(r * self.ldc + v * 8);
            let merged = if self.beta == 0.0 {
                value
            } else {
                _mm256_add_ps(value, _mm256_mul_ps(_mm256_set1_ps(self.beta), _mm256_loadu_ps(dst)))
            };
            _mm256_storeu_ps(dst, merged);
        }
        if full < values.len() && full * 8 < self.cols {
            let mut spilled = [0.0f32; 8];
            _mm256_storeu_ps(spilled.as_mut_ptr(), values[full]);
            self.columns_from(full * 8).merge(r, spilled.into_iter());
        }
    }
}

/// Runs `part(panels)` for consecutive ranges of whole panels covering `0..panels`, one range
/// per thread: as many threads as `threads` allows and `work` (multiply-adds) is worth.
pub(super) fn split_panels(panels: usize, work: usize, threads: usize, part: impl Fn(Range<usize>) + Sync) {
    split_panels_into(panels, split_parts(panels, work, threads), part)
}

/// How many threads' parts [`split_panels`] makes of `panels` panels and `work` multiply-adds.
pub(super) fn split_parts(panels: usize, work: usize, threads: usize) -> usize {
    threads.min(panels).min(work / crate::parallel::min_split_work()).max(1)
}

/// Runs `part(panels)` for `parts` (at least 1) consecutive ranges of whole panels covering
/// `0..panels`, each on a thread of its own.
pub(super) fn split_panels_into(panels: usize, parts: usize, part: impl Fn(Range<usize>) + Sync) {
    if parts <= 1 {
        return part(0..panels);
    }
    let per = panels.div_ceil(parts);
    crate::parallel::for_each_index(parts, |i| part(i * per..((i + 1) * per).min(panels)));
}

/// Covers rows `0..rows` × `panels` by tiles of at most `max_rows` rows and `max_panels(rows in
/// the tile)` panels, calling `tile(first row, rows, panel range)`.
pub(super) fn for_each_tile(
    rows: usize,
    panels: Range<usize>,
    max_rows: usize,
    max_panels: impl Fn(usize) -> usize,
    mut tile: impl FnMut(usize, usize, Range<usize>),
) {
    for r0 in (0..rows).step_by(max_rows) {
        let tile_rows = max_rows.min(rows - r0);
        let width = max_panels(tile_rows);
        for p0 in panels.clone().step_by(width) {
            tile(r0, tile_rows, p0..(p0 + width).min(panels.end));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_names_round_trip_and_unknown_names_are_refused() {
        for p in Precision::ALL {
            assert_eq!(Precision::parse(p.name()).unwrap(), p);
        }
        let err = Precision::parse("fp16").unwrap_err();
        assert!(matches!(&err, Error::Range(m) if m.contains("\"int8\"") && m.contains("\"fp16\"")), "{err:?}");
    }

    #[test]
    fn tiles_cover_every_row_and_panel_once() {
        let mut seen = vec![0; 13 * 11];
        for_each_tile(
            13,
            2..13,
            6,
            |r| if r == 1 { 8 } else { 4 },
            |r0, rows, panels| {
                assert!(rows <= 6 && panels.len() <= if rows == 1 { 8 } else { 4 });
                for r in r0..r0 + rows {
                    panels.clone().for_each(|p| seen[r * 11 + p - 2] += 1);
                }
            },
        );
        assert!(seen.iter().all(|&n| n == 1));
    }
}
