//! Model files: safetensors with docs/FORMAT.md's tensor names and `__metadata__`.
//!
//! A file holds the parameters under their PyTorch `state_dict` names, optionally extra f32
//! tensors (e.g. optimizer state `optim.exp_avg`, flat `[N]`), and string metadata: `format`
//! (`"rnnkit"`), `format_version` (`"1"`), `config` (`ModelConfig::to_json`), and optionally
//! `tokenizer` and `training` (JSON texts) plus any other string pairs.
//!
//! Writes are atomic ([`write_atomic`]): a temporary file in the target's directory, fsync,
//! rename over the target, fsync of the directory; a failure at any point leaves the previous
//! file untouched and removes the temporary file. Reads check everything and report
//! `Error::Format` naming the file and the tensor.

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::params::{ParamLayout, Params};
use safetensors::tensor::{Metadata, TensorView};
use safetensors::Dtype;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The `format` metadata value of an rnnkit model file.
pub const FORMAT: &str = "rnnkit";
/// The only `format_version` this build reads and writes.
pub const FORMAT_VERSION: &str = "1";

/// Metadata keys written by rnnkit itself; extra metadata may not reuse them.
const RESERVED_KEYS: [&str; 5] = ["format", "format_version", "config", "tokenizer", "training"];

/// A tensor's values as stored (little-endian in the file, native here).
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
}

/// One tensor read by [`read_tensors`].
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

/// Every tensor and the metadata of a safetensors file (no rnnkit checks): for fixtures and
/// parity tests.
#[derive(Debug, Clone)]
pub struct TensorFile {
    /// The file, for error messages.
    pub path: String,
    pub metadata: BTreeMap<String, String>,
    pub tensors: BTreeMap<String, Tensor>,
}

impl TensorFile {
    fn get(&self, name: &str) -> Result<&Tensor> {
        self.tensors.get(name).ok_or_else(|| Error::Format(format!("\"{}\": no tensor named \"{name}\"", self.path)))
    }

    /// The f32 tensor `name` as (shape, values); an error names the file, tensor and dtype.
    pub fn f32(&self, name: &str) -> Result<(&[usize], &[f32])> {
        let t = self.get(name)?;
        match &t.data {
            TensorData::F32(v) => Ok((&t.shape, v)),
            other => Err(Error::Format(format!(
                "\"{}\": tensor \"{name}\": expected dtype F32, got {}",
                self.path,
                dtype_name(other)
            ))),
        }
    }

    /// The integer tensor `name` (I64 or I32) as (shape, values widened to i64).
    pub fn i64(&self, name: &str) -> Result<(&[usize], Vec<i64>)> {
        let t = self.get(name)?;
        match &t.data {
            TensorData::I64(v) => Ok((&t.shape, v.clone())),
            TensorData::I32(v) => Ok((&t.shape, v.iter().map(|&x| x as i64).collect())),
            other => Err(Error::Format(format!(
                "\"{}\": tensor \"{name}\": expected dtype I64 or I32, got {}",
                self.path,
                dtype_name(other)
            ))),
        }
    }
}

fn dtype_name(d: &TensorData) -> &'static str {
    match d {
        TensorData::F32(_) => "F32",
        TensorData::F64(_) => "F64",
        TensorData::I64(_) => "I64",
        TensorData::I32(_) => "I32",
    }
}

/// A loaded model file.
#[derive(Debug, Clone)]
pub struct ModelFile {
    pub config: ModelConfig,
    pub params: Params,
    /// The `tokenizer` metadata (JSON text), if any.
    pub tokenizer: Option<String>,
    /// The `training` metadata (JSON text), if any.
    pub training: Option<String>,
    /// Every other metadata pair (not `format`, `format_version`, `config`, `tokenizer`, `training`).
    pub metadata: BTreeMap<String, String>,
    /// Every f32 tensor that is not a parameter (e.g. `optim.*`), as (shape, values).
    pub extra: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

/// What to write besides the config and parameters.
#[derive(Debug, Clone, Default)]
pub struct SaveOptions<'a> {
    /// JSON text of the tokenizer.
    pub tokenizer: Option<&'a str>,
    /// JSON text of the training state (step, optimizer, RNG).
    pub training: Option<&'a str>,
    /// Other string pairs; keys must not be reserved.
    pub metadata: Vec<(&'a str, &'a str)>,
    /// Extra f32 tensors `(name, shape, values)`, e.g. `("optim.exp_avg", [N], ...)`.
    pub tensors: Vec<(&'a str, Vec<usize>, &'a [f32])>,
}

/// Writes `params` (laid out for `config`) and `opts` to `path` atomically.
pub fn save_model(path: &Path, config: &ModelConfig, params: &Params, opts: &SaveOptions) -> Result<()> {
    config.validate()?;
    save_with_layout(path, &config.to_json(), &config.layout(), params, opts)
}

