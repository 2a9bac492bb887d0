//! `writeFileAtomic`: the engine's atomic file write (`rnn_core::io::write_atomic`: temporary
//! file in the target's directory, fsync, rename, fsync of the directory) for files that
//! TypeScript produces, such as exported ONNX models, so every file rnnkit writes is written
//! the same way.

use std::io::Write;
use std::path::Path;

use napi::bindgen_prelude::Uint8Array;
use napi::Env;
use napi_derive::napi;

use crate::guard::guard_js;

/// Writes `data` to `path` atomically: a failure leaves any previous file untouched.
#[napi]
pub fn write_file_atomic(env: Env, path: String, data: Uint8Array) -> napi::Result<()> {
    guard_js(&env, || Ok(rnn_core::io::write_atomic(Path::new(&path), |f| f.write_all(&data))?))
}
