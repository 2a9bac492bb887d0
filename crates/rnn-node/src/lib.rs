//! rnn-node: the Node.js binding of `rnn-core`, built with napi-rs into `rnnkit.<platform>.node`.
//!
//! A thin layer: it converts arguments, runs long work off the JavaScript thread and maps engine
//! errors to JavaScript errors. Every exported function runs inside [`guard`] so that a Rust
//! panic becomes an `ERR_RNNKIT_PANIC` error instead of aborting Node.

pub mod audio;
pub mod dataset;
pub mod defaults;
pub mod errors;
pub mod files;
pub mod generation;
pub mod guard;
pub mod info;
pub mod model;
pub mod model_options;
pub mod options;
pub mod seq2seq;
pub mod snapshot;
pub mod speech;
pub mod train_options;
