//! Speech recognition with a speech network (`Task::Speech`): feature frames in, transcripts out.
//! Utterances are batched by length (sorted, so padding stays small; results in input order), the
//! network's per-step scores decoded per row by `ctc_decode` (greedy, or prefix beam search,
//! optionally constrained to a lexicon of words), labels mapped to text by the model's alphabet.
//! Evaluation on transcribed data: the CTC loss with word and character error rates.
//!
//! Shapes: an utterance is `[T, F]` row-major (T frames of F features); the network's outputs
//! `[T'·B, C]` time-major with `T' = ⌈T / k⌉` (frame stacking `k`).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::alphabet::{Alphabet, BLANK};
use crate::audio::features::{FeatureConfig, FeatureExtractor};
use crate::audio::wav::read_wav;
use crate::batch::{Batch, BatchInput, BatchTargets, SequenceSet};
use crate::config::{InputKind, Task};
use crate::ctc_decode::{beam_search, greedy, BeamOptions, Lexicon};
use crate::error::{Error, Result};
use crate::metrics::TranscriptErrors;
use crate::model::evaluate::Evaluation;
use crate::model::network::{ForwardCache, Network};
use crate::model::objective::{check_transcripts_fit, network_loss};

/// How per-frame scores become labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decoder {
    /// Each frame's best class, repeats merged, blanks dropped.
    #[default]
    Greedy,
    /// Prefix beam search keeping `width` prefixes per frame.
    Beam { width: usize },
}

/// The most prefixes a beam search may keep.
pub const MAX_BEAM_WIDTH: usize = 1024;

/// Options of [`transcribe`] and [`evaluate_speech`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TranscribeOptions {
    pub decoder: Decoder,
    /// Allowed words: every transcript is a sequence of them separated by single spaces (or one
    /// word, for an alphabet without the space). Beam search only (a greedy path cannot be held
    /// to it); each word's characters must be in the alphabet.
    pub lexicon: Option<Vec<String>>,
}

/// Utterances per batch of [`transcribe`] and [`evaluate_speech`].
pub const DECODE_BATCH: usize = 16;

/// A network's speech parts, checked once: its alphabet and feature width.
fn speech_parts(net: &Network) -> Result<(&Alphabet, usize)> {
    match (&net.config.speech, net.config.input, net.config.task) {
        (Some(sp), InputKind::Dense { input_size }, Task::Speech) => Ok((&sp.alphabet, input_size)),
        _ => Err(Error::Config(format!(
            "model: transcribing needs a speech model, this model's task is \"{}\"",
            net.config.task.name()
        ))),
    }
}

/// A compiled decoder: the options checked against the alphabet, the lexicon built once.
struct Decoding {
    decoder: Decoder,
    lexicon: Option<Lexicon>,
}

impl Decoding {
    fn new(alphabet: &Alphabet, opts: &TranscribeOptions) -> Result<Self> {
        if let Decoder::Beam { width } = opts.decoder {
            if width == 0 || width > MAX_BEAM_WIDTH {
                return Err(Error::Range(format!(
                    "beamWidth: expected an integer in 1..={MAX_BEAM_WIDTH}, got {width}"
                )));
            }
        }
        let lexicon = match &opts.lexicon {
            None => None,
            Some(_) if opts.decoder == Decoder::Greedy => {
                return Err(Error::Config(
                    "lexicon: a lexicon constrains beam search; give beamWidth (e.g. 8) with it".into(),
                ))
            }
            Some(words) => {
                let labels = words
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        let name = format!("lexicon[{i}]");
                        if w.is_empty() || w.contains(' ') {
                            return Err(Error::Range(format!("{name}: expected one word without spaces, got {w:?}")));
                        }
                        alphabet.encode(w, &name)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some(Lexicon::new(&labels, alphabet.separator(), BLANK)?)
            }
        };
        Ok(Decoding { decoder: opts.decoder, lexicon })
    }

