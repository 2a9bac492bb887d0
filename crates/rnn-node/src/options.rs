//! Option objects crossing the binding: typed `#[napi(object)]` structs, read through
//! [`Strict`], which refuses keys the struct does not have before napi-rs converts it.
//!
//! napi-rs ignores unknown properties when it converts a JS object into a `#[napi(object)]`
//! struct, so a misspelt option (`max_tokens` for `maxTokens`) would silently do nothing.
//! [`Strict`] lists the object's own enumerable keys first and refuses any that is not a field,
//! naming the parameter (`options.max_tokens`) and the closest field ("did you mean
//! `maxTokens`?"). Values are then validated once, in the engine (`TrainOptions::validate`,
//! `SamplerConfig::validate`, ...), never again in TypeScript.

use std::ffi::CString;

use napi::bindgen_prelude::{FromNapiValue, TypeName, ValidateNapiValue};
use napi::{sys, Env, ValueType};

use crate::errors::{JsKind, NodeError};

/// A `#[napi(object)]` struct read strictly: its JS field names and how errors name it.
pub trait StrictObject {
    /// How errors name the whole object, e.g. `options` or `options.optimizer`.
    const PARAM: &'static str;
    /// The JavaScript (camelCase) names of the fields.
    const FIELDS: &'static [&'static str];
    /// Keys the caller handles itself (e.g. `signal`, `onProgress`); refused if they reach the
    /// engine, but offered as suggestions.
    const CALLER_FIELDS: &'static [&'static str] = &[];
}

/// `T`, converted from a JS object only when every key of the object is one of `T::FIELDS`.
pub struct Strict<T>(pub T);

/// The closest known name to `key` (Jaro–Winkler similarity from `strsim`), when close enough
/// to be a likely misspelling.
pub fn did_you_mean<'a>(key: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let folded = key.to_ascii_lowercase().replace('_', "");
    known
        .into_iter()
        .map(|k| (k, strsim::jaro_winkler(&folded, &k.to_ascii_lowercase())))
        .filter(|&(_, score)| score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
}

/// The error for an unknown key `key` of the object `param`.
pub fn unknown_key(param: &str, key: &str, known: &[&str], caller: &[&str]) -> NodeError {
    let suggestion = did_you_mean(key, known.iter().chain(caller).copied());
    let hint = match suggestion {
        Some(s) => format!("; did you mean \"{s}\"?"),
        None => String::new(),
    };
    let mut all: Vec<&str> = known.iter().chain(caller).copied().collect();
    all.sort_unstable();
    NodeError {
        kind: JsKind::TypeError,
        code: "ERR_RNNKIT_UNKNOWN_OPTION",
        message: format!("{param}.{key}: unknown option{hint} (known: {})", all.join(", ")),
        param: Some(format!("{param}.{key}")),
    }
}

