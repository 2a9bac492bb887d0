//! Per-shape choice of the GEMM's kernel set, by measurement. The AVX-512 and AVX2 sets give the
//! same bits, but neither is faster at every shape: the AVX-512 wide tile wins on the recurrent
//! and gradient products, while a narrow product (batch-64 generation's head, `[64, 256] ·
//! [256, 96]`) measured 25 % faster on AVX2. So, when `RNNKIT_GEMM_KERNELS` names no set and the
//! CPU has AVX-512, the first product of each shape (m, n, k, thread count, B packed or not) runs
//! on both sets, alternately, three times each, and the faster one (by its fastest run) serves
//! that shape for the rest of the process. Naming a set in `RNNKIT_GEMM_KERNELS` turns the choice
//! off, for reproducible timings; results are the same bits either way.
//!
//! The same measurement chooses how many threads a few-rows int8 product (a batch-1 step) splits
//! its columns over, where the kernels' count of byte multiply-adds per FMA and f32's count
//! disagree: with the VNNI kernels a [1×256]·[256×1024] product split over 2 threads measured
//! slower on a Xeon and, on a Zen 4 host, a quarter faster in some processes and 6 % slower in
//! others. The split gives the same bits; `RNNKIT_GEMM_KERNELS` naming a set turns this choice
//! off too (the kernels' count decides).

use super::int8::Int8Kernels;
use super::isa::Isa;
use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Instant;

/// What a product's choice depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShapeKey {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub threads: usize,
    pub packed: bool,
}

/// Runs of each candidate set when a shape is measured.
const ROUNDS: usize = 3;

/// Read on every product (a shared lock: the threads of a parallel region look up at once).
fn choices() -> &'static RwLock<HashMap<ShapeKey, Isa>> {
    static CHOICES: OnceLock<RwLock<HashMap<ShapeKey, Isa>>> = OnceLock::new();
    CHOICES.get_or_init(|| RwLock::new(HashMap::new()))
}

/// The sets a shape is measured on: AVX-512 and AVX2 when the choice is on, else none.
pub fn candidates() -> &'static [Isa] {
    static CANDIDATES: OnceLock<Vec<Isa>> = OnceLock::new();
    CANDIDATES.get_or_init(|| {
        if !Isa::requested() && Isa::selected() == Isa::Avx512 {
            vec![Isa::Avx512, Isa::Avx2]
        } else {
            Vec::new()
        }
    })
}

/// The set that runs `key`'s products: [`Isa::selected`] when the choice is off, the measured
/// one when `key` was measured, None when it is still to be measured.
pub fn chosen(key: ShapeKey) -> Option<Isa> {
    if candidates().is_empty() {
        return Some(Isa::selected());
    }
    choices().read().unwrap_or_else(PoisonError::into_inner).get(&key).copied()
}

/// Measures `run(isa, again)` (one product; `again`: not the first run, so the product's output
/// must first be put back as it was) on every candidate set, [`ROUNDS`] times alternately,
/// records the fastest for `key` and returns it. The last run's output is left in place.
pub fn measure(key: ShapeKey, run: impl FnMut(Isa, bool)) -> Isa {
    let best = fastest(candidates(), run).unwrap_or(Isa::selected());
    choices().write().unwrap_or_else(PoisonError::into_inner).insert(key, best);
    best
}

/// Runs `run(option, again)` for every option, [`ROUNDS`] times alternately, and returns the
/// option of the fastest single run (None without options).
fn fastest<T: Copy>(options: &[T], mut run: impl FnMut(T, bool)) -> Option<T> {
    let mut fastest = vec![f64::INFINITY; options.len()];
    for round in 0..ROUNDS {
        for (i, &option) in options.iter().enumerate() {
            let t0 = Instant::now();
            run(option, round + i > 0);
            fastest[i] = fastest[i].min(t0.elapsed().as_secs_f64());
        }
    }
    (0..options.len()).min_by(|&a, &b| fastest[a].total_cmp(&fastest[b])).map(|i| options[i])
}

/// `run(out, option)`, a product into `out`, as [`measure`] and [`measure_parts`] run it: when the
/// product reads `out` (`beta ≠ 0`), `out` is put back as it was before every run after the
/// first, so that each run starts from the same output.
pub fn from_same_output<'a, T>(
    out: &'a mut [f32],
    beta: f32,
    mut run: impl FnMut(&mut [f32], T) + 'a,
) -> impl FnMut(T, bool) + 'a {
    let saved = if beta == 0.0 { Vec::new() } else { out.to_vec() };
    move |option, again| {
        if again && beta != 0.0 {
            out.copy_from_slice(&saved);
        }
        run(out, option)
    }
}

/// What a few-rows int8 product's split depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SplitKey {
    pub rows: usize,
    pub k: usize,
    pub n: usize,
    pub threads: usize,
    pub kernels: Int8Kernels,
}

/// The measured number of parts per [`SplitKey`].
fn splits() -> &'static RwLock<HashMap<SplitKey, usize>> {
    static SPLITS: OnceLock<RwLock<HashMap<SplitKey, usize>>> = OnceLock::new();
    SPLITS.get_or_init(|| RwLock::new(HashMap::new()))
}

/// How many parts `key`'s product splits its columns into, of `parts` = [by the kernels' count,
/// by f32's count]: the first when they agree or the choice is off, the measured one when `key`
/// was measured, None when it is still to be measured ([`measure_parts`]).
pub fn chosen_parts(key: SplitKey, parts: [usize; 2]) -> Option<usize> {
    if parts[0] == parts[1] || Isa::requested() {
        return Some(parts[0]);
    }
    splits().read().unwrap_or_else(PoisonError::into_inner).get(&key).copied()
}

/// Measures `run(parts, again)` (one product; `again` as for [`measure`]) for both of `parts`,
/// records the faster for `key` and returns it. The last run's output is left in place.
pub fn measure_parts(key: SplitKey, parts: [usize; 2], run: impl FnMut(usize, bool)) -> usize {
    let best = fastest(&parts, run).unwrap_or(parts[0]);
    splits().write().unwrap_or_else(PoisonError::into_inner).insert(key, best);
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_split_is_measured_once_and_the_faster_kept() {
        // A shape no product uses, so that no other test has measured it.
        let key = SplitKey { rows: 3, k: 7, n: 11, threads: 2, kernels: Int8Kernels::Portable };
        assert_eq!(chosen_parts(key, [2, 2]), Some(2), "agreeing counts need no measurement");
        if Isa::requested() {
            assert_eq!(chosen_parts(key, [1, 2]), Some(1), "a named kernel set keeps the kernels' count");
            return;
        }
        assert_eq!(chosen_parts(key, [1, 2]), None);
        let mut runs = Vec::new();
        let best = measure_parts(key, [1, 2], |parts, again| {
            runs.push((parts, again));
            if parts == 1 {
                std::thread::sleep(Duration::from_millis(3));
            }
        });
        assert_eq!(best, 2);
        assert_eq!(runs, [(1, false), (2, true), (1, true), (2, true), (1, true), (2, true)]);
        assert_eq!(chosen_parts(key, [1, 2]), Some(2));
    }
}
