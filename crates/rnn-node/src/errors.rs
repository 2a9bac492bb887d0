//! Engine errors as JavaScript errors.
//!
//! napi-rs v3 can set both the class and the `code` natively: `napi_create_type_error` (and its
//! range/plain siblings) take a `code` argument, and a `napi::Error` made from a JS value keeps a
//! reference to that exact object, which napi-rs then throws (sync functions) or rejects with
//! (async tasks) unchanged. So no TypeScript-side conversion is needed: the thrown value already
//! is a `TypeError`/`RangeError`/`Error` with `code` set.
//!
//! [`NodeError`] is the plain-data form used before a JS environment is at hand (worker threads,
//! panics); [`NodeError::into_napi`] turns it into the JS object on the JavaScript thread.

use napi::bindgen_prelude::{JsObjectValue, Object};
use napi::{Env, JsError, JsRangeError, JsTypeError};

/// Which JavaScript error class to throw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsKind {
    /// `Error`: bad files, failed training, internal failures.
    Error,
    /// `TypeError`: wrong shape, type or configuration.
    TypeError,
    /// `RangeError`: a number or size out of range, a non-finite value.
    RangeError,
}

/// A JavaScript error described in plain data: `Send`, so it can be built on any thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeError {
    /// The JavaScript class to throw.
    pub kind: JsKind,
    /// The stable `code` property, e.g. `ERR_RNNKIT_SHAPE`.
    pub code: &'static str,
    /// The message, naming the argument, the expected and the actual value.
    pub message: String,
    /// The offending parameter (`options.batchSize`, `prompt`), set as the error's `param`
    /// property so callers (the CLI) can map it to their own names without parsing messages.
    pub param: Option<String>,
}

/// Code of the error that replaces a Rust panic.
pub const PANIC_CODE: &str = "ERR_RNNKIT_PANIC";

impl NodeError {
    /// The error thrown in place of a Rust panic: a bug in rnnkit, never the caller's fault.
    pub fn panic(detail: &str) -> Self {
        NodeError {
            kind: JsKind::Error,
            code: PANIC_CODE,
            message: format!("internal error in rnnkit (please report it): {detail}"),
            param: None,
        }
    }

    /// A `TypeError` with `code`; `param` is the argument the message starts with.
    pub fn type_error(code: &'static str, message: String) -> Self {
        Self::with_kind(JsKind::TypeError, code, message)
    }

    /// A `RangeError` with `code`; `param` is the argument the message starts with.
    pub fn range_error(code: &'static str, message: String) -> Self {
        Self::with_kind(JsKind::RangeError, code, message)
    }

    /// An `Error` of class `kind` with `code`; `param` from the message's leading argument.
    pub fn with_kind(kind: JsKind, code: &'static str, message: String) -> Self {
        let param = rnn_core::error::leading_param(&message).map(str::to_owned);
        NodeError { kind, code, message, param }
    }

    /// Builds the JavaScript error object (right class, `code` set) and wraps it so that
    /// napi-rs throws or rejects with that very object. Must run on the JavaScript thread.
    pub fn into_napi(self, env: &Env) -> napi::Error {
        let raw = napi::Error::new(self.code, self.message);
        let value = match self.kind {
            JsKind::Error => JsError::from(raw).into_unknown(*env),
            JsKind::TypeError => JsTypeError::from(raw).into_unknown(*env),
            JsKind::RangeError => JsRangeError::from(raw).into_unknown(*env),
        };
        if let Some(param) = self.param {
            // Best effort: an error object that refuses a property is still the right error.
            if let Ok(mut object) = unsafe { value.cast::<Object>() } {
                let _ = object.set_named_property("param", param);
            }
        }
        napi::Error::from(value)
    }
}

impl From<rnn_core::Error> for NodeError {
    fn from(err: rnn_core::Error) -> Self {
        let kind = match err.js_kind() {
            "TypeError" => JsKind::TypeError,
            "RangeError" => JsKind::RangeError,
            _ => JsKind::Error,
        };
        NodeError { kind, code: err.code(), param: err.param().map(str::to_owned), message: err.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_keep_class_code_and_message() {
        let cases = [
            (rnn_core::Error::Shape("x: expected length 3, got 2".into()), JsKind::TypeError, "ERR_RNNKIT_SHAPE"),
            (rnn_core::Error::Config("cell: bad".into()), JsKind::TypeError, "ERR_RNNKIT_CONFIG"),
            (rnn_core::Error::Range("lr: got -1".into()), JsKind::RangeError, "ERR_RNNKIT_RANGE"),
            (rnn_core::Error::NonFinite("x: NaN".into()), JsKind::RangeError, "ERR_RNNKIT_NON_FINITE"),
            (rnn_core::Error::Format("not safetensors".into()), JsKind::Error, "ERR_RNNKIT_FORMAT"),
            (rnn_core::Error::LossNotFinite { step: 7, value: f64::NAN }, JsKind::Error, "ERR_RNNKIT_LOSS_NOT_FINITE"),
            (rnn_core::Error::Aborted, JsKind::Error, "ABORT_ERR"),
        ];
        for (err, kind, code) in cases {
            let message = err.to_string();
            let param = err.param().map(str::to_owned);
            let mapped = NodeError::from(err);
            assert_eq!(mapped, NodeError { kind, code, message, param });
        }
    }
}