/// [`save_model`] for any architecture: `config` is the file's `config` metadata, `layout` the
/// parameters it implies (checked against `params`). The sequence-to-sequence model saves
/// through this.
pub fn save_with_layout(
    path: &Path,
    config: &serde_json::Value,
    layout: &ParamLayout,
    params: &Params,
    opts: &SaveOptions,
) -> Result<()> {
    let file = path.display().to_string();
    if *params.layout != *layout {
        let want: Vec<_> = layout.specs().iter().map(|s| (&s.name, &s.shape)).collect();
        let got: Vec<_> = params.layout.specs().iter().map(|s| (&s.name, &s.shape)).collect();
        return Err(Error::Shape(format!("params: expected the layout of the config {want:?}, got {got:?}")));
    }
    crate::error::check_len("params", params.data.len(), layout.total())?;
    for spec in layout.specs() {
        crate::error::check_finite(&spec.name, params.view(&spec.name))?;
    }
    for (key, text) in [("tokenizer", opts.tokenizer), ("training", opts.training)] {
        if let Some(t) = text {
            serde_json::from_str::<serde_json::Value>(t)
                .map_err(|e| Error::Config(format!("{key}: expected JSON text, got a parse error: {e}")))?;
        }
    }
    let mut meta: HashMap<String, String> = HashMap::new();
    meta.insert("format".into(), FORMAT.into());
    meta.insert("format_version".into(), FORMAT_VERSION.into());
    meta.insert("config".into(), config.to_string());
    if let Some(t) = opts.tokenizer {
        meta.insert("tokenizer".into(), t.into());
    }
    if let Some(t) = opts.training {
        meta.insert("training".into(), t.into());
    }
    for (k, v) in &opts.metadata {
        if RESERVED_KEYS.contains(k) || meta.contains_key(*k) {
            return Err(Error::Config(format!(
                "metadata: key \"{k}\" is reserved or repeated; rnnkit writes {RESERVED_KEYS:?} itself"
            )));
        }
        meta.insert((*k).into(), (*v).into());
    }
    // Little-endian bytes of every tensor; the views below borrow them.
    let mut entries: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for spec in layout.specs() {
        entries.push((spec.name.clone(), spec.shape.clone(), le_bytes(params.view(&spec.name))));
    }
    for (name, shape, values) in &opts.tensors {
        if layout.get(name).is_some() || entries.iter().any(|e| e.0 == *name) || name.starts_with("__") {
            return Err(Error::Config(format!(
                "tensors: name \"{name}\" collides with a parameter, another tensor or a reserved name"
            )));
        }
        let n: usize = shape.iter().product();
        crate::error::check_len(&format!("tensor \"{name}\""), values.len(), n)?;
        entries.push((name.to_string(), shape.clone(), le_bytes(values)));
    }
    let mut views = Vec::with_capacity(entries.len());
    for (name, shape, bytes) in &entries {
        let view = TensorView::new(Dtype::F32, shape.clone(), bytes)
            .map_err(|e| Error::Format(format!("\"{file}\": tensor \"{name}\": {e}")))?;
        views.push((name.clone(), view));
    }
    let bytes = safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::Format(format!("\"{file}\": cannot serialise: {e}")))?;
    write_atomic(path, |f| std::io::Write::write_all(f, &bytes))
}

fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Distinguishes concurrent temporary files of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with what `write` produces, atomically: the bytes go to a temporary file in
/// the same directory (same file system, so the rename is atomic), which is fsynced and renamed
/// over `path`; the directory is then fsynced (Unix) so the rename survives a crash. On any
/// error the temporary file is removed and `path` keeps its previous content.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<()> {
    let shown = path.display().to_string();
    let name = path.file_name().ok_or_else(|| Error::Config(format!("path: expected a file name, got \"{shown}\"")))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = name.to_string_lossy();
    remove_stale_temps(dir, &name);
    let tmp = dir.join(temp_name(&name, std::process::id(), TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| Error::io(format!("writing \"{shown}\" (creating its temporary file)"), e))?;
    let written = write(&mut f).and_then(|_| f.sync_all());
    drop(f);
    if let Err(e) = written.and_then(|_| fs::rename(&tmp, path)) {
        // Best effort: the temporary file may not exist any more; the original error matters.
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(format!("writing \"{shown}\""), e));
    }
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("writing \"{shown}\" (syncing its directory)"), e))?;
    Ok(())
}

/// The temporary file of a write of `name` by process `pid`: `.<name>.<pid>.<n>.tmp` beside the
/// target, so that the next write of the same target can recognise what a killed writer left.
fn temp_name(name: &str, pid: u32, n: u64) -> String {
    format!(".{name}.{pid}.{n}.tmp")
}

/// A temporary file older than this is stale whoever wrote it (a recycled pid, or a system where
/// liveness cannot be asked); no write of one model file takes this long.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// Whether process `pid` exists (Unix: `kill(pid, 0)`, which sends nothing; EPERM means it
/// exists under another user). Elsewhere it is assumed alive and only age makes a file stale.
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
        // SAFETY: kill with signal 0 only checks that the process exists and may be signalled.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Removes the temporary files of earlier writes of `name` in `dir` that can no longer finish:
