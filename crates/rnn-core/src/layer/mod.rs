pub mod dense;
pub mod embedding;
