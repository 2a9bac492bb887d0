//! WAV files in: RIFF/WAVE bytes → mono `f32` samples in [-1, 1] and their sample rate.
//!
//! Decoding is `hound`'s. Supported: integer PCM of 8, 16, 24 or 32 bits and 32-bit IEEE float,
//! in the plain `fmt ` form or `WAVE_FORMAT_EXTENSIBLE`, any number of channels (mixed down to
//! mono by averaging, so a stereo file of one voice keeps its level), rates from
//! [`MIN_RATE`] to [`MAX_RATE`]. Everything else is refused with an `ERR_RNNKIT_FORMAT` error
//! that names what is wrong: not RIFF/WAVE at all (with the bytes found), RF64, a compressed
//! encoding (A-law, µ-law, ADPCM, MP3, ... by its format tag), a header or data chunk cut short
//! (how many bytes the header declares and how many the file holds), inconsistent fields.
//!
//! Before `hound` sees the bytes, the chunk list is walked here: that gives the messages their
//! facts (the format tag, the declared data length) and refuses the field combinations for which
//! `hound` would divide by zero (a zero block alignment), so no input can panic.

use std::io::Cursor;

use crate::{Error, Result};

/// The lowest sample rate accepted (Hz): below it no speech band survives.
pub const MIN_RATE: u32 = 1_000;
/// The highest sample rate accepted (Hz).
pub const MAX_RATE: u32 = 384_000;

/// How the samples of a file were stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleEncoding {
    /// Integer PCM (8-bit is unsigned in WAV, the others signed).
    Int,
    /// 32-bit IEEE float.
    Float,
}

/// A decoded WAV file: mono samples and what the file held.
#[derive(Debug, Clone, PartialEq)]
pub struct Wav {
    /// Mono samples in [-1, 1] (float files may exceed it; they are passed through), `[frames]`.
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels in the file (mixed down to one in `samples`).
    pub channels: u16,
    /// Bits per stored sample (8, 16, 24 or 32).
    pub bits_per_sample: u16,
    /// Integer or float samples.
    pub encoding: SampleEncoding,
}

impl Wav {
    /// The duration in seconds.
    pub fn duration(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate as f64
    }
}

/// The `fmt ` and `data` facts found by walking the chunk list.
struct Layout {
    format_tag: u16,
    channels: u16,
    sample_rate: u32,
    block_align: u16,
    bits_per_sample: u16,
    /// The data chunk's declared length and the bytes the file actually holds after its header.
    data: Option<(u32, usize)>,
}

const WAVE_FORMAT_PCM: u16 = 0x0001;
const WAVE_FORMAT_IEEE_FLOAT: u16 = 0x0003;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

fn format_error(message: impl Into<String>) -> Error {
    Error::Format(format!("wav: {}", message.into()))
}

