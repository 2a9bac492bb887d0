//! Audio in: WAV files to 16 kHz mono samples to normalised log-mel features, the input of a
//! speech network.
//!
//! The pipeline, one concept per file:
//! - [`wav`]: WAV bytes → mono `f32` samples in [-1, 1] and their rate (`hound`);
//! - [`resample`]: any rate → the feature rate (16 kHz by default; `rubato`'s FFT resampler);
//! - [`features`]: samples → log-mel filterbank frames `[T, n_mels]` (`realfft`), described by a
//!   [`features::FeatureConfig`] that a speech model stores in its metadata, so transcription
//!   computes exactly the features it was trained on;
//! - [`normalise`]: per-utterance or global (training-set) mean/variance normalisation;
//! - [`corpus`]: a JSONL manifest or a folder of transcribed WAV files, featurised in parallel;
//! - [`spec_augment`]: SpecAugment time and frequency masks for training, drawn from the
//!   engine's seeded [`crate::rng::Rng`].

pub mod corpus;
pub mod features;
pub mod normalise;
pub mod resample;
pub mod spec_augment;
pub mod wav;
