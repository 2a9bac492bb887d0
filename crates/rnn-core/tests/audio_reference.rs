//! rnn-core's log-mel features against torchaudio's (`fixtures/audio/log_mel.json`, made by
//! `scripts/fixtures/make_audio_fixtures.py` from the WAV files beside it): every value within
//! 1e-3, for two configurations (the default, and 80 Hamming-windowed bands over a 512-point FFT)
//! on spoken digits, a stereo chirp with noise, and a quiet tone ending in silence.

use std::path::PathBuf;

use rnn_core::audio::features::{FeatureConfig, FeatureExtractor};
use rnn_core::audio::wav::read_wav;

#[test]
fn log_mel_matches_torchaudio() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/audio");
    let text = std::fs::read_to_string(dir.join("log_mel.json")).expect("fixtures/audio/log_mel.json");
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let label = format!("{} / {}", case["wav"], case["name"]);
        let wav = read_wav(&std::fs::read(dir.join(case["wav"].as_str().unwrap())).unwrap()).unwrap();
        assert_eq!(wav.sample_rate, 16_000);
        let cfg = FeatureConfig::from_json(&case["config"]).unwrap();
        let n_mels = case["n_mels"].as_u64().unwrap() as usize;
        let frames = case["frames"].as_u64().unwrap() as usize;
        assert_eq!(cfg.n_mels, n_mels, "{label}");
        let offset = case["offset_samples"].as_u64().unwrap() as usize;
        let ours = FeatureExtractor::new(cfg).unwrap().features(&wav.samples[offset..]).unwrap();
        assert!(ours.len() >= frames * n_mels, "{label}: {} values for {frames} frames", ours.len());
        if offset == 0 {
            assert_eq!(ours.len(), frames * n_mels, "{label}: the frame count is torchaudio's");
        }
        let want: Vec<f64> = case["log_mel"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let worst = ours.iter().zip(&want).map(|(&a, &b)| (a as f64 - b).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-3, "{label}: largest difference {worst}");
    }
}
