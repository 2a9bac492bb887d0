//! Flat parameter buffers with named views (as in llm.c).
//!
//! All weights of a model live in one `Vec<f32>`; gradients and optimizer moments use the same
//! [`ParamLayout`], so an optimizer is one loop over a slice and saving a file is a name → slice
//! map. Names are PyTorch `state_dict` names (docs/FORMAT.md). [`Params::array`] /
//! [`Params::array_mut`] give one tensor as an `ndarray` view with its PyTorch shape (no copy),
//! for code that indexes a tensor by row and column; the hot paths keep the flat slices.

use crate::error::{Error, Result};
use ndarray::{ArrayViewD, ArrayViewMutD, IxDyn};
use std::collections::HashMap;
use std::sync::Arc;

/// One named tensor inside a flat buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
}

/// The ordered list of named tensors of a model and where each lives in the flat buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamLayout {
    specs: Vec<ParamSpec>,
    index: HashMap<String, usize>,
    total: usize,
}

impl ParamLayout {
    /// Builds a layout from `(name, shape)` pairs, packed in order.
    pub fn new(entries: Vec<(String, Vec<usize>)>) -> Self {
        let mut specs = Vec::with_capacity(entries.len());
        let mut index = HashMap::new();
        let mut offset = 0;
        for (name, shape) in entries {
            let len = shape.iter().product();
            index.insert(name.clone(), specs.len());
            specs.push(ParamSpec { name, shape, offset, len });
            offset += len;
        }
        ParamLayout { specs, index, total: offset }
    }

    /// Total number of scalars.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The tensors in order.
    pub fn specs(&self) -> &[ParamSpec] {
        &self.specs
    }

    /// The tensor called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&ParamSpec> {
        self.index.get(name).map(|&i| &self.specs[i])
    }

    /// The tensor called `name`, or an error naming it.
    pub fn require(&self, name: &str) -> Result<&ParamSpec> {
        self.get(name).ok_or_else(|| Error::Config(format!("no parameter named \"{name}\" in this model")))
    }
}

/// A flat buffer shaped by a layout: parameters, gradients or one optimizer moment.
#[derive(Debug, Clone)]
pub struct Params {
    pub layout: Arc<ParamLayout>,
    pub data: Vec<f32>,
}

impl Params {
    /// A zero-filled buffer.
    pub fn zeros(layout: Arc<ParamLayout>) -> Self {
        let data = vec![0.0; layout.total()];
        Params { layout, data }
    }

    /// The slice of the tensor `name`. Panics only on a programming error (unknown internal name).
    pub fn view(&self, name: &str) -> &[f32] {
        let s = self.layout.get(name).unwrap_or_else(|| panic!("internal: no tensor {name}"));
        &self.data[s.offset..s.offset + s.len]
    }

    /// The mutable slice of the tensor `name`.
    pub fn view_mut(&mut self, name: &str) -> &mut [f32] {
        let s = self.layout.get(name).unwrap_or_else(|| panic!("internal: no tensor {name}"));
        let (o, l) = (s.offset, s.len);
        &mut self.data[o..o + l]
    }

    /// The tensor `name` as a view with its PyTorch shape (e.g. `rnn.weight_ih_l0` as
    /// `[G·H, in]`, row-major), borrowing the flat buffer. Panics only on a programming error
    /// (unknown internal name).
    pub fn array(&self, name: &str) -> ArrayViewD<'_, f32> {
        let s = self.layout.get(name).unwrap_or_else(|| panic!("internal: no tensor {name}"));
        let shape = IxDyn(&s.shape);
        // The layout makes len the product of the shape, so this cannot fail.
        ArrayViewD::from_shape(shape, &self.data[s.offset..s.offset + s.len]).expect("internal: layout shape")
    }

    /// The tensor `name` as a mutable view with its PyTorch shape (see [`array`](Self::array)).
    pub fn array_mut(&mut self, name: &str) -> ArrayViewMutD<'_, f32> {
        let s = self.layout.get(name).unwrap_or_else(|| panic!("internal: no tensor {name}"));
        let (o, l, shape) = (s.offset, s.len, IxDyn(&s.shape));
        ArrayViewMutD::from_shape(shape, &mut self.data[o..o + l]).expect("internal: layout shape")
    }

    /// Sets every value to zero (gradient reset between steps).
    pub fn zero(&mut self) {
        self.data.iter_mut().for_each(|v| *v = 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Axis, Ix2};

    fn two_tensors() -> Params {
        let layout = ParamLayout::new(vec![("a.bias".into(), vec![3]), ("a.weight".into(), vec![4, 2])]);
        let mut p = Params::zeros(Arc::new(layout));
        p.data.iter_mut().enumerate().for_each(|(k, v)| *v = k as f32);
        p
    }

    #[test]
    fn array_has_the_pytorch_shape_and_reads_the_tensor_row_major() {
        let p = two_tensors();
        let w = p.array("a.weight");
        assert_eq!(w.shape(), &[4, 2]);
        // a.weight starts after the 3 values of a.bias: w[i, j] = data[3 + 2i + j].
        let w = w.into_dimensionality::<Ix2>().unwrap();
        for i in 0..4 {
            for j in 0..2 {
                assert_eq!(w[[i, j]], (3 + 2 * i + j) as f32);
            }
        }
        assert_eq!(p.array("a.bias").as_slice(), Some(&[0.0, 1.0, 2.0][..]));
    }

    #[test]
    fn array_mut_writes_land_in_the_named_tensor_only() {
        let mut p = two_tensors();
        let mut w = p.array_mut("a.weight");
        assert_eq!(w.shape(), &[4, 2]);
        // Row 2 of [4, 2] is flat values 4, 5 of the tensor, 7, 8 of the buffer.
        w.index_axis_mut(Axis(0), 2).fill(-1.0);
        let want: Vec<f32> = (0..11).map(|k| if k == 7 || k == 8 { -1.0 } else { k as f32 }).collect();
        assert_eq!(p.data, want);
    }

    #[test]
    #[should_panic(expected = "no tensor")]
    fn array_of_an_unknown_name_is_a_programming_error() {
        two_tensors().array("b.weight");
    }
}
