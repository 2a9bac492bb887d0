//! Mean/variance normalisation of feature frames `[T, n_mels]`, per band.
//!
//! - `utterance`: each utterance by its own mean and standard deviation (robust to gain and
//!   channel; needs nothing stored);
//! - `global`: every utterance by the statistics of a training set ([`FeatureStats`], gathered
//!   with [`StatsAccumulator`] and stored in the model's feature configuration, so transcription
//!   normalises exactly as training did);
//! - `none`.
//!
//! A band's standard deviation is floored at [`MIN_STD`], so a constant band (silence, a single
//! frame) maps to 0 instead of dividing by zero.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The smallest standard deviation divided by (log-mel units).
pub const MIN_STD: f32 = 1e-3;

/// Per-band mean and standard deviation, `[n_mels]` each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureStats {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// How features are normalised (the `normalise` field of a feature configuration; JSON
/// `{"kind": "utterance"}`, `{"kind": "none"}` or `{"kind": "global", "mean": [...], "std": [...]}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Normalise {
    None,
    #[default]
    Utterance,
    Global(FeatureStats),
}

/// Sums of frames and of their squares in f64 (millions of frames keep their precision), to
/// compute [`FeatureStats`] over a data set one utterance at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsAccumulator {
    frames: u64,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
}

impl StatsAccumulator {
    pub fn new(n_mels: usize) -> Self {
        StatsAccumulator { frames: 0, sum: vec![0.0; n_mels], sum_sq: vec![0.0; n_mels] }
    }

    /// Adds the frames `[T, n_mels]` of one utterance.
    pub fn add(&mut self, features: &[f32]) -> Result<()> {
        let n = self.sum.len();
        if n == 0 || !features.len().is_multiple_of(n) {
            return Err(Error::Shape(format!(
                "features: expected a whole number of {n}-band frames, got {} values",
                features.len()
            )));
        }
        for frame in features.chunks_exact(n) {
            for ((s, q), &v) in self.sum.iter_mut().zip(&mut self.sum_sq).zip(frame) {
                *s += v as f64;
                *q += v as f64 * v as f64;
            }
        }
        self.frames += (features.len() / n) as u64;
        Ok(())
    }

    /// Frames added so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The mean and standard deviation of every frame added (population variance).
    pub fn finish(&self) -> Result<FeatureStats> {
        if self.frames == 0 {
            return Err(Error::Range("features: no frames to compute statistics from".into()));
        }
        let n = self.frames as f64;
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let std = self.sum_sq.iter().zip(&mean).map(|(q, m)| ((q / n - m * m).max(0.0)).sqrt() as f32).collect();
        Ok(FeatureStats { mean: mean.into_iter().map(|m| m as f32).collect(), std })
    }
}

impl FeatureStats {
    /// Checks the statistics fit `n_mels` bands and are finite, with positive deviations.
    pub fn validate(&self, n_mels: usize) -> Result<()> {
        if self.mean.len() != n_mels || self.std.len() != n_mels {
            return Err(Error::Shape(format!(
                "normalise: global statistics of {} means and {} deviations do not fit {n_mels} mel bands",
                self.mean.len(),
                self.std.len()
            )));
        }
        crate::error::check_finite("normalise.mean", &self.mean)?;
        crate::error::check_finite("normalise.std", &self.std)?;
        if let Some(i) = self.std.iter().position(|&s| s < 0.0) {
            return Err(Error::Range(format!(
                "normalise.std: deviations must be >= 0, got {} at index {i}",
                self.std[i]
            )));
        }
        Ok(())
    }

    /// `(x - mean) / max(std, MIN_STD)` for every frame of `features` `[T, n_mels]`.
    fn apply(&self, features: &mut [f32]) {
        let n = self.mean.len();
        for frame in features.chunks_exact_mut(n) {
            for ((v, m), s) in frame.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s.max(MIN_STD);
            }
        }
    }
}

impl Normalise {
    /// Normalises the frames `features` `[T, n_mels]` in place.
    pub fn apply(&self, features: &mut [f32], n_mels: usize) -> Result<()> {
        match self {
            Normalise::None => Ok(()),
            Normalise::Utterance => {
                let mut acc = StatsAccumulator::new(n_mels);
                acc.add(features)?;
                if acc.frames() > 0 {
                    acc.finish()?.apply(features);
                }
                Ok(())
            }
            Normalise::Global(stats) => {
                stats.validate(n_mels)?;
                stats.apply(features);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utterance_normalisation_gives_zero_mean_unit_variance_per_band() {
        // 3 frames of 2 bands: band 0 varies, band 1 is constant.
        let mut f = vec![1.0, 5.0, 2.0, 5.0, 3.0, 5.0];
        Normalise::Utterance.apply(&mut f, 2).unwrap();
        let s = (2.0f32 / 3.0).sqrt();
        let want = [-1.0 / s, 0.0, 0.0, 0.0, 1.0 / s, 0.0];
        for (a, b) in f.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{f:?}");
        }
    }

    #[test]
    fn global_statistics_accumulate_across_utterances_and_round_trip_as_json() {
        let mut acc = StatsAccumulator::new(2);
        acc.add(&[1.0, 10.0, 3.0, 10.0]).unwrap();
        acc.add(&[5.0, 10.0]).unwrap();
        let stats = acc.finish().unwrap();
        assert_eq!(stats.mean, vec![3.0, 10.0]);
        assert!((stats.std[0] - (8.0f32 / 3.0).sqrt()).abs() < 1e-6);
        assert_eq!(stats.std[1], 0.0);
        let norm = Normalise::Global(stats);
        let json = serde_json::to_string(&norm).unwrap();
        assert!(json.starts_with("{\"kind\":\"global\",\"mean\":[3.0,10.0]"), "{json}");
        assert_eq!(serde_json::from_str::<Normalise>(&json).unwrap(), norm);
        let mut f = vec![3.0, 11.0];
        norm.apply(&mut f, 2).unwrap();
        assert_eq!(f, vec![0.0, 1.0 / MIN_STD]);
        assert!(serde_json::from_str::<Normalise>("{\"kind\":\"global\",\"mean\":[],\"std\":[],\"x\":1}").is_err());
    }

    #[test]
    fn mismatched_or_bad_statistics_are_refused() {
        let stats = FeatureStats { mean: vec![0.0; 3], std: vec![1.0; 3] };
        let e = Normalise::Global(stats).apply(&mut [0.0; 4], 2).unwrap_err();
        assert!(e.to_string().contains("do not fit 2 mel bands"), "{e}");
        let nan = FeatureStats { mean: vec![f32::NAN], std: vec![1.0] };
        assert!(matches!(nan.validate(1), Err(Error::NonFinite(_))));
        assert!(StatsAccumulator::new(2).finish().is_err());
        assert!(StatsAccumulator::new(2).add(&[1.0]).is_err());
    }
}
