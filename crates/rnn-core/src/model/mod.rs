//! Networks for every task and what runs them: the network itself, task losses, evaluation,
//! inference (generation); speech recognition (`speech`); the sequence-to-sequence network
//! (`seq2seq`).

pub mod evaluate;
pub mod inference;
pub mod network;
pub mod objective;
pub mod scheduled_sampling;
pub mod seq2seq;
pub mod seq2seq_evaluate;
pub mod seq2seq_stream;
pub mod seq2seq_train;
pub mod speech;
