//! Per-shape choice of the GEMM's kernel set, by measurement. The AVX-512 and AVX2 sets give the
//! same bits, but neither is faster at every shape: the AVX-512 wide tile wins on the recurrent
//! and gradient products, while a narrow product (batch-64 generation's head, `[64, 256] ·
//! [256, 96]`) measured 25 % faster on AVX2. So, when `RNNKIT_GEMM_KERNELS` names no set and the
//! CPU has AVX-512, the first product of each shape (m, n, k, thread count, B packed or not) runs
//! on both sets, alternately, three times each, and the faster one (by its fastest run) serves
//! that shape for the rest of the process. Naming a set in `RNNKIT_GEMM_KERNELS` turns the choice
//! off, for reproducible timings; results are the same bits either way.

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
pub fn measure(key: ShapeKey, mut run: impl FnMut(Isa, bool)) -> Isa {
    let sets = candidates();
    let mut fastest = vec![f64::INFINITY; sets.len()];
    for round in 0..ROUNDS {
        for (i, &isa) in sets.iter().enumerate() {
            let t0 = Instant::now();
            run(isa, round + i > 0);
            fastest[i] = fastest[i].min(t0.elapsed().as_secs_f64());
        }
    }
    let best = (0..sets.len()).min_by(|&a, &b| fastest[a].total_cmp(&fastest[b])).map_or(Isa::selected(), |i| sets[i]);
    choices().write().unwrap_or_else(PoisonError::into_inner).insert(key, best);
    best
}
