//! The audio front-end for JavaScript (`rnn_core::audio`): WAV bytes to mono samples
//! (`readWav`), rate conversion (`resampleAudio`) and log-mel features (`logMelFeatures`), each
//! on the calling thread and off it (`*Async`). Options are converted here and validated once,
//! by the engine's `FeatureConfig::validate`.

use napi::bindgen_prelude::{AsyncTask, Float32Array, Uint8Array};
use napi::Env;
use napi_derive::napi;
use rnn_core::audio::features::{FeatureConfig, FeatureExtractor, WindowFunction};
use rnn_core::audio::normalise::{FeatureStats, Normalise};
use rnn_core::audio::resample::resample;
use rnn_core::audio::wav::{read_wav, SampleEncoding, Wav};

use crate::errors::NodeError;
use crate::guard::{guard_js, Guarded, Work};
use crate::options::Strict;
use crate::strict_object;
use crate::train_options::within;

/// A decoded WAV file.
#[napi(object, object_from_js = false)]
pub struct WavAudio {
    /// Mono samples in [-1, 1] (channels averaged).
    pub samples: Float32Array,
    /// Samples per second of `samples`.
    pub sample_rate: u32,
    /// Channels in the file.
    pub channels: u32,
    /// Bits per stored sample: 8, 16, 24 or 32.
    pub bits_per_sample: u32,
    #[napi(ts_type = "'int' | 'float'")]
    pub encoding: String,
}

impl From<Wav> for WavAudio {
    fn from(w: Wav) -> Self {
        WavAudio {
            sample_rate: w.sample_rate,
            channels: u32::from(w.channels),
            bits_per_sample: u32::from(w.bits_per_sample),
            encoding: match w.encoding {
                SampleEncoding::Int => "int",
                SampleEncoding::Float => "float",
            }
            .to_string(),
            samples: Float32Array::new(w.samples),
        }
    }
}

/// The options of `logMelFeatures`; every field optional (defaults: 16 kHz, 25 ms windows,
/// 10 ms hop, 40 bands from 20 Hz to half the rate, Hann window, floor 1e-6, per-utterance
/// normalisation).
#[napi(object)]
#[derive(Default)]
pub struct LogMelOptions {
    /// The rate features are computed at (Hz); other input rates are resampled to it.
    pub sample_rate: Option<u32>,
    pub window_ms: Option<f64>,
    pub hop_ms: Option<f64>,
    /// FFT size in samples (≥ the window); default the window's length.
    pub n_fft: Option<u32>,
    pub n_mels: Option<u32>,
    pub fmin: Option<f64>,
    /// Default: half the sample rate.
    pub fmax: Option<f64>,
    #[napi(ts_type = "'hann' | 'hamming'")]
    pub window: Option<String>,
    pub log_floor: Option<f64>,
    /// `'utterance'` (default), `'none'`, or `'global'` with `mean` and `std`.
    #[napi(ts_type = "'utterance' | 'none' | 'global'")]
    pub normalise: Option<String>,
    /// Per-band means for `normalise: 'global'`.
    pub mean: Option<Vec<f64>>,
    /// Per-band standard deviations for `normalise: 'global'`.
    pub std: Option<Vec<f64>>,
}
strict_object!(
    LogMelOptions,
    "options",
    [
        "sampleRate",
        "windowMs",
        "hopMs",
        "nFft",
        "nMels",
        "fmin",
        "fmax",
        "window",
        "logFloor",
        "normalise",
        "mean",
        "std"
    ]
);

/// Log-mel frames, row-major `[frames, nMels]`.
#[napi(object, object_from_js = false)]
pub struct LogMelFeatures {
    pub data: Float32Array,
    pub frames: u32,
    pub n_mels: u32,
    /// The configuration that made them, in the JSON form a speech model stores.
    #[napi(ts_type = "Record<string, unknown>")]
    pub config: serde_json::Value,
}

fn config_error(message: String) -> NodeError {
    NodeError::from(rnn_core::Error::Config(message))
}

/// The engine's configuration for `o` (values validated by the engine).
pub fn feature_config(o: &LogMelOptions) -> Result<FeatureConfig, NodeError> {
    let d = FeatureConfig::default();
    let window = match o.window.as_deref() {
        None | Some("hann") => WindowFunction::Hann,
        Some("hamming") => WindowFunction::Hamming,
        Some(other) => {
            return Err(config_error(format!("options.window: expected 'hann' or 'hamming', got {other:?}")))
        }
    };
    let stats = || -> Result<FeatureStats, NodeError> {
        match (&o.mean, &o.std) {
            (Some(mean), Some(std)) => Ok(FeatureStats {
                mean: mean.iter().map(|&v| v as f32).collect(),
                std: std.iter().map(|&v| v as f32).collect(),
            }),
            _ => Err(config_error("options.normalise: 'global' needs options.mean and options.std".into())),
        }
    };
    let normalise = match o.normalise.as_deref() {
        Some("global") => Normalise::Global(stats()?),
        _ if o.mean.is_some() || o.std.is_some() => {
            return Err(config_error(
                "options.mean: means and deviations are only used with normalise: 'global'".into(),
            ))
        }
        None | Some("utterance") => Normalise::Utterance,
        Some("none") => Normalise::None,
        Some(other) => {
            return Err(config_error(format!(
                "options.normalise: expected 'utterance', 'none' or 'global', got {other:?}"
            )))
        }
    };
    let cfg = FeatureConfig {
        sample_rate: o.sample_rate.unwrap_or(d.sample_rate),
        window_ms: o.window_ms.unwrap_or(d.window_ms),
        hop_ms: o.hop_ms.unwrap_or(d.hop_ms),
        n_fft: o.n_fft.map(|n| n as usize),
        n_mels: o.n_mels.map_or(d.n_mels, |n| n as usize),
        fmin: o.fmin.unwrap_or(d.fmin),
        fmax: o.fmax,
        window,
        log_floor: o.log_floor.unwrap_or(d.log_floor),
        normalise,
    };
    cfg.validate().map_err(|e| within("options", e))?;
    Ok(cfg)
}

