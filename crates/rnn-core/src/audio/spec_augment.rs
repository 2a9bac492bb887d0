//! SpecAugment-style masking of training features (Park et al., 2019, without time warping):
//! `freq_masks` bands of `0..=freq_mask_width` consecutive mel bands and `time_masks` spans of
//! `0..=time_mask_width` consecutive frames (at most `max_time_ratio` of the utterance each)
//! are set to `mask_value` — 0 by default, the mean of normalised features. Widths and
//! positions are drawn from the engine's seeded [`Rng`], so a seed fixes every mask.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;
use crate::{Error, Result};

/// The masks drawn per utterance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpecAugmentConfig {
    pub freq_masks: usize,
    /// Widest frequency mask (mel bands).
    pub freq_mask_width: usize,
    pub time_masks: usize,
    /// Widest time mask (frames).
    pub time_mask_width: usize,
    /// A time mask covers at most this fraction of the utterance's frames, so short
    /// utterances are not blanked out.
    pub max_time_ratio: f64,
    pub mask_value: f32,
}

impl Default for SpecAugmentConfig {
    fn default() -> Self {
        SpecAugmentConfig {
            freq_masks: 2,
            freq_mask_width: 8,
            time_masks: 2,
            time_mask_width: 20,
            max_time_ratio: 0.2,
            mask_value: 0.0,
        }
    }
}

