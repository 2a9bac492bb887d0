//! Flat parameter buffers with named views (as in llm.c).
//!
//! All weights of a model live in one `Vec<f32>`; gradients and optimizer moments use the same
//! [`ParamLayout`], so an optimizer is one loop over a slice and saving a file is a name → slice
//! map. Names are PyTorch `state_dict` names (INTEROP.md).

use crate::error::{Error, Result};
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
        self.get(name)
            .ok_or_else(|| Error::Config(format!("no parameter named \"{name}\" in this model")))
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

    /// Sets every value to zero (gradient reset between steps).
    pub fn zero(&mut self) {
        self.data.iter_mut().for_each(|v| *v = 0.0);
    }
}