fn compute_features(samples: &[f32], rate: u32, cfg: FeatureConfig) -> Result<(Vec<f32>, FeatureConfig), NodeError> {
    let extractor = FeatureExtractor::new(cfg)?;
    let data = extractor.features_at(samples, rate)?;
    Ok((data, extractor.config().clone()))
}

fn to_js(data: Vec<f32>, cfg: &FeatureConfig) -> LogMelFeatures {
    LogMelFeatures {
        frames: (data.len() / cfg.n_mels) as u32,
        n_mels: cfg.n_mels as u32,
        config: cfg.to_json(),
        data: Float32Array::new(data),
    }
}

/// Decodes WAV bytes: 8/16/24/32-bit integer PCM or 32-bit float, plain or
/// WAVE_FORMAT_EXTENSIBLE, any channel count (averaged to mono). Anything else throws
/// `ERR_RNNKIT_FORMAT` naming what is wrong.
#[napi]
pub fn read_wav_sync(env: Env, bytes: Uint8Array) -> napi::Result<WavAudio> {
    guard_js(&env, || Ok(read_wav(&bytes)?.into()))
}

pub struct ReadWavWork {
    bytes: Vec<u8>,
}

impl Work for ReadWavWork {
    type Output = Wav;
    type JsValue = WavAudio;
    fn compute(&mut self) -> Result<Wav, NodeError> {
        Ok(read_wav(&self.bytes)?)
    }
    fn resolve(&mut self, _env: Env, output: Wav) -> napi::Result<WavAudio> {
        Ok(output.into())
    }
}

/// [`read_wav_sync`] off the JavaScript thread.
#[napi(ts_return_type = "Promise<WavAudio>")]
pub fn read_wav_async(bytes: Uint8Array) -> AsyncTask<Guarded<ReadWavWork>> {
    AsyncTask::new(Guarded(ReadWavWork { bytes: bytes.to_vec() }))
}

/// Resamples mono `samples` from `fromRate` to `toRate` Hz (rubato's FFT resampler).
#[napi]
pub fn resample_audio_sync(
    env: Env,
    samples: Float32Array,
    from_rate: u32,
    to_rate: u32,
) -> napi::Result<Float32Array> {
    guard_js(&env, || {
        let out = resample(&samples, from_rate, to_rate)?;
        Ok(Float32Array::new(out))
    })
}

pub struct ResampleWork {
    samples: Vec<f32>,
    from: u32,
    to: u32,
}

impl Work for ResampleWork {
    type Output = Vec<f32>;
    type JsValue = Float32Array;
    fn compute(&mut self) -> Result<Vec<f32>, NodeError> {
        Ok(resample(&self.samples, self.from, self.to)?)
    }
    fn resolve(&mut self, _env: Env, output: Vec<f32>) -> napi::Result<Float32Array> {
        Ok(Float32Array::new(output))
    }
}

/// [`resample_audio_sync`] off the JavaScript thread.
#[napi(ts_return_type = "Promise<Float32Array>")]
pub fn resample_audio_async(samples: Float32Array, from_rate: u32, to_rate: u32) -> AsyncTask<Guarded<ResampleWork>> {
    AsyncTask::new(Guarded(ResampleWork { samples: samples.to_vec(), from: from_rate, to: to_rate }))
}

/// Log-mel features of mono `samples` at `sampleRate` (resampled to `options.sampleRate` first).
#[napi]
pub fn log_mel_features_sync(
    env: Env,
    samples: Float32Array,
    sample_rate: u32,
    #[napi(ts_arg_type = "LogMelOptions")] options: Strict<LogMelOptions>,
) -> napi::Result<LogMelFeatures> {
    guard_js(&env, || {
        let (data, cfg) = compute_features(&samples, sample_rate, feature_config(&options.0)?)?;
        Ok(to_js(data, &cfg))
    })
}

pub struct LogMelWork {
    samples: Vec<f32>,
    rate: u32,
    config: Result<FeatureConfig, NodeError>,
}

impl Work for LogMelWork {
    type Output = (Vec<f32>, FeatureConfig);
    type JsValue = LogMelFeatures;
    fn compute(&mut self) -> Result<Self::Output, NodeError> {
        compute_features(&self.samples, self.rate, self.config.clone()?)
    }
    fn resolve(&mut self, _env: Env, (data, cfg): Self::Output) -> napi::Result<LogMelFeatures> {
        Ok(to_js(data, &cfg))
    }
}

/// [`log_mel_features_sync`] off the JavaScript thread (a bad option rejects the promise).
#[napi(ts_return_type = "Promise<LogMelFeatures>")]
pub fn log_mel_features_async(
    samples: Float32Array,
    sample_rate: u32,
    #[napi(ts_arg_type = "LogMelOptions")] options: Strict<LogMelOptions>,
) -> AsyncTask<Guarded<LogMelWork>> {
    AsyncTask::new(Guarded(LogMelWork {
        samples: samples.to_vec(),
        rate: sample_rate,
        config: feature_config(&options.0),
    }))
}