/// The encoding a format tag names, for the messages of refused files.
fn format_tag_name(tag: u16) -> String {
    let name = match tag {
        0x0002 => "Microsoft ADPCM",
        0x0006 => "A-law",
        0x0007 => "µ-law",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0050 => "MPEG",
        0x0055 => "MP3",
        0x00FF => "AAC",
        0x1610 => "AAC (ADTS)",
        0xF1AC => "FLAC",
        _ => "",
    };
    if name.is_empty() {
        format!("format tag 0x{tag:04X}")
    } else {
        format!("{name} (format tag 0x{tag:04X})")
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The first bytes of a refused file, printable characters as themselves.
fn show_head(bytes: &[u8]) -> String {
    let head: String =
        bytes.iter().take(12).map(|&c| if (0x20..0x7f).contains(&c) { c as char } else { '.' }).collect();
    format!("{head:?}")
}

/// Walks the RIFF chunks up to `data`, checking what `hound` would trip on.
fn layout(bytes: &[u8]) -> Result<Layout> {
    if bytes.len() < 12 {
        return Err(format_error(format!(
            "not a WAV file: {} bytes is shorter than the 12-byte RIFF/WAVE header",
            bytes.len()
        )));
    }
    if &bytes[0..4] == b"RF64" {
        return Err(format_error("RF64 (64-bit WAV) is not supported; convert to a plain RIFF WAV"));
    }
    if &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(format_error(format!(
            "not a WAV file: expected \"RIFF\" then \"WAVE\" in the first 12 bytes, got {}",
            show_head(bytes)
        )));
    }
    let mut at = 12;
    let mut fmt: Option<(u16, u16, u32, u16, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32_at(bytes, at + 4);
        let body = at + 8;
        let available = bytes.len() - body;
        if id == b"fmt " {
            if len < 16 {
                return Err(format_error(format!("the fmt chunk is {len} bytes, at least 16 are needed")));
            }
            if available < 16 {
                return Err(format_error(format!(
                    "truncated: the fmt chunk declares {len} bytes, the file holds {available}"
                )));
            }
            let mut tag = u16_at(bytes, body);
            let channels = u16_at(bytes, body + 2);
            let rate = u32_at(bytes, body + 4);
            let block_align = u16_at(bytes, body + 12);
            let bits = u16_at(bytes, body + 14);
            if tag == WAVE_FORMAT_EXTENSIBLE && len >= 40 && available >= 40 {
                // The real encoding is the first two bytes of the sub-format GUID.
                tag = u16_at(bytes, body + 24);
            }
            fmt = Some((tag, channels, rate, block_align, bits));
        } else if id == b"data" {
            let Some((format_tag, channels, sample_rate, block_align, bits_per_sample)) = fmt else {
                return Err(format_error("the data chunk comes before any fmt chunk"));
            };
            return Ok(Layout {
                format_tag,
                channels,
                sample_rate,
                block_align,
                bits_per_sample,
                data: Some((len, available)),
            });
        }
        // Chunks are padded to an even length.
        at = body.saturating_add(len as usize).saturating_add(len as usize & 1);
    }
    match fmt {
        None => Err(format_error("no fmt chunk: the file is truncated or not a WAV file")),
        Some((format_tag, channels, sample_rate, block_align, bits_per_sample)) => {
            Ok(Layout { format_tag, channels, sample_rate, block_align, bits_per_sample, data: None })
        }
    }
}

/// Checks the format fields and the data chunk's length before decoding.
fn check_layout(l: &Layout) -> Result<SampleEncoding> {
    let encoding = match l.format_tag {
        WAVE_FORMAT_PCM => SampleEncoding::Int,
        WAVE_FORMAT_IEEE_FLOAT => SampleEncoding::Float,
        WAVE_FORMAT_EXTENSIBLE => {
            return Err(format_error("the WAVE_FORMAT_EXTENSIBLE fmt chunk is cut short (it needs 40 bytes)"))
        }
        tag => {
            return Err(format_error(format!(
                "unsupported encoding {}; only integer PCM (8/16/24/32-bit) and 32-bit float are read",
                format_tag_name(tag)
            )))
        }
    };
    if l.channels == 0 {
        return Err(format_error("the fmt chunk declares 0 channels"));
    }
    let bits_ok = match encoding {
        SampleEncoding::Int => matches!(l.bits_per_sample, 8 | 16 | 24 | 32),
        SampleEncoding::Float => l.bits_per_sample == 32,
    };
    if !bits_ok {
        let what = if encoding == SampleEncoding::Int { "integer PCM" } else { "float" };
        return Err(format_error(format!(
            "unsupported {what} sample size of {} bits; supported: integer 8, 16, 24, 32 and float 32",
            l.bits_per_sample
        )));
    }
    let bytes_per_frame = u32::from(l.bits_per_sample / 8) * u32::from(l.channels);
    if u32::from(l.block_align) != bytes_per_frame {
        return Err(format_error(format!(
            "inconsistent fmt chunk: block alignment {} for {} channels of {} bits (expected {bytes_per_frame})",
            l.block_align, l.channels, l.bits_per_sample
        )));
    }
    if !(MIN_RATE..=MAX_RATE).contains(&l.sample_rate) {
        return Err(format_error(format!(
            "unsupported sample rate {} Hz; expected {MIN_RATE} to {MAX_RATE}",
            l.sample_rate
        )));
    }
    match l.data {
        None => Err(format_error("no data chunk: the file is truncated or holds no audio")),
        Some((declared, available)) if (declared as usize) > available => Err(format_error(format!(
            "truncated: the data chunk declares {declared} bytes, the file holds {available}"
        ))),
        Some((declared, _)) if !declared.is_multiple_of(bytes_per_frame) => Err(format_error(format!(
            "the data chunk's {declared} bytes are not a whole number of {bytes_per_frame}-byte frames"
        ))),
        Some(_) => Ok(encoding),
    }
}

fn hound_error(e: hound::Error) -> Error {
    match e {
        hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            format_error("truncated: the file ends inside a chunk")
        }
        hound::Error::IoError(io) => format_error(format!("unreadable: {io}")),
        hound::Error::FormatError(m) => format_error(format!("malformed header: {m}")),
        hound::Error::Unsupported => format_error("unsupported encoding"),
        other => format_error(other.to_string()),
    }
}

