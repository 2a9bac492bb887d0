//! Integer ids (tokens, classes) as they arrive: `Int32Array`/`Uint32Array` from JavaScript or
//! int64 tensors from PyTorch files. Everything that indexes by id takes `&[impl Id]`.

/// An integer id type that converts losslessly to `i64` (negative values are ignore markers or
/// errors, depending on the caller).
pub trait Id: Copy {
    fn to_i64(self) -> i64;
}

impl Id for i64 {
    fn to_i64(self) -> i64 {
        self
    }
}

impl Id for i32 {
    fn to_i64(self) -> i64 {
        self as i64
    }
}

impl Id for u32 {
    fn to_i64(self) -> i64 {
        self as i64
    }
}
