//! rnn-core: recurrent neural networks (Elman RNN, LSTM, GRU) with hand-derived backpropagation
//! through time, losses, optimizers and safetensors model files. No Node.js dependency: the npm
//! package's binding (`crates/rnn-node`) is a thin layer over this crate.
//!
//! Layout conventions used throughout:
//! - Weights follow PyTorch (`weight_ih_l{k}` is `[G·H, in]`, row-major, gate blocks stacked).
//! - Sequences inside the engine are **time-major** `[T, B, X]` so each step's slice is contiguous;
//!   the public model API takes batch-first `[B, T, X]` and converts once at the boundary.

pub mod alphabet;
pub mod audio;
pub mod batch;
pub mod beam;
pub mod cell;
pub mod checkpoint;
pub mod clip;
pub mod config;
pub mod ctc;
pub mod ctc_decode;
pub mod defaults;
pub mod error;
pub mod ids;
pub mod import;
pub mod init;
pub mod io;
pub mod kernels;
pub mod layer;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod pairs;
pub mod parallel;
pub mod params;
pub mod rng;
pub mod sample;
pub mod split;
pub mod state_cache;
pub mod token_store;
pub mod train;
pub mod trainable;

pub use error::{Error, Result};
