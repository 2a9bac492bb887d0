//! Numeric kernels: the single GEMM entry point and the fused gate nonlinearities.
//!
//! Everything that multiplies matrices goes through [`gemm::sgemm`] so a faster implementation
//! (threaded, or a BLAS) can be swapped in at one place.

#[macro_use]
pub mod precision;
pub mod activations;
pub mod bf16;
pub mod gemm;
pub mod int8;
pub mod isa;
pub mod microkernel;
pub mod packed;
pub mod tuning;
