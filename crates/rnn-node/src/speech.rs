//! Speech models in JavaScript: transcripts encoded with a model's alphabet
//! (`encodeTranscripts`, the engine's `Alphabet`), and `NativeModel.transcribe` (async, on a libuv
//! worker with a `CancelToken`) / `transcribeSync`: feature frames in, text out, decoded by the
//! engine (`rnn_core::model::speech`: greedy, prefix beam search, lexicon).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use napi::bindgen_prelude::{AsyncTask, Float32Array, Int32Array};
use napi::Env;
use napi_derive::napi;

use rnn_core::alphabet::Alphabet;
use rnn_core::model::speech::{transcribe, Decoder, TranscribeOptions as EngineOptions};

use crate::errors::NodeError;
use crate::guard::{guard_js, Guarded, Work};
use crate::model::{read, CancelToken, NativeModel, Shared};
use crate::options::Strict;
use crate::strict_object;
use crate::train_options::{whole, within};

/// Transcripts as padded label sequences: `[N, S]` labels (0 past each length), lengths `[N]`.
#[napi(object)]
pub struct EncodedTranscripts {
    pub labels: Int32Array,
    pub lengths: Int32Array,
    /// S, the longest transcript's length.
    pub max_length: u32,
}

/// The labels of `texts` under `alphabet` (a string of the output characters, class `k ≥ 1` is
/// its `k - 1`-th character): a character outside it is a RangeError naming `transcripts[i]`.
#[napi]
pub fn encode_transcripts(env: Env, alphabet: String, texts: Vec<String>) -> napi::Result<EncodedTranscripts> {
    guard_js(&env, || {
        let alphabet = Alphabet::from_chars(&alphabet)?;
        let encoded = texts
            .iter()
            .enumerate()
            .map(|(i, t)| alphabet.encode(t, &format!("transcripts[{i}]")))
            .collect::<rnn_core::Result<Vec<_>>>()?;
        let s = encoded.iter().map(Vec::len).max().unwrap_or(0);
        let mut labels = vec![0i32; encoded.len() * s];
        for (r, l) in encoded.iter().enumerate() {
            for (j, &k) in l.iter().enumerate() {
                labels[r * s + j] = k as i32;
            }
        }
        Ok(EncodedTranscripts {
            labels: Int32Array::new(labels),
            lengths: Int32Array::new(encoded.iter().map(|l| l.len() as i32).collect()),
            max_length: s as u32,
        })
    })
}

/// How `transcribe` decodes: greedy unless `beamWidth` is given; `lexicon` (with `beamWidth`)
/// restricts transcripts to these words.
#[napi(object, object_to_js = false)]
pub struct TranscribeOptions {
    /// Prefixes kept per frame by prefix beam search (1..=1024); absent: greedy decoding.
    pub beam_width: Option<f64>,
    /// Allowed words (characters of the model's alphabet, no spaces); needs `beamWidth`.
    pub lexicon: Option<Vec<String>>,
}
strict_object!(TranscribeOptions, "options", ["beamWidth", "lexicon"], caller: ["signal"]);

/// An engine error of `transcribe`: the options it names as `options.*`, the rest as they are
/// (`frames[i]`, the model).
fn transcribe_error(e: rnn_core::Error) -> NodeError {
    match e.param() {
        Some(p) if p.starts_with("lexicon") || p.starts_with("beamWidth") => within("options", e),
        _ => e.into(),
    }
}

fn engine_options(o: &TranscribeOptions) -> Result<EngineOptions, NodeError> {
    let decoder = match o.beam_width {
        Some(w) => Decoder::Beam { width: whole("options.beamWidth", w)? as usize },
        None => Decoder::Greedy,
    };
    Ok(EngineOptions { decoder, lexicon: o.lexicon.clone() })
}

/// `transcribe` work: frames copied once, decoded off the JavaScript thread.
pub struct TranscribeWork {
    shared: Shared,
    frames: Vec<Vec<f32>>,
    options: EngineOptions,
    cancel: Option<Arc<AtomicBool>>,
}

impl Work for TranscribeWork {
    type Output = Vec<String>;
    type JsValue = Vec<String>;
    fn compute(&mut self) -> Result<Vec<String>, NodeError> {
        let g = read(&self.shared)?;
        let net = &g.as_ref().expect("checked").network;
        let frames: Vec<&[f32]> = self.frames.iter().map(Vec::as_slice).collect();
        transcribe(net, &frames, &self.options, self.cancel.as_deref()).map_err(transcribe_error)
    }
    fn resolve(&mut self, _env: Env, output: Vec<String>) -> napi::Result<Vec<String>> {
        Ok(output)
    }
}

#[napi]
impl NativeModel {
    /// The transcripts of utterances, each `[T, F]` feature frames row-major, in input order,
    /// off the JavaScript thread; `cancel` stops it between batches (rejecting with `ABORT_ERR`).
    #[napi(ts_return_type = "Promise<string[]>")]
    pub fn transcribe(
        &self,
        env: Env,
        frames: Vec<Float32Array>,
        #[napi(ts_arg_type = "TranscribeOptions")] options: Strict<TranscribeOptions>,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<AsyncTask<Guarded<TranscribeWork>>> {
        let options = guard_js(&env, || engine_options(&options.0))?;
        Ok(AsyncTask::new(Guarded(TranscribeWork {
            shared: self.shared.clone(),
            frames: frames.iter().map(|f| f.to_vec()).collect(),
            options,
            cancel: cancel.map(|c| c.flag.clone()),
        })))
    }

    /// [`NativeModel::transcribe`] on the calling thread.
    #[napi]
    pub fn transcribe_sync(
        &self,
        env: Env,
        frames: Vec<Float32Array>,
        #[napi(ts_arg_type = "TranscribeOptions")] options: Strict<TranscribeOptions>,
    ) -> napi::Result<Vec<String>> {
        guard_js(&env, || {
            let options = engine_options(&options.0)?;
            let g = read(&self.shared)?;
            let net = &g.as_ref().expect("checked").network;
            let frames: Vec<&[f32]> = frames.iter().map(|f| &f[..]).collect();
            transcribe(net, &frames, &options, None).map_err(transcribe_error)
        })
    }
}
