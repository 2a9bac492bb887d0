//! The panic guard. A Rust panic unwinding into Node's C frames aborts the process, and napi-rs
//! does not catch panics in `Task::compute` (libuv thread) nor in `resolve`. Everything the
//! binding runs goes through [`guard`]: exported functions via [`guard_js`], async work via
//! [`Guarded`], which wraps a [`Work`] into a napi [`Task`] whose every step is guarded.
//!
//! This relies on `panic = "unwind"` (workspace release profile); with `abort` nothing can catch.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use napi::bindgen_prelude::{ToNapiValue, TypeName};
use napi::{Env, Task};

use crate::errors::NodeError;

/// Runs `f`, turning a panic into an `ERR_RNNKIT_PANIC` error carrying the panic message.
///
/// `AssertUnwindSafe`: a panic can leave whatever `f` borrowed half-updated. That is acceptable
/// for state owned by the failed call; callers that keep state across calls (model handles) must
/// treat it as poisoned after an `ERR_RNNKIT_PANIC`. Work on threads of our own (a training
/// thread, the rayon pool) goes through `guard` too.
pub fn guard<T>(f: impl FnOnce() -> Result<T, NodeError>) -> Result<T, NodeError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| Err(NodeError::panic(&panic_message(&*payload))))
}

/// [`guard`] for a function exported to JavaScript: errors become JS errors of the right class
/// with their `code` (see [`NodeError::into_napi`]).
pub fn guard_js<T>(env: &Env, f: impl FnOnce() -> Result<T, NodeError>) -> napi::Result<T> {
    guard(f).map_err(|e| e.into_napi(env))
}

/// The text of a panic payload: `panic!` gives a `&str` or a `String`; anything else is opaque.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}

/// Work that runs off the JavaScript thread. Implement this (not napi's `Task`) and export
/// `AsyncTask<Guarded<YourWork>>`, so no step can panic into Node.
pub trait Work: Send + Sized {
    /// What `compute` produces on the worker thread.
    type Output: Send + 'static;
    /// What the promise resolves to.
    type JsValue: ToNapiValue + TypeName;
    /// The heavy part, on a libuv worker thread: no JS access here.
    fn compute(&mut self) -> Result<Self::Output, NodeError>;
    /// Converts the output on the JavaScript thread.
    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue>;
}

/// A [`Work`] as a napi [`Task`] with `compute` and `resolve` guarded. Engine errors reach
/// `resolve` as data (a `napi::Error` built off-thread could not carry the JS class) and are
/// turned into JS errors there, on the JavaScript thread.
pub struct Guarded<W>(pub W);

impl<W: Work> Task for Guarded<W> {
    type Output = Result<W::Output, NodeError>;
    type JsValue = W::JsValue;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(guard(|| self.0.compute()))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        let work = &mut self.0;
        match guard(|| output.map(|value| work.resolve(env, value))) {
            Ok(converted) => converted,
            Err(err) => Err(err.into_napi(&env)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::{JsKind, PANIC_CODE};

    #[test]
    fn guard_passes_values_and_errors_through() {
        assert_eq!(guard(|| Ok(41 + 1)), Ok(42));
        let err = NodeError::from(rnn_core::Error::Range("n: got -1".into()));
        assert_eq!(guard::<()>(|| Err(err.clone())), Err(err));
    }

    #[test]
    fn guard_turns_str_and_string_panics_into_panic_errors() {
        let e = guard::<()>(|| panic!("static message")).unwrap_err();
        assert_eq!((e.kind, e.code), (JsKind::Error, PANIC_CODE));
        assert!(e.message.ends_with("static message"), "{}", e.message);

        let index = 9;
        let e = guard::<()>(|| panic!("index {index} out of bounds")).unwrap_err();
        assert!(e.message.ends_with("index 9 out of bounds"), "{}", e.message);

        let e = guard::<()>(|| std::panic::panic_any(17u32)).unwrap_err();
        assert!(e.message.ends_with("a panic with a non-text payload"), "{}", e.message);
    }

    /// A work item whose compute panics, as an engine bug would on a libuv thread.
    struct Panics;
    impl Work for Panics {
        type Output = u32;
        type JsValue = u32;
        fn compute(&mut self) -> Result<u32, NodeError> {
            let v: Vec<u32> = Vec::new();
            Ok(v[3])
        }
        fn resolve(&mut self, _env: Env, output: u32) -> napi::Result<u32> {
            Ok(output)
        }
    }

    #[test]
    fn guarded_task_compute_returns_the_panic_as_data() {
        let out = Task::compute(&mut Guarded(Panics)).expect("compute itself never fails");
        let e = out.unwrap_err();
        assert_eq!(e.code, PANIC_CODE);
        assert!(e.message.contains("index out of bounds"), "{}", e.message);
    }
}
