//! `engineInfo()`: what the loaded native engine is and what it can use on this machine.

use napi::Env;
use napi_derive::napi;

use crate::guard::guard_js;
use rnn_core::kernels::int8::Int8Kernels;
use rnn_core::kernels::isa::Isa;

/// Facts about the loaded native engine.
#[napi(object)]
pub struct EngineInfo {
    /// Version of the native binary (the `rnn-node` crate), to spot a stale `.node` file.
    pub version: String,
    /// SIMD instruction sets this CPU offers among those the kernels can use (`avx2`, `fma`,
    /// `avx512f`), detected at run time; empty on other architectures.
    pub simd: Vec<String>,
    /// Threads in the engine's compute pool (`RNNKIT_THREADS` or `setThreads` set it).
    pub threads: u32,
    /// The GEMM kernel set in use: `avx512`, `avx2` or `portable`, the best this CPU runs unless
    /// `RNNKIT_GEMM_KERNELS` names another (AVX-512 and AVX2 give bit-identical results).
    pub gemm_kernels: String,
    /// The kernels of int8 products (`precision: 'int8'`): `avx512vnni`, `avx2` or `portable`,
    /// following the GEMM's set (all three give the same bits).
    pub int8_kernels: String,
}

/// Describes the native engine: its version, the SIMD features detected on this CPU, the size of
/// its thread pool and its GEMM kernel set. Refuses (RangeError) when `RNNKIT_GEMM_KERNELS` names
/// an unknown set or one this CPU cannot run.
#[napi]
pub fn engine_info(env: Env) -> napi::Result<EngineInfo> {
    guard_js(&env, || {
        if let Some(why) = Isa::request_error() {
            return Err(crate::errors::NodeError::with_kind(
                crate::errors::JsKind::RangeError,
                "ERR_RNNKIT_RANGE",
                why.to_owned(),
            ));
        }
        Ok(EngineInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            simd: simd_features().into_iter().map(str::to_owned).collect(),
            threads: u32::try_from(rnn_core::parallel::threads()).unwrap_or(u32::MAX),
            gemm_kernels: Isa::selected().name().to_owned(),
            int8_kernels: Int8Kernels::for_isa(Isa::selected()).name().to_owned(),
        })
    })
}

/// Sets the number of compute threads for work started afterwards (0 = the default: one per
/// core, or `RNNKIT_THREADS`). Results are bit-identical for a fixed thread count.
#[napi]
pub fn set_threads(env: Env, n: u32) -> napi::Result<()> {
    guard_js(&env, || {
        if n > 1024 {
            return Err(crate::errors::NodeError::with_kind(
                crate::errors::JsKind::RangeError,
                "ERR_RNNKIT_RANGE",
                format!("threads: expected an integer in [0, 1024], got {n}"),
            ));
        }
        rnn_core::parallel::set_threads(n as usize);
        Ok(())
    })
}

/// Run-time detection, not compile-time `cfg(target_feature)`: published binaries are built for
/// the baseline CPU and pick faster kernels on the machine they run on.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn simd_features() -> Vec<&'static str> {
    let mut found = Vec::new();
    if std::is_x86_feature_detected!("avx2") {
        found.push("avx2");
    }
    if std::is_x86_feature_detected!("fma") {
        found.push("fma");
    }
    if std::is_x86_feature_detected!("avx512f") {
        found.push("avx512f");
    }
    found
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn simd_features() -> Vec<&'static str> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn simd_list_matches_cpuid() {
        let found = super::simd_features();
        assert_eq!(found.contains(&"avx2"), std::is_x86_feature_detected!("avx2"));
        assert_eq!(found.contains(&"fma"), std::is_x86_feature_detected!("fma"));
        assert_eq!(found.contains(&"avx512f"), std::is_x86_feature_detected!("avx512f"));
    }
}
