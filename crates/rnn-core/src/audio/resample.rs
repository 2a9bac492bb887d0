//! Sample-rate conversion to the feature rate (16 kHz for speech models).
//!
//! `rubato`'s synchronous FFT resampler: the ratio between two integer rates is fixed, so the
//! signal is converted block by block in the frequency domain with a Blackman–Harris windowed
//! anti-aliasing filter (cut-off just below the lower Nyquist frequency). `process_all` trims
//! the filter's delay, so the output is aligned with the input to within half an input sample
//! (rates of the 44.1 kHz family come out exactly half an input sample late, at most 45 µs from
//! 11.025 kHz: nothing next to a 10 ms frame hop), and has `ceil(len · to / from)` samples.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use crate::audio::wav::{MAX_RATE, MIN_RATE};
use crate::{Error, Result};

/// Resamples mono `samples` from `from` Hz to `to` Hz (both within the WAV reader's rates).
/// Equal rates return the samples unchanged.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    for (name, rate) in [("fromRate", from), ("toRate", to)] {
        if !(MIN_RATE..=MAX_RATE).contains(&rate) {
            return Err(Error::Range(format!(
                "{name}: expected a sample rate of {MIN_RATE} to {MAX_RATE} Hz, got {rate}"
            )));
        }
    }
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let internal = |e: &dyn std::fmt::Display| Error::Config(format!("resampling {from} Hz to {to} Hz failed: {e}"));
    let mut resampler =
        Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Both).map_err(|e| internal(&e))?;
    let input = InterleavedSlice::new(samples, 1, samples.len()).map_err(|e| internal(&e))?;
    let output = resampler.process_all(&input, samples.len(), None).map_err(|e| internal(&e))?;
    Ok(output.take_data())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f64, phase: f64, n: usize) -> Vec<f32> {
        (0..n).map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64 + phase).sin() as f32).collect()
    }

    /// Amplitude and phase of `freq` in `x` (a least-squares fit of sin and cos on the middle
    /// half, away from the edges).
    fn amplitude_phase(x: &[f32], rate: u32, freq: f64) -> (f64, f64) {
        let (lo, hi) = (x.len() / 4, 3 * x.len() / 4);
        let (mut s, mut c) = (0.0, 0.0);
        for (i, &v) in x.iter().enumerate().take(hi).skip(lo) {
            let w = 2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64;
            s += v as f64 * w.sin();
            c += v as f64 * w.cos();
        }
        let n = (hi - lo) as f64;
        let (a, b) = (2.0 * s / n, 2.0 * c / n);
        ((a * a + b * b).sqrt(), b.atan2(a))
    }

    /// A 440 Hz and a 3 kHz tone keep their amplitude (within 0.5 %) through every common rate
    /// → 16 kHz, and their phase up to a delay of at most half an input sample (measured: 0 for
    /// 8, 32 and 48 kHz, exactly 0.5 for the 11.025 kHz family); the length is the ratio's.
    #[test]
    fn sines_keep_amplitude_and_phase() {
        for from in [8_000u32, 11_025, 22_050, 32_000, 44_100, 48_000] {
            for (freq, phase) in [(440.0, 0.3), (3_000.0, 1.1)] {
                let n = from as usize / 2;
                let out = resample(&sine(from, freq, phase, n), from, 16_000).unwrap();
                assert_eq!(out.len(), (n as u64 * 16_000).div_ceil(from as u64) as usize, "{from}");
                let (amp, ph) = amplitude_phase(&out, 16_000, freq);
                assert!((amp - 1.0).abs() < 5e-3, "{from} Hz, {freq} Hz: amplitude {amp}");
                // The delay the phase shows, in input samples (the same at both tones).
                let delay = (ph - phase) / (2.0 * std::f64::consts::PI * freq) * from as f64;
                assert!((-0.01..=0.51).contains(&delay), "{from} Hz, {freq} Hz: delay of {delay} input samples");
            }
        }
    }

    /// A 7 kHz tone at 44.1 kHz is above 16 kHz's band edge only after aliasing would fold it:
    /// a 10 kHz tone must be removed (it would alias to 6 kHz), not folded into the band.
    #[test]
    fn frequencies_above_the_new_nyquist_are_removed() {
        let out = resample(&sine(44_100, 10_000.0, 0.0, 22_050), 44_100, 16_000).unwrap();
        let rms = (out[2000..6000].iter().map(|v| (v * v) as f64).sum::<f64>() / 4000.0).sqrt();
        assert!(rms < 1e-2, "10 kHz left an rms of {rms} after resampling to 16 kHz");
    }

    #[test]
    fn equal_rates_and_bad_rates() {
        assert_eq!(resample(&[0.5, -0.5], 16_000, 16_000).unwrap(), vec![0.5, -0.5]);
        let e = resample(&[0.0], 0, 16_000).unwrap_err();
        assert_eq!(e.param(), Some("fromRate"), "{e}");
        assert!(resample(&[], 44_100, 16_000).unwrap().is_empty());
    }
}
