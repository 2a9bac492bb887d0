//! Speech models in JavaScript: transcripts encoded with a model's alphabet
//! (`encodeTranscripts`, the engine's `Alphabet`); `NativeModel.transcribe` (feature frames),
//! `transcribeWav` (WAV bytes) and `transcribeSamples` (mono samples), each async on a libuv
//! worker with a `CancelToken` and sync, decoded by the engine (`rnn_core::model::speech`:
//! greedy, prefix beam search, lexicon) with the model's stored feature configuration
//! (`audio_features`); `resolveFeatureConfig` and `loadAudioCorpus` (a manifest or folder of
//! transcribed WAV files featurised by the engine).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use napi::bindgen_prelude::{AsyncTask, Float32Array, Int32Array, Uint8Array};
use napi::Env;
use napi_derive::napi;

use rnn_core::alphabet::Alphabet;
use rnn_core::audio::corpus::{file_features, read_entries};
use rnn_core::audio::features::{FeatureConfig, FeatureExtractor};
use rnn_core::model::speech::{transcribe, transcribe_audio, Audio, Decoder, TranscribeOptions as EngineOptions};

use crate::audio::{feature_config, LogMelOptions};
use crate::model::Slot;

use crate::errors::NodeError;
use crate::guard::{guard_js, Guarded, Work};
use crate::model::{read, CancelToken, NativeModel, Shared};
use crate::options::Strict;
use crate::strict_object;
use crate::train_options::{whole, within};

/// The metadata key of a speech model's audio feature configuration (docs/FORMAT.md).
pub const AUDIO_FEATURES_KEY: &str = "audio_features";

/// The stored JSON form of the feature configuration `options` describe (defaults filled in,
/// validated by the engine): what a speech model keeps under `audio_features`.
#[napi(ts_return_type = "Record<string, unknown>")]
pub fn resolve_feature_config(
    env: Env,
    #[napi(ts_arg_type = "LogMelOptions")] options: Strict<LogMelOptions>,
) -> napi::Result<serde_json::Value> {
    guard_js(&env, || Ok(feature_config(&options.0)?.to_json()))
}

/// A transcribed corpus read from disk: each utterance's file, transcript and feature frames.
#[napi(object)]
pub struct AudioCorpus {
    /// The WAV files, as listed (manifest order, or sorted by name in a folder).
    pub audio: Vec<String>,
    pub texts: Vec<String>,
    /// `[T, n_mels]` frames per utterance.
    pub frames: Vec<Float32Array>,
}

/// `loadAudioCorpus` work: list, decode and featurise off the JavaScript thread.
pub struct CorpusWork {
    source: String,
    features: serde_json::Value,
}

impl Work for CorpusWork {
    type Output = (Vec<String>, Vec<String>, Vec<Vec<f32>>);
    type JsValue = AudioCorpus;
    fn compute(&mut self) -> Result<Self::Output, NodeError> {
        let config = FeatureConfig::from_json(&self.features).map_err(|e| within("features", e))?;
        let extractor = FeatureExtractor::new(config)?;
        let entries = read_entries(std::path::Path::new(&self.source))?;
        let paths: Vec<_> = entries.iter().map(|e| e.audio.clone()).collect();
        let frames = file_features(&paths, &extractor)?;
        let audio = paths.iter().map(|p| p.display().to_string()).collect();
        Ok((audio, entries.into_iter().map(|e| e.text).collect(), frames))
    }
    fn resolve(&mut self, _env: Env, (audio, texts, frames): Self::Output) -> napi::Result<AudioCorpus> {
        Ok(AudioCorpus { audio, texts, frames: frames.into_iter().map(Float32Array::new).collect() })
    }
}

/// Reads a transcribed corpus (a JSONL manifest of `{"audio", "text"}` lines, or a folder of
/// `a.wav` + `a.txt` pairs) and computes every file's features with `features` (the stored
/// configuration, `resolveFeatureConfig`), off the JavaScript thread; errors name the line or file.
#[napi(ts_return_type = "Promise<AudioCorpus>")]
pub fn load_audio_corpus(
    path: String,
    #[napi(ts_arg_type = "Record<string, unknown>")] features: serde_json::Value,
) -> AsyncTask<Guarded<CorpusWork>> {
    AsyncTask::new(Guarded(CorpusWork { source: path, features }))
}

/// A model's stored audio feature configuration.
fn audio_features(slot: &Slot) -> Result<FeatureConfig, NodeError> {
    let raw = slot.metadata.get(AUDIO_FEATURES_KEY).ok_or_else(|| {
        NodeError::from(rnn_core::Error::Config(
            "model: this speech model reads feature frames (it stores no audio feature configuration); use transcribeFrames".into(),
        ))
    })?;
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| NodeError::from(rnn_core::Error::Format(format!("metadata {AUDIO_FEATURES_KEY}: {e}"))))?;
    Ok(FeatureConfig::from_json(&v)
        .map_err(|e| rnn_core::Error::Format(format!("metadata {AUDIO_FEATURES_KEY}: {e}")))?)
}

