//! Networks for every task and what runs them: the network itself, task losses, evaluation,
//! inference (generation).

pub mod evaluate;
pub mod inference;
pub mod network;
pub mod objective;