    /// The labels of one row's frames `[T', C]`.
    fn decode(&self, frames: &[f32], classes: usize) -> Result<Vec<usize>> {
        match self.decoder {
            Decoder::Greedy => Ok(greedy(frames, classes, BLANK)),
            Decoder::Beam { width } => {
                let opts = BeamOptions { beam_width: width, blank: BLANK };
                let best = beam_search(frames, classes, &opts, self.lexicon.as_ref())?;
                Ok(best.into_iter().next().map(|h| h.labels).unwrap_or_default())
            }
        }
    }

    /// The transcripts of a forward pass's outputs `[T'·B, C]` for `batch` (rows decoded in
    /// parallel).
    fn decode_batch(&self, net: &Network, outputs: &[f32], batch: &Batch, alphabet: &Alphabet) -> Result<Vec<String>> {
        let (b, c) = (batch.rows, net.config.output_size);
        let steps = net.output_steps(batch.steps);
        let mut rows: Vec<(usize, Option<Result<String>>)> = (0..b).map(|r| (r, None)).collect();
        crate::parallel::for_each_mut(&mut rows, |(r, out)| {
            let n = batch.lengths.as_ref().map_or(steps, |l| net.output_steps(l[*r]));
            let mut frames = Vec::with_capacity(n * c);
            for s in 0..n {
                frames.extend_from_slice(&outputs[(s * b + *r) * c..(s * b + *r + 1) * c]);
            }
            *out = Some(self.decode(&frames, c).map(|labels| alphabet.decode(&labels)));
        });
        rows.into_iter().map(|(_, t)| t.expect("every row decoded")).collect()
    }
}

/// The order utterances are batched in: longest first (ties by index), so each batch pads little.
fn length_order(lengths: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(lengths[i]), i));
    order
}

/// Transcribes utterances, each `[T_i, F]` frames (T_i ≥ 1), into text, in input order; `cancel`
/// is checked between batches.
pub fn transcribe(
    net: &Network,
    utterances: &[&[f32]],
    opts: &TranscribeOptions,
    cancel: Option<&AtomicBool>,
) -> Result<Vec<String>> {
    let (alphabet, f) = speech_parts(net)?;
    let decoding = Decoding::new(alphabet, opts)?;
    let mut lengths = Vec::with_capacity(utterances.len());
    for (i, u) in utterances.iter().enumerate() {
        if u.is_empty() || !u.len().is_multiple_of(f) {
            return Err(Error::Shape(format!(
                "frames[{i}]: expected a positive multiple of the model's {f} features per frame, got {} values",
                u.len()
            )));
        }
        lengths.push(u.len() / f);
    }
    let order = length_order(&lengths);
    let mut out = vec![String::new(); utterances.len()];
    let mut cache = ForwardCache::default();
    for chunk in order.chunks(DECODE_BATCH) {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Aborted);
        }
        let t = chunk.iter().map(|&i| lengths[i]).max().unwrap_or(1);
        let mut x = vec![0.0f32; chunk.len() * t * f];
        for (r, &i) in chunk.iter().enumerate() {
            x[r * t * f..r * t * f + utterances[i].len()].copy_from_slice(utterances[i]);
        }
        let batch = Batch {
            input: BatchInput::Dense(x),
            targets: BatchTargets::Transcripts { labels: Vec::new(), max_len: 0, lengths: vec![0; chunk.len()] },
            rows: chunk.len(),
            steps: t,
            lengths: Some(chunk.iter().map(|&i| lengths[i]).collect()),
        };
        let (outputs, _) = net.forward(&batch, None, None, &mut cache)?;
        for (&i, text) in chunk.iter().zip(decoding.decode_batch(net, &outputs, &batch, alphabet)?) {
            out[i] = text;
        }
    }
    Ok(out)
}

