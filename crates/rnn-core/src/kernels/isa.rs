//! Which instruction set the GEMM kernels run on: the best this CPU has, detected once per
//! process, or the one `RNNKIT_GEMM_KERNELS` names (`auto`, `avx512`, `avx2`, `portable`), for
//! reproducible runs and for measuring one set against another.
//!
//! The AVX-512 and AVX2 sets give bit-identical results (every element is the same chain of
//! fused multiply-adds in increasing depth, merged into C by the same operations); the portable
//! set multiplies and adds separately, so its results differ in the last bits.

use std::sync::OnceLock;

/// The name of the environment variable that chooses the kernel set.
pub const ENV_VAR: &str = "RNNKIT_GEMM_KERNELS";

/// A kernel set of the packed GEMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Plain loops the compiler vectorises for the target's baseline (SSE2 on x86-64).
    Portable,
    /// AVX2 + FMA: 6 × 16 tiles in 12 of the 16 ymm registers.
    Avx2,
    /// AVX-512F: tiles of 6 rows across several 16-column panels, in up to 24 of the 32 zmm
    /// registers, with the AVX2 kernels for single rows.
    Avx512,
}

impl Isa {
    /// Every set, best first.
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Portable];

    /// The name `RNNKIT_GEMM_KERNELS` and `engineInfo()` use.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the set (checked at run time: published binaries are built for
    /// the baseline CPU).
    pub fn available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Isa::Avx2.available() && is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => false,
        }
    }

    /// The best set this CPU can run.
    pub fn best() -> Isa {
        Isa::ALL.into_iter().find(|isa| isa.available()).unwrap_or(Isa::Portable)
    }

    /// The set in use: `RNNKIT_GEMM_KERNELS` when it names an available set, else the best.
    /// Read once, on first use.
    pub fn selected() -> Isa {
        selection().0
    }

    /// Whether `RNNKIT_GEMM_KERNELS` names a set (not unset, empty or `auto`): then every
    /// product runs on that set; otherwise [`super::tuning`] may pick, per shape, among the sets
    /// that give the same bits.
    pub fn requested() -> bool {
        static REQUESTED: OnceLock<bool> = OnceLock::new();
        *REQUESTED
            .get_or_init(|| std::env::var(ENV_VAR).ok().is_some_and(|r| !r.trim().is_empty() && r.trim() != "auto"))
    }

    /// Why `RNNKIT_GEMM_KERNELS` was not followed (an unknown name, or a set this CPU lacks), if
    /// it was not. The kernels then run on [`Isa::best`]; the binding turns this into an error.
    pub fn request_error() -> Option<&'static str> {
        selection().1.as_deref()
    }
}

/// The choice for a value of `RNNKIT_GEMM_KERNELS` (None: unset), and why a request was
/// refused.
fn choose(request: Option<&str>) -> (Isa, Option<String>) {
    let best = Isa::best();
    let Some(request) = request.map(str::trim).filter(|r| !r.is_empty() && *r != "auto") else {
        return (best, None);
    };
    let names: Vec<&str> = Isa::ALL.iter().filter(|isa| isa.available()).map(|isa| isa.name()).collect();
    match Isa::ALL.into_iter().find(|isa| isa.name() == request) {
        Some(isa) if isa.available() => (isa, None),
        Some(_) => {
            (best, Some(format!("{ENV_VAR}: this CPU cannot run '{request}'; it can run auto, {}", names.join(", "))))
        }
        None => (best, Some(format!("{ENV_VAR}: expected auto, {}, got '{request}'", names.join(", ")))),
    }
}

fn selection() -> &'static (Isa, Option<String>) {
    static SELECTION: OnceLock<(Isa, Option<String>)> = OnceLock::new();
    SELECTION.get_or_init(|| choose(std::env::var(ENV_VAR).ok().as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_followed_when_the_cpu_can_and_refused_with_a_reason_otherwise() {
        assert_eq!(choose(None), (Isa::best(), None));
        assert_eq!(choose(Some("auto")), (Isa::best(), None));
        assert_eq!(choose(Some(" portable ")), (Isa::Portable, None));
        let (isa, why) = choose(Some("sse9"));
        assert_eq!(isa, Isa::best());
        assert!(why.unwrap().contains("got 'sse9'"));
        for isa in [Isa::Avx2, Isa::Avx512] {
            let (got, why) = choose(Some(isa.name()));
            if isa.available() {
                assert_eq!((got, why), (isa, None));
            } else {
                assert_eq!(got, Isa::best());
                assert!(why.unwrap().contains("cannot run"));
            }
        }
    }
}