/// Decodes a WAV file held in memory (see the module doc for what is supported).
pub fn read_wav(bytes: &[u8]) -> Result<Wav> {
    let l = layout(bytes)?;
    let encoding = check_layout(&l)?;
    let mut reader = hound::WavReader::new(Cursor::new(bytes)).map_err(hound_error)?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    let frames = reader.duration() as usize;
    let mut samples = Vec::with_capacity(frames);
    // Integer samples scaled by 2^(bits-1): full scale maps to [-1, 1).
    let scale = f64::from(1u32 << (spec.bits_per_sample - 1)).recip() as f32;
    let mut acc = 0.0f32;
    let mut in_frame = 0;
    let mut push = |v: f32| {
        acc += v;
        in_frame += 1;
        if in_frame == channels {
            samples.push(acc / channels as f32);
            acc = 0.0;
            in_frame = 0;
        }
    };
    match encoding {
        SampleEncoding::Int => {
            for s in reader.samples::<i32>() {
                push(s.map_err(hound_error)? as f32 * scale);
            }
        }
        SampleEncoding::Float => {
            for (i, s) in reader.samples::<f32>().enumerate() {
                let v = s.map_err(hound_error)?;
                if !v.is_finite() {
                    return Err(format_error(format!("sample {i} is {v}; float samples must be finite")));
                }
                push(v);
            }
        }
    }
    Ok(Wav {
        samples,
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        bits_per_sample: spec.bits_per_sample,
        encoding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAV file written by `hound` from interleaved integer samples.
    fn write_int(channels: u16, rate: u32, bits: u16, samples: &[i32]) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        };
        let mut out = Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        out.into_inner()
    }

    fn message(r: Result<Wav>) -> String {
        match r {
            Err(e @ Error::Format(_)) => e.to_string(),
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn reads_16_bit_mono_and_scales_to_unit_range() {
        let wav = read_wav(&write_int(1, 16_000, 16, &[0, 16384, -32768, 32767])).unwrap();
        assert_eq!((wav.sample_rate, wav.channels, wav.bits_per_sample), (16_000, 1, 16));
        assert_eq!(wav.samples, vec![0.0, 0.5, -1.0, 32767.0 / 32768.0]);
    }

    #[test]
    fn stereo_is_averaged_to_mono() {
        let wav = read_wav(&write_int(2, 44_100, 16, &[16384, 0, -16384, -16384])).unwrap();
        assert_eq!(wav.samples, vec![0.25, -0.5]);
        assert_eq!(wav.channels, 2);
    }

    #[test]
    fn eight_and_twenty_four_bit_and_float_are_read() {
        // hound writes 8-bit as unsigned with the +128 offset, as WAV requires.
        let w8 = read_wav(&write_int(1, 8_000, 8, &[64, -128])).unwrap();
        assert_eq!(w8.samples, vec![0.5, -1.0]);
        let w24 = read_wav(&write_int(1, 48_000, 24, &[1 << 22, -(1 << 23)])).unwrap();
        assert_eq!(w24.samples, vec![0.5, -1.0]);
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 22_050,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut out = Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        w.write_sample(0.25f32).unwrap();
        w.write_sample(-0.75f32).unwrap();
        w.finalize().unwrap();
        let f = read_wav(&out.into_inner()).unwrap();
        assert_eq!((f.samples.clone(), f.encoding), (vec![0.25, -0.75], SampleEncoding::Float));
    }

    /// WAVE_FORMAT_EXTENSIBLE (hound writes it for 24-bit and multichannel files).
    #[test]
    fn extensible_format_is_read() {
        let bytes = write_int(3, 16_000, 24, &[3 << 20, 0, 0]);
        assert_eq!(u16_at(&bytes, 20), WAVE_FORMAT_EXTENSIBLE, "the writer used the extensible form");
        assert_eq!(read_wav(&bytes).unwrap().samples, vec![0.125]);
    }

    #[test]
    fn non_wav_bytes_are_refused_with_what_was_found() {
        assert!(message(read_wav(b"")).contains("0 bytes is shorter"));
        let m = message(read_wav(b"ID3\x03\x00\x00\x00\x00\x00\x00\x00\x00mp3 data"));
        assert!(m.starts_with("wav: not a WAV file") && m.contains("\"ID3"), "{m}");
        assert!(message(read_wav(b"RF64\xff\xff\xff\xffWAVEds64")).contains("RF64"));
    }

    #[test]
    fn truncated_files_say_what_is_missing() {
        let bytes = write_int(1, 16_000, 16, &[1; 100]);
        let m = message(read_wav(&bytes[..bytes.len() - 10]));
        assert!(m.contains("truncated: the data chunk declares 200 bytes, the file holds 190"), "{m}");
        assert!(message(read_wav(&bytes[..30])).contains("truncated"));
        assert!(message(read_wav(&bytes[..12])).contains("no fmt chunk"));
        assert!(message(read_wav(&bytes[..40])).contains("no data chunk"));
    }

    #[test]
    fn unsupported_encodings_are_named() {
        let mut bytes = write_int(1, 8_000, 16, &[0; 8]);
        bytes[20..22].copy_from_slice(&7u16.to_le_bytes());
        assert!(message(read_wav(&bytes)).contains("µ-law (format tag 0x0007)"));
        bytes[20..22].copy_from_slice(&0x55u16.to_le_bytes());
        assert!(message(read_wav(&bytes)).contains("MP3"));
        let mut bad_rate = write_int(1, 8_000, 16, &[0; 8]);
        bad_rate[24..28].copy_from_slice(&100u32.to_le_bytes());
        assert!(message(read_wav(&bad_rate)).contains("sample rate 100 Hz"));
        let mut no_channels = write_int(1, 8_000, 16, &[0; 8]);
        no_channels[22..24].copy_from_slice(&0u16.to_le_bytes());
        assert!(message(read_wav(&no_channels)).contains("0 channels"));
        let mut odd_bits = write_int(1, 8_000, 16, &[0; 8]);
        odd_bits[34..36].copy_from_slice(&12u16.to_le_bytes());
        assert!(message(read_wav(&odd_bits)).contains("12 bits"));
    }

    /// Every single-byte change and every cut of a small file decodes or fails with a format
    /// error, never a panic.
    #[test]
    fn mutated_and_cut_files_never_panic() {
        let base = write_int(2, 16_000, 16, &(0..64).map(|i| i * 300 - 9000).collect::<Vec<_>>());
        let mut rng = crate::rng::Rng::new(7);
        for cut in 0..base.len() {
            let _ = read_wav(&base[..cut]);
        }
        for _ in 0..4000 {
            let mut b = base.clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(44);
                b[at] = rng.below(256) as u8;
            }
            match read_wav(&b) {
                Ok(w) => assert!(w.samples.iter().all(|v| v.is_finite())),
                Err(e) => assert!(matches!(e, Error::Format(_)), "{e:?}"),
            }
        }
    }
}
