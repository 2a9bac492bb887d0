//! Log-mel filterbank features: mono samples → frames `[T, n_mels]`.
//!
//! Per frame `t` (a [`FeatureConfig`] fixes every number):
//! 1. the `win = round(rate · window_ms / 1000)` samples from `t · hop` (`hop` likewise from
//!    `hop_ms`), times a periodic Hann or Hamming window, zero-padded to `n_fft` (default `win`);
//!    only whole windows are framed, so `T = 1 + (N − win) / hop` (audio shorter than one window
//!    is an error);
//! 2. the power spectrum `|FFT|²` (`realfft`), `n_fft / 2 + 1` bins;
//! 3. `n_mels` triangular filters equally spaced on the HTK mel scale
//!    (`2595 · log10(1 + f / 700)`) between `fmin` and `fmax`, each triangle linear in Hz and
//!    unnormalised — the filterbank of torchaudio's `melscale_fbanks(norm=None, mel_scale="htk")`;
//! 4. `ln(max(energy, log_floor))`;
//! 5. the configured [`Normalise`]ation.
//!
//! With `n_fft = win` this is `torchaudio.transforms.MelSpectrogram(center=False, power=2)`
//! followed by the clamped log (the test fixtures, `scripts/fixtures/make_audio_fixtures.py`);
//! a larger `n_fft` centres torchaudio's window in its frame, which only delays its frames by
//! `(n_fft − win) / 2` samples (a frame's power spectrum does not depend on where the zero
//! padding sits).
//!
//! The FFT and the filterbank run in f64: the log magnifies rounding in quiet bands next to loud
//! ones, and the cost is negligible next to the network.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};

use crate::audio::normalise::Normalise;
use crate::audio::resample::resample;
use crate::audio::wav::{MAX_RATE, MIN_RATE};
use crate::{Error, Result};

/// The analysis window applied to each frame (periodic forms, as `torch.hann_window` /
/// `torch.hamming_window` make by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WindowFunction {
    /// `0.5 − 0.5 · cos(2πn / win)`.
    #[default]
    Hann,
    /// `0.54 − 0.46 · cos(2πn / win)`.
    Hamming,
}

/// Everything that determines the features; a speech model stores it (JSON, snake_case keys)
/// so transcription computes exactly what it was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureConfig {
    /// The rate features are computed at; other rates are resampled to it first (Hz).
    pub sample_rate: u32,
    /// Window length (ms); 25 by default.
    pub window_ms: f64,
    /// Hop between frames (ms); 10 by default.
    pub hop_ms: f64,
    /// FFT size (≥ the window in samples); `None`: the window's length.
    pub n_fft: Option<usize>,
    /// Mel bands; 40 by default.
    pub n_mels: usize,
    /// Lowest filter edge (Hz); 20 by default.
    pub fmin: f64,
    /// Highest filter edge (Hz); `None`: half the sample rate.
    pub fmax: Option<f64>,
    pub window: WindowFunction,
    /// Energies below it are raised to it before the log; 1e-6 by default.
    pub log_floor: f64,
    pub normalise: Normalise,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            sample_rate: 16_000,
            window_ms: 25.0,
            hop_ms: 10.0,
            n_fft: None,
            n_mels: 40,
            fmin: 20.0,
            fmax: None,
            window: WindowFunction::Hann,
            log_floor: 1e-6,
            normalise: Normalise::Utterance,
        }
    }
}

/// The most mel bands accepted.
pub const MAX_MELS: usize = 256;
/// The largest FFT accepted.
pub const MAX_FFT: usize = 1 << 16;

impl FeatureConfig {
    /// Window length in samples.
    pub fn window_length(&self) -> usize {
        (self.sample_rate as f64 * self.window_ms / 1000.0).round() as usize
    }

    /// Hop in samples.
    pub fn hop_length(&self) -> usize {
        (self.sample_rate as f64 * self.hop_ms / 1000.0).round() as usize
    }

    /// FFT size in samples.
    pub fn fft_size(&self) -> usize {
        self.n_fft.unwrap_or_else(|| self.window_length())
    }

    /// The upper filter edge in Hz.
    pub fn upper_edge(&self) -> f64 {
        self.fmax.unwrap_or(self.sample_rate as f64 / 2.0)
    }

    /// Frames of `samples` samples (at `sample_rate`): whole windows only.
    pub fn frames(&self, samples: usize) -> usize {
        let win = self.window_length();
        if samples < win {
            0
        } else {
            1 + (samples - win) / self.hop_length()
        }
    }

