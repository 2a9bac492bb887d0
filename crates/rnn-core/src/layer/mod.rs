//! Network layers built on the cells: the recurrent stack (layers × directions).

pub mod recurrent;
