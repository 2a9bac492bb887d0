//! Decoding one source a token at a time (`model.stream`): [`Seq2SeqStream`] keeps the encoder's
//! memory, the decoder's state and its packed weights, and each [`next`](Seq2SeqStream::next)
//! runs one decoder step — the same step, and so the same tokens, as batched greedy decoding
//! (`Seq2Seq::greedy`). With beams, the search runs whole at the first `next` (a hypothesis is
//! only final at its end) and its best output is then handed out token by token.
//!
//! The stream owns a copy of the network, so the model it came from may train or be dropped
//! meanwhile without changing what the stream decodes.

use crate::beam::BeamConfig;
use crate::error::{Error, Result};
use crate::layer::attention::Memory;
use crate::layer::recurrent::StackState;
use crate::model::objective::argmax;
use crate::model::seq2seq::{DecodeScratch, Seq2Seq};
use crate::model::seq2seq_evaluate::DecodeOptions;
use crate::pairs::PairSet;
use std::sync::atomic::AtomicBool;

/// One source being decoded.
pub struct Seq2SeqStream {
    net: Seq2Seq,
    source: Vec<i32>,
    options: DecodeOptions,
    /// The most tokens of the output (eos not counted).
    limit: usize,
    /// Tokens handed out so far.
    emitted: usize,
    done: bool,
    mode: Mode,
}

enum Mode {
    /// Not started: the first `next` encodes the source (greedy) or runs the search (beams).
    Start,
    /// Greedy: the memory `[Ts, 1, ·]`, the decoder state `[L, 1, H]`, the last token.
    Greedy { memory: Memory, state: StackState, scratch: Box<DecodeScratch>, token: u32, logits: Vec<f32> },
    /// Beam search's best output, handed out in order.
    Final(Vec<u32>),
}

impl std::fmt::Debug for Seq2SeqStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seq2SeqStream").field("emitted", &self.emitted).field("done", &self.done).finish()
    }
}

impl Seq2SeqStream {
    /// A stream of `net`'s output for `source` (ids of its source vocabulary, not empty) under
    /// `options` (beams, length penalty, the most tokens); nothing is computed yet.
    pub fn new(net: &Seq2Seq, source: &[i32], options: &DecodeOptions) -> Result<Self> {
        options.validate()?;
        let one = PairSet { source: vec![source.to_vec()], target: vec![Vec::new()] };
        one.validate(net.config.source_vocab, net.config.target_vocab).map_err(|e| match e {
            Error::Range(m) => Error::Range(format!("text: {}", m.trim_start_matches("source[0]: "))),
            other => other,
        })?;
        Ok(Seq2SeqStream {
            net: net.clone(),
            source: source.to_vec(),
            limit: options.limit(source.len()),
            options: options.clone(),
            emitted: 0,
            done: false,
            mode: Mode::Start,
        })
    }

    /// The next output token, or None once the output has ended (`eos`, or the length limit).
    /// `cancel` is checked by a beam search before every step.
    pub fn next(&mut self, cancel: &AtomicBool) -> Result<Option<u32>> {
        if self.done {
            return Ok(None);
        }
        if matches!(self.mode, Mode::Start) {
            self.mode = self.start(cancel)?;
        }
        let token = match &mut self.mode {
            Mode::Start => unreachable!("started above"),
            Mode::Final(tokens) => tokens.get(self.emitted).copied(),
            Mode::Greedy { memory, state, scratch, token, logits } => {
                if self.emitted >= self.limit {
                    None
                } else {
                    self.net.decode_step(memory, &[0], std::slice::from_ref(token), state, scratch, logits)?;
                    // First maximum: ties go to the lower id, as in batched greedy decoding.
                    *token = argmax(logits) as u32;
                    (*token != self.net.config.eos).then_some(*token)
                }
            }
        };
        match token {
            Some(t) => {
                self.emitted += 1;
                Ok(Some(t))
            }
            None => {
                self.done = true;
                Ok(None)
            }
        }
    }