/// their writer's process is gone (a writer killed mid-write, e.g. by kill -9 or a power cut,
/// leaves one), or they are older than [`STALE_AFTER`]. A live writer's file, in this process or
/// another, is left alone. Best effort: a failure here never fails the write.
fn remove_stale_temps(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.");
    let own = std::process::id();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|f| f.strip_prefix(&prefix)?.strip_suffix(".tmp")) else {
            continue;
        };
        let Some((pid, n)) = rest.split_once('.') else { continue };
        let (Ok(pid), Ok(_)) = (pid.parse::<u32>(), n.parse::<u64>()) else { continue };
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if old || (pid != own && !process_alive(pid)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// A model file opened for reading: its header parsed and checked against the file's size, no
/// tensor data read yet. Everything [`load_model`] checks against the config happens on this,
/// before anything is allocated in proportion to what the header declares.
struct Opened {
    /// The file, for error messages.
    file: String,
    handle: File,
    /// Where the tensor data starts: after the 8-byte length and the header.
    data_start: u64,
    meta: Metadata,
}

impl Opened {
    /// The raw little-endian bytes of tensor `info` (bounds checked by [`open_header`]), into `buf`.
    fn read_into(&mut self, info: &safetensors::tensor::TensorInfo, buf: &mut Vec<u8>) -> Result<()> {
        let (start, end) = info.data_offsets;
        buf.resize(end - start, 0);
        self.handle
            .seek(SeekFrom::Start(self.data_start + start as u64))
            .and_then(|_| self.handle.read_exact(buf))
            .map_err(|e| Error::io(format!("reading \"{}\"", self.file), e))
    }
}

/// Reads up to `buf.len()` bytes (fewer only at the end of the file).
fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Opens `path` and reads only its header: the 8-byte length (checked against the file's size
/// and [`MAX_HEADER_LEN`] before the header is read), then the header JSON, streamed, so a
/// damaged one fails at its first bad byte; its tensor offsets must tile the rest of the file
/// exactly. A FIFO, device or directory is refused before it is opened (reading `/dev/zero` or
/// a pipe would never end), so the cost of a refusal is bounded by the header, not the file.
fn open_header(path: &Path) -> Result<Opened> {
    let file = path.display().to_string();
    let io = |e| Error::io(format!("reading \"{file}\""), e);
    let kind = fs::metadata(path).map_err(io)?;
    if !kind.is_file() {
        let what = if kind.is_dir() { "a directory" } else { "not a regular file (a pipe, socket or device)" };
        return Err(Error::Format(format!("\"{file}\": {what}; a model file is a safetensors file")));
    }
    let mut handle = File::open(path).map_err(io)?;
    let len = handle.metadata().map_err(io)?.len();
    let mut start = [0u8; 9];
    let got = read_up_to(&mut handle, &mut start).map_err(io)?;
    let start = &start[..got];
    let bad = |why: String| match foreign_kind(start) {
        Some(Foreign::PyTorch) => Error::Format(format!(
            "\"{file}\": this is a PyTorch torch.save file, not safetensors; save the state_dict with \
             safetensors.torch.save_file(model.state_dict(), 'model.safetensors') and import it"
        )),
        Some(Foreign::Unknown) => Error::Format(format!(
            "\"{file}\": not a safetensors file (it does not start with a safetensors header: an 8-byte length, then \
             a JSON object)"
        )),
        None => {
            Error::Format(format!("\"{file}\": not a valid safetensors file ({why}); it may be truncated or corrupt"))
        }
    };
    let Some(len_bytes) = start.get(..8) else {
        return Err(bad(format!("{len} bytes, shorter than the 8-byte header length")));
    };
    let n = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
    if n > MAX_HEADER_LEN {
        return Err(bad(format!("a header of {n} bytes exceeds the limit of {MAX_HEADER_LEN}")));
    }
    if 8 + n > len {
        return Err(bad(format!("a header of {n} bytes runs past the end of the file ({len} bytes)")));
    }
    handle.seek(SeekFrom::Start(8)).map_err(io)?;
    let meta: Metadata = serde_json::from_reader(BufReader::new((&mut handle).take(n))).map_err(|e| {
        if e.is_io() {
            io(e.into())
        } else {
            bad(format!("header: {e}"))
        }
    })?;
    let data = len - 8 - n;
    if meta.data_len() as u64 != data {
        return Err(bad(format!("its tensors take {} bytes, but {data} bytes follow the header", meta.data_len())));
    }
    Ok(Opened { file, handle, data_start: 8 + n, meta })
}

/// What a file that failed to parse is, when it is plainly not a damaged safetensors file.
#[derive(Debug, PartialEq)]
enum Foreign {
    /// `torch.save` output: a zip archive (the default since PyTorch 1.6) or a bare pickle.
    PyTorch,
    /// Anything else whose first bytes cannot begin a safetensors file (text, other formats).
    Unknown,
}

/// The safetensors crate's own bound on the header; a longer one is no safetensors header.
const MAX_HEADER_LEN: u64 = 100_000_000;

/// Tells a foreign file from a truncated or corrupt safetensors one, so that the message says
/// what to do rather than suggesting damage. A safetensors file starts with a little-endian u64
/// header length (below [`MAX_HEADER_LEN`]) and then `{`; a file cut short keeps that start, so
/// only files whose start cannot be a safetensors header are called foreign. Files shorter than
/// that start are left to the truncation message.
fn foreign_kind(bytes: &[u8]) -> Option<Foreign> {
    if bytes.starts_with(b"PK\x03\x04") || (bytes.len() >= 2 && bytes[0] == 0x80 && (2..=5).contains(&bytes[1])) {
        return Some(Foreign::PyTorch);
    }
    let len = u64::from_le_bytes(bytes.get(..8)?.try_into().expect("8 bytes"));
    let opens_json = bytes.get(8).is_none_or(|&b| b == b'{');
    (len > MAX_HEADER_LEN || !opens_json).then_some(Foreign::Unknown)
}

fn decode_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Reads every tensor (F32, F64, I64, I32) and the metadata of any safetensors file.
pub fn read_tensors(path: &Path) -> Result<TensorFile> {
    let mut f = open_header(path)?;
    let infos: Vec<(String, safetensors::tensor::TensorInfo)> =
        f.meta.tensors().into_iter().map(|(k, v)| (k, v.clone())).collect();
    if let Some((name, info)) =
        infos.iter().find(|(_, i)| !matches!(i.dtype, Dtype::F32 | Dtype::F64 | Dtype::I64 | Dtype::I32))
    {
        return Err(Error::Format(format!(
            "\"{}\": tensor \"{name}\": dtype {:?} is not supported (F32, F64, I64, I32 are)",
            f.file, info.dtype
        )));
    }
    let mut tensors = BTreeMap::new();
    let mut b = Vec::new();
    for (name, info) in infos {
        f.read_into(&info, &mut b)?;
        let data = match info.dtype {
            Dtype::F32 => TensorData::F32(decode_f32(&b)),
            Dtype::F64 => {
                TensorData::F64(b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect())
            }
            Dtype::I64 => {
                TensorData::I64(b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect())
            }
            _ => TensorData::I32(b.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect()),
        };
        tensors.insert(name, Tensor { shape: info.shape, data });
    }
    let metadata = f.meta.metadata().clone().unwrap_or_default().into_iter().collect();
    Ok(TensorFile { path: f.file, metadata, tensors })
}

/// Reads an rnnkit model file: refuses foreign files, unknown versions, configs it cannot read,
/// missing tensors, wrong shapes or dtypes, non-finite parameters, truncated or corrupt files.
/// The header is read and checked completely (every tensor of the config present with its shape
/// and dtype, every extra tensor F32, sizes tiling the file) before the parameters are
/// allocated, so a header declaring a huge model costs nothing to refuse.
pub fn load_model(path: &Path) -> Result<ModelFile> {
    let mut f = open_header(path)?;
    let strings = f.meta.metadata().clone().unwrap_or_default();
    let config_json = config_json(&f.file, &strings)?;
    let config = ModelConfig::from_json(&config_json).map_err(|e| Error::Format(format!("\"{}\": {e}", f.file)))?;
    let layout = Arc::new(config.layout());
    let (params, tokenizer, training, metadata, extra) = read_params(&mut f, strings, layout)?;
    Ok(ModelFile { config, params, tokenizer, training, metadata, extra })
}

/// The `config` metadata of an rnnkit model file (format and version checked), as JSON: what
/// tells a language model, classifier, tagger or regressor file from a sequence-to-sequence one.
/// Reads the header only.
pub fn read_config(path: &Path) -> Result<serde_json::Value> {
    let f = open_header(path)?;
    let strings = f.meta.metadata().clone().unwrap_or_default();
    config_json(&f.file, &strings)
}

/// The parameters laid out by `layout(config)` and the metadata of an rnnkit model file of any
/// architecture; `layout` receives the `config` metadata (its errors name the file). Checked
/// from the header first, as [`load_model`].
pub fn load_with_layout(
    path: &Path,
    layout: impl FnOnce(&serde_json::Value) -> Result<ParamLayout>,
) -> Result<(serde_json::Value, ModelParts)> {
    let mut f = open_header(path)?;
    let strings = f.meta.metadata().clone().unwrap_or_default();
    let config = config_json(&f.file, &strings)?;
    let layout = Arc::new(layout(&config).map_err(|e| Error::Format(format!("\"{}\": {e}", f.file)))?);
    let (params, tokenizer, training, metadata, extra) = read_params(&mut f, strings, layout)?;
    Ok((config, ModelParts { params, tokenizer, training, metadata, extra }))
}

/// What [`load_with_layout`] reads besides the config: the fields of [`ModelFile`].
#[derive(Debug, Clone)]
pub struct ModelParts {
    pub params: Params,
    pub tokenizer: Option<String>,
    pub training: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub extra: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

/// The checked `format`, `format_version` and the parsed `config` of a file's metadata.
fn config_json(file: &str, strings: &HashMap<String, String>) -> Result<serde_json::Value> {
    let format = strings.get("format");
    if format.map(String::as_str) != Some(FORMAT) {
        return Err(Error::Format(format!(
            "\"{file}\": not an rnnkit model file (metadata \"format\" should be \"{FORMAT}\", got {})",
            format.map_or("nothing".to_string(), |f| format!("\"{f}\""))
        )));
    }
    match strings.get("format_version").map(String::as_str) {
        Some(FORMAT_VERSION) => {}
        other => {
            return Err(Error::Format(format!(
                "\"{file}\": format_version {} is not supported; this rnnkit reads version \"{FORMAT_VERSION}\"",
                other.map_or("(missing)".to_string(), |v| format!("\"{v}\""))
            )))
        }
    }
    let config_text =
        strings.get("config").ok_or_else(|| Error::Format(format!("\"{file}\": metadata \"config\" is missing")))?;
    serde_json::from_str(config_text)
        .map_err(|e| Error::Format(format!("\"{file}\": metadata \"config\" is not JSON: {e}")))
}

type Parts =
    (Params, Option<String>, Option<String>, BTreeMap<String, String>, BTreeMap<String, (Vec<usize>, Vec<f32>)>);

/// Every parameter of `layout` and the other f32 tensors of an opened file, with its metadata
/// strings. The whole tensor set is checked against the layout from the header (presence, dtype,
/// shape) before the parameters are allocated, so a header declaring a huge model costs nothing
/// to refuse; then each tensor is read and checked finite.
fn read_params(f: &mut Opened, strings: HashMap<String, String>, layout: Arc<ParamLayout>) -> Result<Parts> {
    let file = f.file.clone();
    // The whole tensor set against the config, from the header alone.
    let mut infos = Vec::with_capacity(layout.specs().len());
    for spec in layout.specs() {
        let info = f.meta.info(&spec.name).ok_or_else(|| {
            Error::Format(format!(
                "\"{file}\": tensor \"{}\" (shape {:?}) is missing; its config requires it",
                spec.name, spec.shape
            ))
        })?;
        if info.dtype != Dtype::F32 {
            return Err(Error::Format(format!(
                "\"{file}\": tensor \"{}\": expected dtype F32, got {:?}",
                spec.name, info.dtype
            )));
        }
        if info.shape != spec.shape {
            return Err(Error::Format(format!(
                "\"{file}\": tensor \"{}\": expected shape {:?} (from its config), got {:?}",
                spec.name, spec.shape, info.shape
            )));
        }
        infos.push(info.clone());
    }
    let mut extras = Vec::new();
    for (name, info) in f.meta.tensors() {
        if layout.get(&name).is_some() {
            continue;
        }
        if info.dtype != Dtype::F32 {
            return Err(Error::Format(format!(
                "\"{file}\": tensor \"{name}\": expected dtype F32, got {:?}",
                info.dtype
            )));
        }
        extras.push((name, info.clone()));
    }
    // Every tensor checked: the parameters take at most the file's size.
    let mut params = Params::zeros(layout.clone());
    let mut b = Vec::new();
    for (spec, info) in layout.specs().iter().zip(&infos) {
        f.read_into(info, &mut b)?;
        let dst = params.view_mut(&spec.name);
        for (d, c) in dst.iter_mut().zip(b.chunks_exact(4)) {
            *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        if let Some(i) = dst.iter().position(|v| !v.is_finite()) {
            // Reported as the tensor's own index (`[row, col]` of a matrix), the one to look up
            // in the PyTorch state_dict; the scan itself stays flat, this runs only on failure.
            let (at, v) = params
                .array(&spec.name)
                .indexed_iter()
                .nth(i)
                .map(|(at, &v)| (ndarray::Dimension::slice(&at).to_vec(), v))
                .expect("internal: index inside the tensor");
            return Err(Error::Format(format!(
                "\"{file}\": tensor \"{}\": value {v} at index {at:?} is not finite",
                spec.name
            )));
        }
    }
    let mut extra = BTreeMap::new();
    for (name, info) in extras {
        f.read_into(&info, &mut b)?;
        extra.insert(name, (info.shape.clone(), decode_f32(&b)));
    }
    let mut metadata: BTreeMap<String, String> = strings.into_iter().collect();
    let tokenizer = metadata.remove("tokenizer");
    let training = metadata.remove("training");
    for k in ["format", "format_version", "config"] {
        metadata.remove(k);
    }
    Ok((params, tokenizer, training, metadata, extra))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use serde_json::json;
    use std::path::PathBuf;

    /// A fresh, empty directory for one test (removed at the start of the next run).
    fn test_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rnnkit-io-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn small_model() -> (ModelConfig, Params) {
        let cfg = ModelConfig::from_json(&json!({"task": "language_model", "cell": "lstm", "vocab_size": 7,
            "embed_dim": 3, "hidden_size": 4, "num_layers": 2, "skip": true}))
        .unwrap();
        let mut p = Params::zeros(Arc::new(cfg.layout()));
        let mut rng = Rng::new(3);
        p.data.iter_mut().for_each(|v| *v = rng.normal());
        (cfg, p)
    }

    fn save_small(path: &Path) -> (ModelConfig, Params) {
        let (cfg, p) = small_model();
        save_model(path, &cfg, &p, &SaveOptions::default()).unwrap();
        (cfg, p)
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models").join(name)
    }

    #[test]
    fn round_trip_is_bit_exact_with_metadata_and_extra_tensors() {
        let dir = test_dir("round-trip");
        let path = dir.join("m.safetensors");
        let (cfg, p) = small_model();
        let m = vec![0.25f32; p.data.len()];
        let opts = SaveOptions {
            tokenizer: Some(r#"{"type": "char", "vocab": ["a", "b", "c", "d", "e", "f", "é"]}"#),
            training: Some(r#"{"step": 12}"#),
            metadata: vec![("note", "hello")],
            tensors: vec![("optim.exp_avg", vec![p.data.len()], &m)],
        };
        save_model(&path, &cfg, &p, &opts).unwrap();
        let back = load_model(&path).unwrap();
        assert_eq!(back.config, cfg);
        assert_eq!(*back.params.layout, *p.layout);
        assert_eq!(bits(&back.params.data), bits(&p.data));
        assert_eq!(back.tokenizer.as_deref(), opts.tokenizer);
        assert_eq!(back.training.as_deref(), opts.training);
        assert_eq!(back.metadata.get("note").map(String::as_str), Some("hello"));
        assert_eq!(back.metadata.len(), 1);
        assert_eq!(back.extra["optim.exp_avg"], (vec![p.data.len()], m.clone()));
        // The generic reader sees the same file.
        let t = read_tensors(&path).unwrap();
        assert_eq!(t.metadata["format"], "rnnkit");
        assert_eq!(bits(t.f32("head.bias").unwrap().1), bits(p.view("head.bias")));
        let no_dir = fs::read_dir(&dir).unwrap().count();
        assert_eq!(no_dir, 1, "no temporary file may remain");
    }

    #[test]
    fn pytorch_model_fixtures_load_with_their_layout_and_round_trip() {
        for name in ["pp_lstm.safetensors", "zh_gru.safetensors"] {
            let path = fixture(name);
            let m = load_model(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            let raw = read_tensors(&path).unwrap();
            let specs = m.params.layout.specs();
            assert_eq!(specs.len(), raw.tensors.len(), "{name}: every tensor is a parameter");
            for s in specs {
                let (shape, values) = raw.f32(&s.name).unwrap();
                assert_eq!(shape, &s.shape[..], "{name}: {}", s.name);
                assert_eq!(bits(values), bits(m.params.view(&s.name)), "{name}: {}", s.name);
            }
            let tok: serde_json::Value = serde_json::from_str(m.tokenizer.as_deref().unwrap()).unwrap();
            let vocab = match m.config.input {
                crate::config::InputKind::Tokens { vocab_size, .. } => vocab_size,
                other => panic!("{name}: token input expected, got {other:?}"),
            };
            assert_eq!(tok["vocab"].as_array().unwrap().len(), vocab);
            let dir = test_dir(&format!("fixture-{name}"));
            let out = dir.join(name);
            let opts = SaveOptions { tokenizer: m.tokenizer.as_deref(), ..Default::default() };
            save_model(&out, &m.config, &m.params, &opts).unwrap();
            let again = load_model(&out).unwrap();
            assert_eq!(again.config, m.config);
            assert_eq!(bits(&again.params.data), bits(&m.params.data), "{name}: re-saved values");
            assert_eq!(again.tokenizer, m.tokenizer);
        }
        let pp = load_model(&fixture("pp_lstm.safetensors")).unwrap();
        assert_eq!(pp.params.layout.get("rnn.weight_ih_l1").unwrap().shape, vec![512, 128]);
    }

    #[test]
    fn fixture_int64_tensors_read_through_the_generic_reader() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/torch/lm_lstm.safetensors");
        let t = read_tensors(&path).unwrap();
        let (shape, targets) = t.i64("targets").unwrap();
        assert_eq!(shape, &[2, 9]);
        assert_eq!(targets.iter().filter(|&&v| v == -100).count(), 2);
        assert!(t.f32("targets").unwrap_err().to_string().contains("expected dtype F32, got I64"));
        assert!(t.i64("logits").unwrap_err().to_string().contains("got F32"));
        assert!(t.f32("nope").unwrap_err().to_string().contains("no tensor named \"nope\""));
        // Not an rnnkit model file: no format metadata.
        let e = load_model(&path).unwrap_err().to_string();
        assert!(e.contains("lm_lstm.safetensors") && e.contains("not an rnnkit model file"), "{e}");
    }

    #[test]
    fn failed_write_leaves_the_old_file_intact() {
        let dir = test_dir("atomic");
        let path = dir.join("m.safetensors");
        save_small(&path);
        let before = fs::read(&path).unwrap();
        // A writer that fails half-way (as a full disk would).
        let e = write_atomic(&path, |f| {
            std::io::Write::write_all(f, &before[..before.len() / 2])?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(e.code(), "ERR_RNNKIT_IO");
        assert!(e.to_string().contains("m.safetensors") && e.to_string().contains("disk full"), "{e}");
        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "the temporary file must be removed");
        // A refused save (wrong layout) does not touch the file either.
        let (cfg, _) = small_model();
        let other = ModelConfig { hidden_size: 5, ..cfg.clone() };
        let wrong = Params::zeros(Arc::new(other.layout()));
        let e = save_model(&path, &cfg, &wrong, &SaveOptions::default()).unwrap_err();
        assert!(e.to_string().starts_with("params: expected the layout of the config"), "{e}");
        assert_eq!(fs::read(&path).unwrap(), before);
        // A directory that does not exist: a clean I/O error naming the file, nothing created.
        let missing = dir.join("no-such-dir").join("m.safetensors");
        let e = save_model(&missing, &cfg, &small_model().1, &SaveOptions::default()).unwrap_err();
        assert!(e.to_string().contains("no-such-dir/m.safetensors"), "{e}");
        assert!(!missing.exists());
    }

    #[test]
    fn save_refuses_bad_options() {
        let dir = test_dir("bad-options");
        let path = dir.join("m.safetensors");
        let (cfg, mut p) = small_model();
        let bad_json = SaveOptions { tokenizer: Some("{not json"), ..Default::default() };
        assert!(save_model(&path, &cfg, &p, &bad_json)
            .unwrap_err()
            .to_string()
            .starts_with("tokenizer: expected JSON"));
        let reserved = SaveOptions { metadata: vec![("format", "x")], ..Default::default() };
        assert!(save_model(&path, &cfg, &p, &reserved).unwrap_err().to_string().contains("\"format\" is reserved"));
        let v = [0.0f32; 3];
        let clash = SaveOptions { tensors: vec![("head.bias", vec![3], &v)], ..Default::default() };
        assert!(save_model(&path, &cfg, &p, &clash).unwrap_err().to_string().contains("\"head.bias\" collides"));
        let short = SaveOptions { tensors: vec![("optim.x", vec![4], &v)], ..Default::default() };
        assert_eq!(
            save_model(&path, &cfg, &p, &short).unwrap_err().to_string(),
            "tensor \"optim.x\": expected length 4, got 3"
        );
        p.view_mut("head.bias")[2] = f32::NAN;
        let e = save_model(&path, &cfg, &p, &SaveOptions::default()).unwrap_err().to_string();
        assert_eq!(e, "head.bias: every value must be finite, got NaN at index 2");
        assert!(!path.exists());
    }

    /// Writes `bytes` as a file and returns the load error's message.
    fn load_error(dir: &Path, name: &str, bytes: &[u8]) -> String {
        let p = dir.join(name);
        fs::write(&p, bytes).unwrap();
        let e = load_model(&p).unwrap_err();
        assert_eq!(e.code(), "ERR_RNNKIT_FORMAT", "{name}: {e}");
        let msg = e.to_string();
        assert!(msg.contains(name), "{name}: the message should name the file: {msg}");
        msg
    }

    #[test]
    fn truncated_and_corrupt_files_are_refused() {
        let dir = test_dir("corrupt");
        let good = dir.join("good.safetensors");
        save_small(&good);
        let bytes = fs::read(&good).unwrap();
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        for cut in [0, 3, 8, 8 + header_len / 2, 8 + header_len, bytes.len() - 4, bytes.len() - 1] {
            let msg = load_error(&dir, &format!("cut{cut}.safetensors"), &bytes[..cut]);
            assert!(msg.contains("not a valid safetensors file"), "cut at {cut}: {msg}");
        }
        let mut garbage = bytes.clone();
        garbage[8..8 + 16].copy_from_slice(b"}{ garbage here ");
        load_error(&dir, "garbage.safetensors", &garbage);
        let mut past_end = bytes.clone();
        past_end[..8].copy_from_slice(&(bytes.len() as u64 + 100).to_le_bytes());
        load_error(&dir, "past-end.safetensors", &past_end);
        let mut huge = bytes.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        load_error(&dir, "huge.safetensors", &huge);
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0; 4]);
        load_error(&dir, "trailing.safetensors", &longer);
        load_error(&dir, "random.safetensors", &[7u8; 64]);
    }

    #[test]
    fn pytorch_and_other_foreign_files_are_told_apart_from_damaged_ones() {
        let dir = test_dir("not-safetensors");
        let mut zip = b"PK\x03\x04\x00\x00\x08\x08\x00\x00".to_vec();
        zip.extend_from_slice(b"archive/data.pkl");
        zip.resize(200, 0);
        let mut pickle = vec![0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8];
        pickle.resize(200, 0);
        for (name, bytes) in [("model.pt", zip), ("legacy.pt", pickle)] {
            let msg = load_error(&dir, name, &bytes);
            assert!(msg.contains("this is a PyTorch torch.save file, not safetensors"), "{name}: {msg}");
            assert!(
                msg.contains("safetensors.torch.save_file(model.state_dict(), 'model.safetensors')"),
                "{name}: {msg}"
            );
            let p = dir.join(name);
            let e = read_tensors(&p).unwrap_err();
            assert!(e.to_string().contains("PyTorch torch.save"), "{name} through read_tensors: {e}");
        }
        for (name, bytes) in [
            ("notes.txt", b"hello, this is a text file and not a model\n".to_vec()),
            ("data.csv", b"a,b\n1,2\n3,4\n".to_vec()),
            ("random.bin", vec![7u8; 64]),
        ] {
            let msg = load_error(&dir, name, &bytes);
            assert!(msg.contains("not a safetensors file"), "{name}: {msg}");
            assert!(!msg.contains("PyTorch"), "{name}: {msg}");
        }
        // A pickle protocol outside 2..=5 is not taken for one.
        let msg = load_error(&dir, "other.bin", &[0x80, 0x09, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(msg.contains("not a safetensors file") && !msg.contains("PyTorch"), "{msg}");
    }

    /// A file with the given metadata and tensors (dtype, shape, bytes), bypassing `save_model`.
    fn craft(meta: &[(&str, String)], tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
        let views: Vec<(String, TensorView)> =
            tensors.iter().map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
        let meta: HashMap<String, String> = meta.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        safetensors::serialize(views, Some(meta)).unwrap()
    }

    #[test]
    fn foreign_versions_missing_tensors_wrong_shapes_and_dtypes_are_refused() {
        let dir = test_dir("foreign");
        let (cfg, p) = small_model();
        let config = cfg.to_json().to_string();
        let ok_meta = |version: &str| {
            vec![("format", FORMAT.to_string()), ("format_version", version.to_string()), ("config", config.clone())]
        };
        let all: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = p
            .layout
            .specs()
            .iter()
            .map(|s| (s.name.as_str(), Dtype::F32, s.shape.clone(), le_bytes(p.view(&s.name))))
            .collect();
        // The crafted file with everything right loads: the cases below differ in one thing.
        let fine = dir.join("fine.safetensors");
        fs::write(&fine, craft(&ok_meta("1"), &all)).unwrap();
        assert_eq!(bits(&load_model(&fine).unwrap().params.data), bits(&p.data));

        let msg = load_error(&dir, "v2.safetensors", &craft(&ok_meta("2"), &all));
        assert!(msg.contains("format_version \"2\" is not supported"), "{msg}");
        let other = vec![("format", "pt".to_string())];
        let msg = load_error(&dir, "pt.safetensors", &craft(&other, &all));
        assert!(msg.contains("should be \"rnnkit\", got \"pt\""), "{msg}");
        let msg = load_error(&dir, "missing.safetensors", &craft(&ok_meta("1"), &all[1..]));
        assert!(msg.contains("tensor \"embed.weight\" (shape [7, 3]) is missing"), "{msg}");

        let mut reshaped = all.clone();
        reshaped[0].2 = vec![3, 7];
        let msg = load_error(&dir, "shape.safetensors", &craft(&ok_meta("1"), &reshaped));
        assert!(msg.contains("tensor \"embed.weight\": expected shape [7, 3] (from its config), got [3, 7]"), "{msg}");

        let mut as_f64 = all.clone();
        as_f64[0] = ("embed.weight", Dtype::F64, vec![7, 3], vec![0; 7 * 3 * 8]);
        let msg = load_error(&dir, "dtype.safetensors", &craft(&ok_meta("1"), &as_f64));
        assert!(msg.contains("tensor \"embed.weight\": expected dtype F32, got F64"), "{msg}");

        let mut nan = all.clone();
        // Flat value 4 of the [7, 3] table is row 1, column 1.
        nan[0].3[16..20].copy_from_slice(&f32::NAN.to_le_bytes());
        let msg = load_error(&dir, "nan.safetensors", &craft(&ok_meta("1"), &nan));
        assert!(msg.contains("tensor \"embed.weight\": value NaN at index [1, 1] is not finite"), "{msg}");

        let mut int_extra = all.clone();
        int_extra.push(("steps", Dtype::I64, vec![1], vec![0; 8]));
        let msg = load_error(&dir, "int-extra.safetensors", &craft(&ok_meta("1"), &int_extra));
        assert!(msg.contains("tensor \"steps\": expected dtype F32, got I64"), "{msg}");

        let mut bad_cfg = ok_meta("1");
        bad_cfg[2].1 =
            r#"{"cell": "transformer", "vocab_size": 7, "embed_dim": 3, "hidden_size": 4, "num_layers": 1}"#.into();
        let msg = load_error(&dir, "cfg.safetensors", &craft(&bad_cfg, &all));
        assert!(msg.contains("cell: expected \"rnn\", \"lstm\" or \"gru\", got \"transformer\""), "{msg}");
    }

    #[test]
    fn pipes_devices_and_directories_are_refused_without_reading_them() {
        let dir = test_dir("not-regular");
        // A FIFO with no writer: opening it for reading would block forever, reading it too.
        let fifo = dir.join("pipe.safetensors");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let zero = Path::new("/dev/zero");
        for p in [fifo.as_path(), zero, dir.as_path()] {
            let e = load_model(p).unwrap_err();
            assert_eq!(e.code(), "ERR_RNNKIT_FORMAT", "{e}");
            assert!(e.to_string().contains(&p.display().to_string()), "{e}");
            assert!(read_tensors(p).is_err());
        }
        assert!(load_model(&fifo).unwrap_err().to_string().contains("not a regular file"));
        assert!(load_model(&dir).unwrap_err().to_string().contains("a directory"));
    }

    #[test]
    fn huge_declared_sizes_are_refused_from_the_header() {
        let dir = test_dir("huge");
        // A sparse 1 GiB file of zeros: a header length of 0 and no `{` is refused after 9 bytes.
        let sparse = dir.join("sparse.safetensors");
        File::create(&sparse).unwrap().set_len(1 << 30).unwrap();
        let e = load_model(&sparse).unwrap_err();
        assert_eq!(e.code(), "ERR_RNNKIT_FORMAT");
        assert!(
            e.to_string().contains("sparse.safetensors") && e.to_string().contains("not a safetensors file"),
            "{e}"
        );
        // The same size with a valid start: `{` then zeros fails at the header's second byte.
        let mut f = OpenOptions::new().write(true).open(&sparse).unwrap();
        std::io::Write::write_all(&mut f, &((1u64 << 29).to_le_bytes())).unwrap();
        std::io::Write::write_all(&mut f, b"{").unwrap();
        drop(f);
        let e = load_model(&sparse).unwrap_err();
        assert!(e.to_string().contains("header:"), "{e}");
        // A config of ~8e8 parameters (3.3 GB) whose tensors are missing: refused before they are allocated.
        let huge = json!({"task": "language_model", "cell": "lstm", "vocab_size": 250_000, "embed_dim": 1024,
            "hidden_size": 2048, "num_layers": 2});
        let meta = vec![
            ("format", FORMAT.to_string()),
            ("format_version", FORMAT_VERSION.to_string()),
            ("config", huge.to_string()),
        ];
        let msg = load_error(&dir, "huge.safetensors", &craft(&meta, &[("x", Dtype::F32, vec![1], vec![0; 4])]));
        assert!(msg.contains("is missing; its config requires it"), "{msg}");
    }

    #[test]
    fn stale_temporary_files_of_dead_writers_are_removed_by_the_next_write() {
        let dir = test_dir("stale");
        let path = dir.join("m.safetensors");
        // A pid that no longer runs: a child that has exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let live_other = std::os::unix::process::parent_id();
        let own = std::process::id();
        let temp = |pid: u32, n: u64| dir.join(temp_name("m.safetensors", pid, n));
        let stale = temp(dead, 0);
        let concurrent = [temp(own, 999_999), temp(live_other, 3)];
        let unrelated = [dir.join(".other.safetensors.1.0.tmp"), dir.join(".m.safetensors.x.tmp")];
        for p in concurrent.iter().chain(&unrelated).chain([&stale]) {
            fs::write(p, b"partial").unwrap();
        }
        // An hour-old file of a live pid is stale too (its pid was recycled).
        let recycled = temp(live_other, 4);
        let f = File::create(&recycled).unwrap();
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(7200)).unwrap();
        drop(f);
        save_small(&path);
        assert!(!stale.exists() && !recycled.exists(), "stale temporary files remain");
        for p in concurrent.iter().chain(&unrelated) {
            assert!(p.exists(), "{} was removed", p.display());
        }
        load_model(&path).unwrap();
    }
}
