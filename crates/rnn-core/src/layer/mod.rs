//! Network layers: the recurrent stack (layers × directions), time pooling, and (with the
//! engine merge) embedding and dense heads.

pub mod pooling;
pub mod recurrent;