/// What `transcribeWav`/`transcribeSamples` read: WAV files' bytes, or samples at a rate.
enum Sound {
    Wav(Vec<Vec<u8>>),
    Samples(Vec<Vec<f32>>, u32),
}

impl Sound {
    fn views(&self) -> Vec<Audio<'_>> {
        match self {
            Sound::Wav(w) => w.iter().map(|b| Audio::Wav(b)).collect(),
            Sound::Samples(s, rate) => s.iter().map(|x| Audio::Samples(x, *rate)).collect(),
        }
    }
}

fn transcribe_sound(
    shared: &Shared,
    sound: &Sound,
    options: &EngineOptions,
    cancel: Option<&AtomicBool>,
) -> Result<Vec<String>, NodeError> {
    let g = read(shared)?;
    let slot = g.as_ref().expect("checked");
    let features = audio_features(slot)?;
    transcribe_audio(&slot.network, &features, &sound.views(), options, cancel).map_err(transcribe_error)
}

/// `transcribeWav`/`transcribeSamples` work.
pub struct SoundWork {
    shared: Shared,
    sound: Sound,
    options: EngineOptions,
    cancel: Option<Arc<AtomicBool>>,
}

impl Work for SoundWork {
    type Output = Vec<String>;
    type JsValue = Vec<String>;
    fn compute(&mut self) -> Result<Vec<String>, NodeError> {
        transcribe_sound(&self.shared, &self.sound, &self.options, self.cancel.as_deref())
    }
    fn resolve(&mut self, _env: Env, output: Vec<String>) -> napi::Result<Vec<String>> {
        Ok(output)
    }
}

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

/// The alphabet of a corpus's transcripts: every character they use, in code-point order (the
/// default alphabet of a model trained on them).
#[napi]
pub fn transcript_alphabet(env: Env, texts: Vec<String>) -> napi::Result<String> {
    guard_js(&env, || Ok(Alphabet::of_texts(texts.iter().map(String::as_str))?.symbols().iter().collect()))
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

    /// The transcripts of WAV files' bytes, featurised with the model's stored configuration
    /// (`audio_features`), off the JavaScript thread.
    #[napi(ts_return_type = "Promise<string[]>")]
    pub fn transcribe_wav(
        &self,
        env: Env,
        wavs: Vec<Uint8Array>,
        #[napi(ts_arg_type = "TranscribeOptions")] options: Strict<TranscribeOptions>,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<AsyncTask<Guarded<SoundWork>>> {
        let options = guard_js(&env, || engine_options(&options.0))?;
        let sound = Sound::Wav(wavs.iter().map(|w| w.to_vec()).collect());
        Ok(AsyncTask::new(Guarded(SoundWork {
            shared: self.shared.clone(),
            sound,
            options,
            cancel: cancel.map(|c| c.flag.clone()),
        })))
    }

    /// [`NativeModel::transcribe_wav`] on the calling thread.
    #[napi]
    pub fn transcribe_wav_sync(
        &self,
        env: Env,
        wavs: Vec<Uint8Array>,
        #[napi(ts_arg_type = "TranscribeOptions")] options: Strict<TranscribeOptions>,
    ) -> napi::Result<Vec<String>> {
        guard_js(&env, || {
            let sound = Sound::Wav(wavs.iter().map(|w| w.to_vec()).collect());
            transcribe_sound(&self.shared, &sound, &engine_options(&options.0)?, None)
        })
    }

    /// The transcripts of mono samples recorded at `sampleRate` Hz (resampled to the features'
    /// rate), off the JavaScript thread.
    #[napi(ts_return_type = "Promise<string[]>")]
    pub fn transcribe_samples(
        &self,
        env: Env,
        samples: Vec<Float32Array>,
        sample_rate: u32,
        #[napi(ts_arg_type = "TranscribeOptions")] options: Strict<TranscribeOptions>,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<AsyncTask<Guarded<SoundWork>>> {
        let options = guard_js(&env, || engine_options(&options.0))?;
        let sound = Sound::Samples(samples.iter().map(|s| s.to_vec()).collect(), sample_rate);
        Ok(AsyncTask::new(Guarded(SoundWork {
            shared: self.shared.clone(),
            sound,
            options,
            cancel: cancel.map(|c| c.flag.clone()),
        })))
    }

    /// [`NativeModel::transcribe_samples`] on the calling thread.
    #[napi]
    pub fn transcribe_samples_sync(
        &self,
        env: Env,
        samples: Vec<Float32Array>,
        sample_rate: u32,
        #[napi(ts_arg_type = "TranscribeOptions")] options: Strict<TranscribeOptions>,
    ) -> napi::Result<Vec<String>> {
        guard_js(&env, || {
            let sound = Sound::Samples(samples.iter().map(|s| s.to_vec()).collect(), sample_rate);
            transcribe_sound(&self.shared, &sound, &engine_options(&options.0)?, None)
        })
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
