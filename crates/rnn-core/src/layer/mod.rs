//! Network layers: token embedding, dense heads, the recurrent stack (layers × directions) and
//! time pooling.

pub mod dense;
pub mod embedding;
pub mod pooling;
pub mod recurrent;