/// One utterance as sound: a WAV file's bytes, or mono samples at a rate (Hz).
#[derive(Debug, Clone, Copy)]
pub enum Audio<'a> {
    Wav(&'a [u8]),
    Samples(&'a [f32], u32),
}

/// Transcribes sound: each utterance's features computed with `features` (the model's stored
/// configuration; files decoded and featurised in parallel), then [`transcribe`]. An error names
/// the utterance (`audio[i]: ...`).
pub fn transcribe_audio(
    net: &Network,
    features: &FeatureConfig,
    audio: &[Audio],
    opts: &TranscribeOptions,
    cancel: Option<&AtomicBool>,
) -> Result<Vec<String>> {
    let (_, f) = speech_parts(net)?;
    if features.n_mels != f {
        return Err(Error::Config(format!(
            "features: {} mel bands, the model reads {f} features per frame",
            features.n_mels
        )));
    }
    let extractor = FeatureExtractor::new(features.clone())?;
    let mut frames: Vec<(usize, Option<Result<Vec<f32>>>)> = (0..audio.len()).map(|i| (i, None)).collect();
    crate::parallel::for_each_mut(&mut frames, |(i, out)| {
        let r = match audio[*i] {
            Audio::Wav(bytes) => read_wav(bytes).and_then(|w| extractor.features_at(&w.samples, w.sample_rate)),
            Audio::Samples(samples, rate) => extractor.features_at(samples, rate),
        };
        *out = Some(r.map_err(|e| named(&format!("audio[{i}]"), e)));
    });
    let frames = frames.into_iter().map(|(_, r)| r.expect("every utterance featurised")).collect::<Result<Vec<_>>>()?;
    let views: Vec<&[f32]> = frames.iter().map(Vec::as_slice).collect();
    transcribe(net, &views, opts, cancel)
}

/// `e` with `name` put in front of its message (same kind).
fn named(name: &str, e: Error) -> Error {
    match e {
        Error::Shape(m) => Error::Shape(format!("{name}: {m}")),
        Error::Range(m) => Error::Range(format!("{name}: {m}")),
        Error::NonFinite(m) => Error::NonFinite(format!("{name}: {m}")),
        Error::Format(m) => Error::Format(format!("{name}: {m}")),
        Error::Config(m) => Error::Config(format!("{name}: {m}")),
        other => other,
    }
}

/// The CTC loss and the word and character error rates of a speech model on `set` (dense frames
/// with transcripts), in batches of `batch_size` rows in file order; `cancel` checked before each.
pub fn evaluate_speech(
    net: &Network,
    set: &SequenceSet,
    batch_size: usize,
    opts: &TranscribeOptions,
    cancel: Option<&AtomicBool>,
) -> Result<Evaluation> {
    let (alphabet, _) = speech_parts(net)?;
    set.validate()?;
    check_transcripts_fit(set, net.frame_stacking())?;
    if batch_size == 0 {
        return Err(Error::Range("batchSize: expected an integer >= 1, got 0".into()));
    }
    let decoding = Decoding::new(alphabet, opts)?;
    let order: Vec<usize> = (0..set.rows).collect();
    let mut cache = ForwardCache::default();
    let mut total = Evaluation::default();
    let mut errors = TranscriptErrors::default();
    for i in 0..set.batches_per_epoch(batch_size, crate::batch::LastBatch::Keep) {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Aborted);
        }
        let batch = set.batch(&order, batch_size, i);
        let (outputs, _) = net.forward(&batch, None, None, &mut cache)?;
        total.loss.add(network_loss(net, &outputs, &batch, None, None)?.sum);
        let BatchTargets::Transcripts { labels, max_len, lengths } = &batch.targets else {
            return Err(Error::Config("targets: a speech model is evaluated on transcripts".into()));
        };
        for (r, hypothesis) in decoding.decode_batch(net, &outputs, &batch, alphabet)?.iter().enumerate() {
            let reference: Vec<usize> =
                labels[r * max_len..r * max_len + lengths[r]].iter().map(|&l| l as usize).collect();
            errors.add(&alphabet.decode(&reference), hypothesis);
        }
    }
    total.transcripts = Some(errors);
    Ok(total)
}
