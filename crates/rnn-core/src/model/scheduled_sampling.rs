//! Scheduled sampling (Bengio et al. 2015): while a sequence-to-sequence network trains, each
//! target step's decoder input is, with probability `p`, the model's own greedy prediction of the
//! previous step instead of the target token, so that training sees the kind of prefixes
//! decoding produces. The predictions are made by a greedy pass over the decoder (the step
//! decoding uses, over the training forward's encoder memory and initial state) before the
//! training forward reads them: they are constants of the gradient, which flows through the
//! embedding rows they select but not through the choice.
//!
//! Draws: one `uniform_f64()` of the training generator per real target step `t ≥ 1` of each
//! row, in (t, row) order, only when `p > 0` — so `p = 0` is teacher forcing to the bit, and a
//! resumed run (the generator is checkpointed) draws what an uninterrupted one would.

use crate::error::Result;
use crate::layer::attention::Memory;
use crate::layer::recurrent::StackState;
use crate::model::objective::argmax;
use crate::model::seq2seq::{DecodeScratch, Seq2Seq};
use crate::rng::Rng;

/// What the decoder reads in a training forward.
pub enum DecoderInputs<'a> {
    /// The target shifted right (teacher forcing).
    Target,
    /// Scheduled sampling with `probability` per target step, drawn from `rng`.
    Sampled { probability: f64, rng: &'a mut Rng },
    /// These ids, batch-first `[B, Tt+1]` (bos first): to fix the samples of one pass (the
    /// finite-difference check holds them constant).
    Given(&'a [i32]),
}

/// Replaces the drawn inputs of `ids` (`[B, Tt+1]` batch-first, the target shifted right) by
/// the previous step's greedy prediction. `memory` and `initial` are the training forward's
/// encoder memory and decoder initial state `[L, B, H]`; `lengths` the target lengths.
pub(crate) fn sample_inputs(
    net: &Seq2Seq,
    memory: &Memory,
    initial: &StackState,
    lengths: &[usize],
    ids: &mut [i32],
    probability: f64,
    rng: &mut Rng,
) -> Result<()> {
    let b = lengths.len();
    let tt = ids.len() / b.max(1);
    if probability <= 0.0 || b == 0 {
        return Ok(());
    }
    // [B, Tt+1]: whether the input at step t is the prediction of step t − 1.
    let mut sampled = vec![false; b * tt];
    let mut last = 0;
    for t in 1..tt {
        for (r, &len) in lengths.iter().enumerate() {
            if t <= len && rng.uniform_f64() < probability {
                sampled[r * tt + t] = true;
                last = t;
            }
        }
    }
    if last == 0 {
        return Ok(());
    }
    // Greedy steps 0 .. last − 1 over every row, each reading the inputs chosen so far.
    let v = net.config.target_vocab;
    let rows: Vec<usize> = (0..b).collect();
    let mut state = initial.clone();
    let mut scratch = DecodeScratch::new(net)?;
    let mut logits = vec![0.0; b * v];
    let mut tokens = vec![0u32; b];
    for t in 0..last {
        for (r, token) in tokens.iter_mut().enumerate() {
            *token = ids[r * tt + t] as u32;
        }
        net.decode_step(memory, &rows, &tokens, &mut state, &mut scratch, &mut logits)?;
        for r in (0..b).filter(|&r| sampled[r * tt + t + 1]) {
            ids[r * tt + t + 1] = argmax(&logits[r * v..(r + 1) * v]) as i32;
        }
    }
    Ok(())
}
