//! Tells the tests which instruction sets the building machine's CPU has (`rnnkit_host_avx2`,
//! `rnnkit_host_avx512`, `rnnkit_host_avx512vnni`), so that a test of kernels this CPU cannot run is reported as ignored,
//! with the reason, instead of passing without having run. Cross builds set neither.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(rnnkit_host_avx2)");
    println!("cargo::rustc-check-cfg=cfg(rnnkit_host_avx512)");
    println!("cargo::rustc-check-cfg=cfg(rnnkit_host_avx512vnni)");
    let native = std::env::var("HOST").ok() == std::env::var("TARGET").ok();
    #[cfg(target_arch = "x86_64")]
    if native {
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        if avx2 {
            println!("cargo::rustc-cfg=rnnkit_host_avx2");
        }
        if avx2 && is_x86_feature_detected!("avx512f") {
            println!("cargo::rustc-cfg=rnnkit_host_avx512");
            if is_x86_feature_detected!("avx512vnni") {
                println!("cargo::rustc-cfg=rnnkit_host_avx512vnni");
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = native;
}