    /// Checks every field (messages name the JavaScript option).
    pub fn validate(&self) -> Result<()> {
        if !(MIN_RATE..=MAX_RATE).contains(&self.sample_rate) {
            return Err(Error::Range(format!(
                "sampleRate: expected {MIN_RATE} to {MAX_RATE} Hz, got {}",
                self.sample_rate
            )));
        }
        for (name, ms) in [("windowMs", self.window_ms), ("hopMs", self.hop_ms)] {
            if !(ms.is_finite() && ms > 0.0 && ms <= 1000.0) {
                return Err(Error::Range(format!("{name}: expected a duration in (0, 1000] ms, got {ms}")));
            }
        }
        let win = self.window_length();
        if win < 2 {
            return Err(Error::Range(format!(
                "windowMs: {} ms is {win} samples at {} Hz; a window needs at least 2",
                self.window_ms, self.sample_rate
            )));
        }
        if self.hop_length() == 0 {
            return Err(Error::Range(format!(
                "hopMs: {} ms is less than one sample at {} Hz",
                self.hop_ms, self.sample_rate
            )));
        }
        if let Some(n) = self.n_fft {
            if n < win || n > MAX_FFT {
                return Err(Error::Range(format!("nFft: expected the window's {win} samples to {MAX_FFT}, got {n}")));
            }
        }
        if !(1..=MAX_MELS).contains(&self.n_mels) {
            return Err(Error::Range(format!("nMels: expected 1 to {MAX_MELS}, got {}", self.n_mels)));
        }
        let nyquist = self.sample_rate as f64 / 2.0;
        if !(self.fmin.is_finite() && self.fmin >= 0.0 && self.fmin < nyquist) {
            return Err(Error::Range(format!("fmin: expected 0 <= fmin < {nyquist} Hz, got {}", self.fmin)));
        }
        let fmax = self.upper_edge();
        if !(fmax.is_finite() && fmax > self.fmin && fmax <= nyquist) {
            return Err(Error::Range(format!(
                "fmax: expected fmin ({}) < fmax <= {nyquist} Hz, got {fmax}",
                self.fmin
            )));
        }
        if !(self.log_floor.is_finite() && self.log_floor > 0.0) {
            return Err(Error::Range(format!("logFloor: expected a finite number > 0, got {}", self.log_floor)));
        }
        if let Normalise::Global(stats) = &self.normalise {
            stats.validate(self.n_mels)?;
        }
        Ok(())
    }

