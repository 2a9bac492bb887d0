//! Network layers: token embedding, dense heads, attention, the recurrent stack (layers × directions; its
//! training half in `recurrent`, its cache-free inference half in `recurrent_inference`) and
//! time pooling.

pub mod attention;
pub mod dense;
pub mod embedding;
pub mod pooling;
pub mod recurrent;
pub mod recurrent_inference;
