//! Errors of the engine. Every user-controllable condition is a `Result`, never a panic.
//!
//! Each variant carries a message that names the argument, the expected and the actual value.
//! The binding maps [`Error::code`] to a stable JavaScript error `code` and [`Error::js_kind`] to
//! the JavaScript error class.

/// The engine's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor or argument has the wrong shape or length (`ERR_RNNKIT_SHAPE`, TypeError).
    #[error("{0}")]
    Shape(String),
    /// A value is out of its allowed range (`ERR_RNNKIT_RANGE`, RangeError).
    #[error("{0}")]
    Range(String),
    /// A value is NaN or infinite where a finite number is required (`ERR_RNNKIT_NON_FINITE`).
    #[error("{0}")]
    NonFinite(String),
    /// A model file is truncated, corrupt, foreign, or of an unknown version (`ERR_RNNKIT_FORMAT`).
    #[error("{0}")]
    Format(String),
    /// A configuration is inconsistent (`ERR_RNNKIT_CONFIG`, TypeError).
    #[error("{0}")]
    Config(String),
    /// Reading or writing a file failed (`ERR_RNNKIT_IO`).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Training stopped because the loss became NaN or infinite (`ERR_RNNKIT_LOSS_NOT_FINITE`).
    #[error("the loss became {value} at step {step}; lower the learning rate or clip gradients")]
    LossNotFinite { step: u64, value: f64 },
    /// A step's update overflowed the weights or the optimizer state; it was undone, so the model
    /// keeps its last finite weights (`ERR_RNNKIT_LOSS_NOT_FINITE`, the same failure one step on).
    #[error(
        "the update of step {step} made the weights {value}; it was undone, the model keeps the weights from before \
         it; lower the learning rate or clip gradients"
    )]
    UpdateNotFinite { step: u64, value: f64 },
    /// Work was cancelled by the caller (`ABORT_ERR`).
    #[error("the operation was aborted")]
    Aborted,
}

impl Error {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Shape(_) => "ERR_RNNKIT_SHAPE",
            Error::Range(_) => "ERR_RNNKIT_RANGE",
            Error::NonFinite(_) => "ERR_RNNKIT_NON_FINITE",
            Error::Format(_) => "ERR_RNNKIT_FORMAT",
            Error::Config(_) => "ERR_RNNKIT_CONFIG",
            Error::Io { .. } => "ERR_RNNKIT_IO",
            Error::LossNotFinite { .. } | Error::UpdateNotFinite { .. } => "ERR_RNNKIT_LOSS_NOT_FINITE",
            Error::Aborted => "ABORT_ERR",
        }
    }

    /// Which JavaScript error class fits: `"TypeError"`, `"RangeError"` or `"Error"`.
    pub fn js_kind(&self) -> &'static str {
        match self {
            Error::Shape(_) | Error::Config(_) => "TypeError",
            Error::Range(_) | Error::NonFinite(_) => "RangeError",
            _ => "Error",
        }
    }

    /// The argument this error is about: by convention every message starts with it
    /// (`batchSize: expected an integer >= 1, got 0` names `batchSize`; nested options are
    /// dotted paths such as `optimizer.lr`, array entries `lengths[3]`). `None` when the message
    /// names no argument.
    pub fn param(&self) -> Option<&str> {
        let message = match self {
            Error::Shape(m) | Error::Range(m) | Error::NonFinite(m) | Error::Config(m) => m.as_str(),
            _ => return None,
        };
        leading_param(message)
    }

    /// Wraps an I/O error with what was being done (e.g. `writing "model.safetensors"`).
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}

/// The argument a message names first (`name: ...`), if its head looks like a parameter path.
pub fn leading_param(message: &str) -> Option<&str> {
    let (head, _) = message.split_once(": ")?;
    let mut chars = head.chars();
    let starts_like_a_name = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let name_like = chars.all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c));
    (starts_like_a_name && name_like).then_some(head)
}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Checks that `actual == expected` for a length, naming the argument in the error.
pub fn check_len(name: &str, actual: usize, expected: usize) -> Result<()> {
    if actual != expected {
        return Err(Error::Shape(format!("{name}: expected length {expected}, got {actual}")));
    }
    Ok(())
}

/// The product of `dims` (a buffer length computed from user-given sizes), or a range error
/// naming `name` when it overflows `usize`.
pub fn checked_size(name: &str, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::Range(format!("{name}: the sizes {dims:?} overflow the address space")))
}

/// Whether every value is finite. Blocks of 64 without an early exit inside, so the compiler
/// vectorises the test (a per-value early exit does not): every generated token checks the
/// whole carried state.
pub fn all_finite(values: &[f32]) -> bool {
    let block_finite = |block: &[f32]| block.iter().fold(true, |ok, v| ok & v.is_finite());
    let mut blocks = values.chunks_exact(64);
    blocks.all(block_finite) && block_finite(blocks.remainder())
}

/// Checks that every value is finite, naming the argument and the first bad index.
pub fn check_finite(name: &str, values: &[f32]) -> Result<()> {
    if all_finite(values) {
        return Ok(());
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite(format!("{name}: every value must be finite, got {} at index {i}", values[i])));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A non-finite value anywhere (inside a block of 64, in the tail, first, last) is found.
    #[test]
    fn all_finite_finds_every_non_finite_position() {
        assert!(all_finite(&[]));
        for len in [1, 63, 64, 65, 200] {
            let ok: Vec<f32> = (0..len).map(|i| i as f32 * 0.5 - 7.0).collect();
            assert!(all_finite(&ok), "len {len}");
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                for at in [0, len / 2, len - 1] {
                    let mut v = ok.clone();
                    v[at] = bad;
                    assert!(!all_finite(&v), "len {len}: {bad} at {at} missed");
                    assert!(
                        matches!(check_finite("v", &v), Err(Error::NonFinite(m)) if m.contains(&format!("index {at}")))
                    );
                }
            }
        }
    }
}