    /// The JSON form stored in model metadata.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a feature configuration is plain data")
    }

    /// Reads the JSON form (unknown keys refused), validated.
    pub fn from_json(v: &serde_json::Value) -> Result<Self> {
        let cfg: FeatureConfig =
            serde_json::from_value(v.clone()).map_err(|e| Error::Format(format!("features: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// HTK mel scale.
fn hz_to_mel(f: f64) -> f64 {
    2595.0 * (1.0 + f / 700.0).log10()
}

fn mel_to_hz(m: f64) -> f64 {
    700.0 * (10f64.powf(m / 2595.0) - 1.0)
}

/// One triangular filter: its first FFT bin and its weights from there.
#[derive(Debug, Clone)]
struct Filter {
    first_bin: usize,
    weights: Vec<f64>,
}

/// torchaudio's `melscale_fbanks(n_freqs, fmin, fmax, n_mels, rate, norm=None, "htk")`, kept
/// sparse: bin frequencies `linspace(0, rate // 2, n_freqs)`, filter corners at `n_mels + 2`
/// points equally spaced in mel, each weight `max(0, min(rising, falling))`.
fn mel_filters(cfg: &FeatureConfig) -> Result<Vec<Filter>> {
    let n_freqs = cfg.fft_size() / 2 + 1;
    let top = (cfg.sample_rate / 2) as f64;
    let bin_hz = |k: usize| if n_freqs == 1 { 0.0 } else { top * k as f64 / (n_freqs - 1) as f64 };
    let (m_lo, m_hi) = (hz_to_mel(cfg.fmin), hz_to_mel(cfg.upper_edge()));
    let corners: Vec<f64> =
        (0..cfg.n_mels + 2).map(|i| mel_to_hz(m_lo + (m_hi - m_lo) * i as f64 / (cfg.n_mels + 1) as f64)).collect();
    let mut filters = Vec::with_capacity(cfg.n_mels);
    for m in 0..cfg.n_mels {
        let (lo, mid, hi) = (corners[m], corners[m + 1], corners[m + 2]);
        let weight = |f: f64| ((f - lo) / (mid - lo)).min((hi - f) / (hi - mid)).max(0.0);
        let bins: Vec<usize> = (0..n_freqs).filter(|&k| weight(bin_hz(k)) > 0.0).collect();
        let (Some(&first), Some(&last)) = (bins.first(), bins.last()) else {
            return Err(Error::Range(format!(
                "nMels: {} bands between {} and {} Hz leave band {m} without an FFT bin of the {}-point FFT; \
                 use fewer bands or a larger nFft",
                cfg.n_mels,
                cfg.fmin,
                cfg.upper_edge(),
                cfg.fft_size()
            )));
        };
        filters.push(Filter { first_bin: first, weights: (first..=last).map(|k| weight(bin_hz(k))).collect() });
    }
    Ok(filters)
}

/// A validated configuration with its window, filterbank and FFT plan made once, for many
/// utterances. `Send + Sync`: one extractor serves every thread.
pub struct FeatureExtractor {
    config: FeatureConfig,
    window: Vec<f64>,
    filters: Vec<Filter>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl std::fmt::Debug for FeatureExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureExtractor").field("config", &self.config).finish_non_exhaustive()
    }
}

impl FeatureExtractor {
    pub fn new(config: FeatureConfig) -> Result<Self> {
        config.validate()?;
        let win = config.window_length();
        let (a, b) = match config.window {
            WindowFunction::Hann => (0.5, 0.5),
            WindowFunction::Hamming => (0.54, 0.46),
        };
        let window = (0..win).map(|n| a - b * (2.0 * std::f64::consts::PI * n as f64 / win as f64).cos()).collect();
        let filters = mel_filters(&config)?;
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(config.fft_size());
        Ok(FeatureExtractor { config, window, filters, fft })
    }

    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// Log-mel frames `[T, n_mels]` of `samples` at the configuration's rate, before
    /// normalisation (what global statistics are gathered from).
    pub fn log_mel(&self, samples: &[f32]) -> Result<Vec<f32>> {
        crate::error::check_finite("samples", samples)?;
        let cfg = &self.config;
        let frames = cfg.frames(samples.len());
        if frames == 0 {
            return Err(Error::Range(format!(
                "samples: {} samples is shorter than one {} ms window ({} samples at {} Hz)",
                samples.len(),
                cfg.window_ms,
                cfg.window_length(),
                cfg.sample_rate
            )));
        }
        let (win, hop) = (cfg.window_length(), cfg.hop_length());
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f64; spectrum.len()];
        let mut out = Vec::with_capacity(frames * cfg.n_mels);
        let floor = cfg.log_floor;
        for t in 0..frames {
            let frame = &samples[t * hop..t * hop + win];
            for ((x, &s), &w) in input.iter_mut().zip(frame).zip(&self.window) {
                *x = s as f64 * w;
            }
            input[win..].fill(0.0);
            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .map_err(|e| Error::Config(format!("features: FFT failed: {e}")))?;
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for f in &self.filters {
                let e: f64 = f.weights.iter().zip(&power[f.first_bin..]).map(|(w, p)| w * p).sum();
                out.push(e.max(floor).ln() as f32);
            }
        }
        Ok(out)
    }

    /// Normalised log-mel frames `[T, n_mels]` of `samples` at the configuration's rate.
    pub fn features(&self, samples: &[f32]) -> Result<Vec<f32>> {
        let mut f = self.log_mel(samples)?;
        self.config.normalise.apply(&mut f, self.config.n_mels)?;
        Ok(f)
    }

    /// [`Self::features`] of `samples` at `rate`, resampled to the configuration's rate first.
    pub fn features_at(&self, samples: &[f32], rate: u32) -> Result<Vec<f32>> {
        if rate == self.config.sample_rate {
            self.features(samples)
        } else {
            self.features(&resample(samples, rate, self.config.sample_rate)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, freq: f64, n: usize) -> Vec<f32> {
        (0..n).map(|i| (0.5 * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as f32).collect()
    }

    fn raw(cfg: FeatureConfig) -> FeatureConfig {
        FeatureConfig { normalise: Normalise::None, ..cfg }
    }

    #[test]
    fn frame_count_and_shape_follow_window_and_hop() {
        let ex = FeatureExtractor::new(raw(FeatureConfig::default())).unwrap();
        assert_eq!((ex.config().window_length(), ex.config().hop_length(), ex.config().fft_size()), (400, 160, 400));
        let f = ex.log_mel(&tone(16_000, 1000.0, 16_000)).unwrap();
        assert_eq!(f.len(), (1 + (16_000 - 400) / 160) * 40);
        let e = ex.log_mel(&[0.0; 399]).unwrap_err();
        assert!(e.to_string().starts_with("samples: 399 samples is shorter than one 25 ms window"), "{e}");
    }

    /// A pure tone's energy lands in the band whose centre is nearest to it.
    #[test]
    fn a_tone_peaks_in_its_mel_band() {
        let cfg = raw(FeatureConfig { n_mels: 64, ..FeatureConfig::default() });
        let ex = FeatureExtractor::new(cfg.clone()).unwrap();
        let f = ex.log_mel(&tone(16_000, 2000.0, 4000)).unwrap();
        let frame = &f[5 * 64..6 * 64];
        let peak = (0..64).max_by(|&a, &b| frame[a].total_cmp(&frame[b])).unwrap();
        let (lo, hi) = (hz_to_mel(cfg.fmin), hz_to_mel(8000.0));
        let centre = |m: usize| mel_to_hz(lo + (hi - lo) * (m + 1) as f64 / 65.0);
        let nearest =
            (0..64).min_by(|&a, &b| (centre(a) - 2000.0).abs().total_cmp(&(centre(b) - 2000.0).abs())).unwrap();
        assert!(peak.abs_diff(nearest) <= 1, "peak band {peak}, nearest centre {nearest}");
    }

    #[test]
    fn silence_hits_the_log_floor_and_other_rates_are_resampled() {
        let ex = FeatureExtractor::new(raw(FeatureConfig::default())).unwrap();
        let f = ex.log_mel(&[0.0; 800]).unwrap();
        assert!(f.iter().all(|&v| (v as f64 - 1e-6f64.ln()).abs() < 1e-5));
        let at44 = ex.features_at(&tone(44_100, 1000.0, 44_100), 44_100).unwrap();
        assert_eq!(at44.len() / 40, 1 + (16_000 - 400) / 160);
    }

    #[test]
    fn invalid_configurations_name_their_option() {
        let bad = |cfg: FeatureConfig| FeatureExtractor::new(cfg).unwrap_err().param().map(str::to_owned);
        let d = FeatureConfig::default;
        assert_eq!(bad(FeatureConfig { n_mels: 0, ..d() }).as_deref(), Some("nMels"));
        assert_eq!(bad(FeatureConfig { n_mels: 200, ..d() }).as_deref(), Some("nMels"), "empty bands");
        assert_eq!(bad(FeatureConfig { fmax: Some(9000.0), ..d() }).as_deref(), Some("fmax"));
        assert_eq!(bad(FeatureConfig { fmin: -1.0, ..d() }).as_deref(), Some("fmin"));
        assert_eq!(bad(FeatureConfig { n_fft: Some(256), ..d() }).as_deref(), Some("nFft"));
        assert_eq!(bad(FeatureConfig { hop_ms: f64::NAN, ..d() }).as_deref(), Some("hopMs"));
        assert_eq!(bad(FeatureConfig { log_floor: 0.0, ..d() }).as_deref(), Some("logFloor"));
        assert_eq!(bad(FeatureConfig { sample_rate: 10, ..d() }).as_deref(), Some("sampleRate"));
        let ex = FeatureExtractor::new(d()).unwrap();
        assert!(matches!(ex.log_mel(&[f32::NAN; 400]), Err(Error::NonFinite(_))));
    }

    #[test]
    fn the_configuration_round_trips_as_json_and_refuses_unknown_keys() {
        let cfg = FeatureConfig { n_mels: 80, window: WindowFunction::Hamming, ..FeatureConfig::default() };
        let json = cfg.to_json();
        assert_eq!(json["normalise"]["kind"], "utterance");
        assert_eq!(FeatureConfig::from_json(&json).unwrap(), cfg);
        let partial = serde_json::json!({ "n_mels": 64 });
        assert_eq!(FeatureConfig::from_json(&partial).unwrap().n_mels, 64);
        let e = FeatureConfig::from_json(&serde_json::json!({ "n_mel": 64 })).unwrap_err();
        assert!(e.to_string().contains("n_mel"), "{e}");
    }
}
