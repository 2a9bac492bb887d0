//! Layers around the recurrent cells.

pub mod pooling;