/// The enumerable string keys of the JS object `value`.
///
/// # Safety
/// `env` and `value` must be valid handles of the current call.
unsafe fn own_keys(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Vec<String>> {
    let mut names = std::ptr::null_mut();
    // Enumerable string keys (own and inherited; option objects are plain literals).
    let status = unsafe { sys::napi_get_property_names(env, value, &mut names) };
    if status != sys::Status::napi_ok {
        return Err(napi::Error::from_reason("could not list the keys of an options object"));
    }
    unsafe { Vec::<String>::from_napi_value(env, names) }
}

/// Keys whose value is `undefined` are treated as absent (as TypeScript's optional fields are).
///
/// # Safety
/// As for [`own_keys`].
unsafe fn is_undefined_property(env: sys::napi_env, value: sys::napi_value, key: &str) -> bool {
    let Ok(name) = CString::new(key) else { return false };
    let mut prop = std::ptr::null_mut();
    if unsafe { sys::napi_get_named_property(env, value, name.as_ptr(), &mut prop) } != sys::Status::napi_ok {
        return false;
    }
    let mut kind = 0;
    let status = unsafe { sys::napi_typeof(env, prop, &mut kind) };
    status == sys::Status::napi_ok && kind == sys::ValueType::napi_undefined
}

/// Turns a plain-data error into the napi error that throws it (class, `code`, `param`).
fn thrown(env: sys::napi_env, e: NodeError) -> napi::Error {
    e.into_napi(&Env::from_raw(env))
}

/// Whether `reason` is that of an error already thrown for a field of the object `param`
/// (`TypeError: options.optimizer.lr: ...`): a nested strict object's own error.
fn nested_error(reason: &str, param: &str) -> bool {
    ["TypeError: ", "RangeError: ", "Error: "]
        .iter()
        .any(|class| reason.strip_prefix(class).is_some_and(|m| m.starts_with(&format!("{param}."))))
}

impl<T: FromNapiValue + StrictObject> FromNapiValue for Strict<T> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        let mut kind = 0;
        unsafe { sys::napi_typeof(env, value, &mut kind) };
        let is_array = {
            let mut result = false;
            unsafe { sys::napi_is_array(env, value, &mut result) };
            result
        };
        if kind != sys::ValueType::napi_object || is_array {
            let got = match ValueType::from(kind) {
                ValueType::Object if is_array => "an array".to_string(),
                ValueType::Null => "null".to_string(),
                other => format!("a {}", format!("{other}").to_lowercase()),
            };
            return Err(thrown(
                env,
                NodeError {
                    kind: JsKind::TypeError,
                    code: "ERR_RNNKIT_TYPE",
                    message: format!("{}: expected an object, got {got}", T::PARAM),
                    param: Some(T::PARAM.to_string()),
                },
            ));
        }
        for key in unsafe { own_keys(env, value)? } {
            if !T::FIELDS.contains(&key.as_str()) && !unsafe { is_undefined_property(env, value, &key) } {
                return Err(thrown(env, unknown_key(T::PARAM, &key, T::FIELDS, T::CALLER_FIELDS)));
            }
        }
        unsafe { T::from_napi_value(env, value) }.map(Strict).map_err(|e| {
            // A nested strict object's error (`options.optimizer.lr: ...`) is already the error
            // object to throw, carried by `e`: napi-rs only appended the field to its reason.
            if nested_error(&e.reason, T::PARAM) {
                return e;
            }
            // napi-rs names the struct and field ("... on FitOptions.batchSize"); keep its
            // wording but give it our class, code and parameter.
            let reason = e.reason.clone();
            let field = T::FIELDS.iter().find(|f| reason.contains(&format!(".{f}"))).copied();
            let param = match field {
                Some(f) => format!("{}.{f}", T::PARAM),
                None => T::PARAM.to_string(),
            };
            thrown(
                env,
                NodeError {
                    kind: JsKind::TypeError,
                    code: "ERR_RNNKIT_TYPE",
                    message: format!("{param}: {reason}"),
                    param: Some(param),
                },
            )
        })
    }
}

impl<T: TypeName> TypeName for Strict<T> {
    fn type_name() -> &'static str {
        T::type_name()
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl<T: ValidateNapiValue> ValidateNapiValue for Strict<T> {}

/// Declares the JS field names of a `#[napi(object)]` struct for [`Strict`].
#[macro_export]
macro_rules! strict_object {
    ($ty:ty, $param:literal, [$($field:literal),* $(,)?] $(, caller: [$($caller:literal),* $(,)?])?) => {
        impl $crate::options::StrictObject for $ty {
            const PARAM: &'static str = $param;
            const FIELDS: &'static [&'static str] = &[$($field),*];
            $(const CALLER_FIELDS: &'static [&'static str] = &[$($caller),*];)?
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspellings_find_their_field() {
        let known = ["maxTokens", "temperature", "topK", "topP", "seed"];
        assert_eq!(did_you_mean("max_tokens", known), Some("maxTokens"));
        assert_eq!(did_you_mean("temprature", known), Some("temperature"));
        assert_eq!(did_you_mean("zebra", known), None);
    }

    #[test]
    fn unknown_keys_name_the_parameter() {
        let e = unknown_key("options", "max_tokens", &["maxTokens", "seed"], &["signal"]);
        assert_eq!(e.param.as_deref(), Some("options.max_tokens"));
        assert!(e.message.contains("did you mean \"maxTokens\""), "{}", e.message);
        assert!(e.message.contains("known: maxTokens, seed, signal"), "{}", e.message);
        assert_eq!(e.code, "ERR_RNNKIT_UNKNOWN_OPTION");
    }
}

/// Refuses keys of a JavaScript-side option object (tokenizer, server, save options) that are
/// not in `known`, with the same error, suggestion and `param` as [`Strict`]: one rule for every
/// option object of the library.
#[napi_derive::napi]
pub fn check_option_keys(env: Env, param: String, keys: Vec<String>, known: Vec<String>) -> napi::Result<()> {
    crate::guard::guard_js(&env, || {
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        match keys.iter().find(|k| !known.contains(&k.as_str())) {
            Some(key) => Err(unknown_key(&param, key, &known, &[])),
            None => Ok(()),
        }
    })
}