    fn start(&self, cancel: &AtomicBool) -> Result<Mode> {
        let (steps, lengths) = (self.source.len(), [self.source.len()]);
        if self.options.beams > 1 {
            let cfg = BeamConfig {
                beams: self.options.beams,
                max_tokens: 1,
                length_penalty: self.options.length_penalty,
                stop_tokens: vec![],
            };
            let limit = |_: usize| self.limit;
            let mut best = self.net.beam(&self.source, steps, &lengths, &limit, &cfg, cancel)?;
            return Ok(Mode::Final(best.remove(0)));
        }
        let (memory, state) = self.net.encode(&self.source, 1, steps, &lengths)?;
        Ok(Mode::Greedy {
            memory,
            state,
            scratch: Box::new(DecodeScratch::new(&self.net)?),
            token: self.net.config.bos,
            logits: vec![0.0; self.net.config.target_vocab],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CellKind;
    use crate::layer::attention::AttentionKind;
    use crate::model::seq2seq::Seq2SeqConfig;
    use crate::model::seq2seq_evaluate::decode;
    use crate::rng::Rng;

    fn net(seed: u64) -> Seq2Seq {
        let cfg = Seq2SeqConfig {
            cell: CellKind::Lstm,
            source_vocab: 6,
            target_vocab: 7,
            embed_dim: 5,
            hidden_size: 8,
            num_layers: 2,
            bidirectional: true,
            attention: AttentionKind::Additive,
            attention_size: 4,
            bos: 0,
            eos: 1,
        };
        Seq2Seq::init(cfg, &mut Rng::new(seed)).unwrap()
    }

    fn drain(s: &mut Seq2SeqStream) -> Vec<u32> {
        let cancel = AtomicBool::new(false);
        let mut out = Vec::new();
        while let Some(t) = s.next(&cancel).unwrap() {
            out.push(t);
        }
        assert_eq!(s.next(&cancel).unwrap(), None, "an ended stream stays ended");
        out
    }

    #[test]
    fn a_stream_hands_out_the_batched_decode_token_by_token() {
        let sources = vec![vec![1, 2, 3, 4, 5], vec![2], vec![5, 5, 0], vec![3, 1, 4, 1, 5, 2, 2]];
        let cancel = AtomicBool::new(false);
        let mut seen_eos = false;
        for seed in 1..6 {
            let mut m = net(seed);
            // A raised eos logit, so that some outputs end at eos before their limit.
            let eos = m.params().layout.require("head.bias").unwrap().offset + 1;
            m.params_mut().data[eos] += 0.4 * seed as f32;
            for opts in [
                DecodeOptions::default(),
                DecodeOptions { max_length: Some(3), ..DecodeOptions::default() },
                DecodeOptions { beams: 3, ..DecodeOptions::default() },
            ] {
                let batched = decode(&m, &sources, &opts, &cancel).unwrap();
                for (source, want) in sources.iter().zip(&batched) {
                    let got = drain(&mut Seq2SeqStream::new(&m, source, &opts).unwrap());
                    assert_eq!(&got, want, "seed {seed}, {opts:?}, source {source:?}");
                    seen_eos |= got.len() < opts.limit(source.len());
                }
            }
        }
        assert!(seen_eos, "some output ended at eos before its limit");
    }

    #[test]
    fn bad_sources_and_options_are_refused_and_a_beam_search_can_be_cancelled() {
        let m = net(1);
        let e = Seq2SeqStream::new(&m, &[], &DecodeOptions::default()).unwrap_err().to_string();
        assert!(e.contains("text: a source must have at least one token"), "{e}");
        assert!(Seq2SeqStream::new(&m, &[9], &DecodeOptions::default()).unwrap_err().to_string().contains("text:"));
        let bad = DecodeOptions { beams: 0, ..DecodeOptions::default() };
        assert!(Seq2SeqStream::new(&m, &[1], &bad).unwrap_err().to_string().contains("beams"));
        let beams = DecodeOptions { beams: 2, ..DecodeOptions::default() };
        let mut s = Seq2SeqStream::new(&m, &[1, 2], &beams).unwrap();
        assert!(matches!(s.next(&AtomicBool::new(true)), Err(Error::Aborted)));
    }
}