impl SpecAugmentConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.max_time_ratio.is_finite() && (0.0..=1.0).contains(&self.max_time_ratio)) {
            return Err(Error::Range(format!(
                "specAugment.maxTimeRatio: expected a fraction in [0, 1], got {}",
                self.max_time_ratio
            )));
        }
        if !self.mask_value.is_finite() {
            return Err(Error::NonFinite(format!(
                "specAugment.maskValue: expected a finite number, got {}",
                self.mask_value
            )));
        }
        for (name, n) in [("freqMasks", self.freq_masks), ("timeMasks", self.time_masks)] {
            if n > 64 {
                return Err(Error::Range(format!("specAugment.{name}: expected at most 64 masks, got {n}")));
            }
        }
        Ok(())
    }

    /// Masks each utterance of a batch of features `[rows, steps, n_mels]` in place: only its
    /// real frames (`lengths[r]`, or all `steps`), so padding never shifts where masks fall.
    pub fn apply_to_batch(
        &self,
        values: &mut [f32],
        steps: usize,
        n_mels: usize,
        lengths: Option<&[usize]>,
        rng: &mut Rng,
    ) -> Result<()> {
        let row_len = steps * n_mels;
        if row_len == 0 || !values.len().is_multiple_of(row_len) {
            return Err(Error::Shape(format!(
                "features: expected rows of {steps} frames × {n_mels} bands, got {} values",
                values.len()
            )));
        }
        for (r, row) in values.chunks_exact_mut(row_len).enumerate() {
            let frames = lengths.map_or(steps, |l| l[r]);
            self.apply(&mut row[..frames * n_mels], n_mels, rng)?;
        }
        Ok(())
    }

    /// Masks `features` `[frames, n_mels]` in place.
    pub fn apply(&self, features: &mut [f32], n_mels: usize, rng: &mut Rng) -> Result<()> {
        self.validate()?;
        if n_mels == 0 || !features.len().is_multiple_of(n_mels) {
            return Err(Error::Shape(format!(
                "features: expected a whole number of {n_mels}-band frames, got {} values",
                features.len()
            )));
        }
        let frames = features.len() / n_mels;
        // A mask of width w starting at s, w drawn in 0..=max, s in 0..=len-w.
        let mut span = |len: usize, max: usize| {
            let w = rng.below(max.min(len) + 1);
            (rng.below(len - w + 1), w)
        };
        for _ in 0..self.freq_masks {
            let (start, width) = span(n_mels, self.freq_mask_width);
            for frame in features.chunks_exact_mut(n_mels) {
                frame[start..start + width].fill(self.mask_value);
            }
        }
        let widest_time = self.time_mask_width.min((self.max_time_ratio * frames as f64) as usize);
        for _ in 0..self.time_masks {
            let (start, width) = span(frames, widest_time);
            features[start * n_mels..(start + width) * n_mels].fill(self.mask_value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_seeded_bounded_and_leave_the_rest() {
        let (frames, n_mels) = (100, 40);
        let base: Vec<f32> = (0..frames * n_mels).map(|i| 1.0 + i as f32).collect();
        let cfg = SpecAugmentConfig {
            freq_masks: 1,
            freq_mask_width: 10,
            time_masks: 1,
            time_mask_width: 30,
            ..Default::default()
        };
        let run = |seed| {
            let mut f = base.clone();
            cfg.apply(&mut f, n_mels, &mut Rng::new(seed)).unwrap();
            f
        };
        assert_eq!(run(3), run(3), "one seed, one mask");
        assert!((0..20).any(|s| run(s) != run(s + 1)), "seeds differ");
        for seed in 0..50 {
            let f = run(seed);
            let masked_bands = (0..n_mels).filter(|&m| (0..frames).all(|t| f[t * n_mels + m] == 0.0)).count();
            let masked_frames =
                (0..frames).filter(|&t| f[t * n_mels..(t + 1) * n_mels].iter().all(|&v| v == 0.0)).count();
            assert!(masked_bands <= 10, "seed {seed}: {masked_bands} bands");
            // max_time_ratio 0.2 of 100 frames caps the 30-frame width at 20.
            assert!(masked_frames <= 20, "seed {seed}: {masked_frames} frames");
            for (i, (&a, &b)) in f.iter().zip(&base).enumerate() {
                assert!(a == b || a == 0.0, "value {i} changed to {a}");
            }
        }
    }

    #[test]
    fn batches_mask_each_utterance_within_its_frames() {
        // Two rows of 6 frames × 4 bands; the second has 3 real frames, then padding of 9.
        let (steps, n_mels) = (6, 4);
        let mut values: Vec<f32> = (0..2 * steps * n_mels).map(|i| 1.0 + i as f32).collect();
        for v in &mut values[steps * n_mels + 3 * n_mels..] {
            *v = 9.0;
        }
        let cfg = SpecAugmentConfig {
            freq_masks: 0,
            time_masks: 4,
            time_mask_width: 6,
            max_time_ratio: 1.0,
            ..Default::default()
        };
        let mut masked = values.clone();
        cfg.apply_to_batch(&mut masked, steps, n_mels, Some(&[6, 3]), &mut Rng::new(5)).unwrap();
        assert_ne!(masked, values, "something is masked");
        assert!(masked[steps * n_mels + 3 * n_mels..].iter().all(|&v| v == 9.0), "padding untouched");
        // The same draws as masking each utterance on its own, in order.
        let mut rng = Rng::new(5);
        let mut each = values.clone();
        cfg.apply(&mut each[..steps * n_mels], n_mels, &mut rng).unwrap();
        cfg.apply(&mut each[steps * n_mels..steps * n_mels + 3 * n_mels], n_mels, &mut rng).unwrap();
        assert_eq!(masked, each);
        assert!(cfg.apply_to_batch(&mut values[..7], steps, n_mels, None, &mut Rng::new(0)).is_err());
    }

    #[test]
    fn bad_configurations_and_shapes_are_refused() {
        let mut f = vec![0.0; 10];
        let bad = SpecAugmentConfig { max_time_ratio: 2.0, ..Default::default() };
        assert_eq!(bad.apply(&mut f, 5, &mut Rng::new(0)).unwrap_err().param(), Some("specAugment.maxTimeRatio"));
        assert!(SpecAugmentConfig::default().apply(&mut f, 3, &mut Rng::new(0)).is_err());
    }
}
