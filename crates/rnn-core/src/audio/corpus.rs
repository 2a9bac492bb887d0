//! Transcribed audio on disk, read into a speech model's feature frames: a JSONL manifest (one
//! `{"audio": "path.wav", "text": "..."}` per line, paths relative to the manifest's folder;
//! other keys ignored, blank lines skipped) or a folder of WAV files each with its transcript
//! beside it (`a.wav` and `a.txt`, sorted by name). Files are decoded and featurised in parallel
//! by the engine's pool; every error names the manifest line or the file.

use std::path::{Path, PathBuf};

use crate::audio::features::FeatureExtractor;
use crate::audio::wav::read_wav;
use crate::{Error, Result};

/// One utterance of a corpus: its WAV file and transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub audio: PathBuf,
    pub text: String,
}

/// The largest manifest read (bytes).
pub const MAX_MANIFEST_BYTES: u64 = 1 << 30;

fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(format!("reading {:?}", path.display().to_string()), e))?;
    String::from_utf8(bytes).map_err(|e| {
        Error::Format(format!(
            "{:?}: not UTF-8 text (byte {})",
            path.display().to_string(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// The entries of a JSONL manifest.
pub fn read_manifest(path: &Path) -> Result<Vec<Entry>> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| Error::io(format!("reading {shown:?}"), e))?;
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(Error::Range(format!(
            "{shown:?}: the manifest has {} bytes, more than {MAX_MANIFEST_BYTES}",
            meta.len()
        )));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut entries = Vec::new();
    for (i, line) in read_text(path)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{shown:?} line {}", i + 1);
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| Error::Format(format!("{at}: not a JSON object ({e})")))?;
        let field = |k: &str| -> Result<String> {
            v.get(k).and_then(|x| x.as_str()).map(str::to_owned).ok_or_else(|| {
                Error::Format(format!(
                    "{at}: expected a string \"{k}\", got {}",
                    v.get(k).map_or("nothing".into(), |x| x.to_string())
                ))
            })
        };
        entries.push(Entry { audio: base.join(field("audio")?), text: field("text")? });
    }
    if entries.is_empty() {
        return Err(Error::Range(format!("{shown:?}: the manifest lists no utterances")));
    }
    Ok(entries)
}

/// The WAV files of a folder (`*.wav`, sorted by name), each with the transcript of the `.txt`
/// file of the same name (its whitespace at both ends trimmed).
pub fn read_folder(dir: &Path) -> Result<Vec<Entry>> {
    let shown = dir.display().to_string();
    let mut wavs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("reading the folder {shown:?}"), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")))
        .collect();
    wavs.sort();
    if wavs.is_empty() {
        return Err(Error::Range(format!("{shown:?}: the folder holds no .wav files")));
    }
    wavs.into_iter()
        .map(|audio| {
            let txt = audio.with_extension("txt");
            if !txt.is_file() {
                return Err(Error::Format(format!(
                    "{:?}: no transcript beside it (expected {:?})",
                    audio.display().to_string(),
                    txt.display().to_string()
                )));
            }
            Ok(Entry { text: read_text(&txt)?.trim().to_owned(), audio })
        })
        .collect()
}

/// The entries of `source`: a folder ([`read_folder`]) or a manifest ([`read_manifest`]).
pub fn read_entries(source: &Path) -> Result<Vec<Entry>> {
    if source.is_dir() {
        read_folder(source)
    } else {
        read_manifest(source)
    }
}

/// The feature frames `[T, n_mels]` of a WAV file's bytes (resampled to the configuration's rate).
pub fn wav_features(bytes: &[u8], extractor: &FeatureExtractor) -> Result<Vec<f32>> {
    let wav = read_wav(bytes)?;
    extractor.features_at(&wav.samples, wav.sample_rate)
}

/// The feature frames of every file, in order, computed in parallel; an error names its file.
pub fn file_features(paths: &[PathBuf], extractor: &FeatureExtractor) -> Result<Vec<Vec<f32>>> {
    let mut out: Vec<(usize, Option<Result<Vec<f32>>>)> = (0..paths.len()).map(|i| (i, None)).collect();
    crate::parallel::for_each_mut(&mut out, |(i, slot)| {
        let path = &paths[*i];
        let shown = path.display().to_string();
        let r = std::fs::read(path)
            .map_err(|e| Error::io(format!("reading {shown:?}"), e))
            .and_then(|bytes| wav_features(&bytes, extractor))
            .map_err(|e| match e {
                Error::Io { .. } => e,
                // The file named first: the engine's message says what is wrong with it.
                other => Error::Format(format!("{shown:?}: {other}")),
            });
        *slot = Some(r);
    });
    out.into_iter().map(|(_, r)| r.expect("every file read")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::features::FeatureConfig;

    #[test]
    fn manifests_and_folders_list_their_utterances() {
        let dir = std::env::temp_dir().join(format!("rnnkit-corpus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/audio/digits.wav");
        std::fs::copy(&fixture, dir.join("b.wav")).unwrap();
        std::fs::write(dir.join("b.txt"), "3 7 1\n").unwrap();
        std::fs::write(dir.join("m.jsonl"), "{\"audio\": \"b.wav\", \"text\": \"3 7\", \"voice\": \"m1\"}\n\n")
            .unwrap();
        let folder = read_entries(&dir).unwrap();
        assert_eq!(folder, vec![Entry { audio: dir.join("b.wav"), text: "3 7 1".into() }]);
        let manifest = read_entries(&dir.join("m.jsonl")).unwrap();
        assert_eq!(manifest, vec![Entry { audio: dir.join("b.wav"), text: "3 7".into() }]);
        let extractor = FeatureExtractor::new(FeatureConfig::default()).unwrap();
        let f = file_features(&[dir.join("b.wav")], &extractor).unwrap();
        assert!(f[0].len() > 40 && f[0].len().is_multiple_of(40) && f[0].iter().all(|v| v.is_finite()));

        std::fs::write(dir.join("bad.jsonl"), "{\"audio\": \"b.wav\"}\n").unwrap();
        let e = read_manifest(&dir.join("bad.jsonl")).unwrap_err().to_string();
        assert!(e.contains("line 1: expected a string \"text\""), "{e}");
        std::fs::write(dir.join("c.wav"), b"ID3 not a wav").unwrap();
        let e = read_folder(&dir).unwrap_err().to_string();
        assert!(e.contains("c.wav") && e.contains("no transcript"), "{e}");
        std::fs::write(dir.join("c.txt"), "1").unwrap();
        let e = file_features(&[dir.join("c.wav")], &extractor).unwrap_err().to_string();
        assert!(e.contains("c.wav") && e.contains("not a WAV file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
