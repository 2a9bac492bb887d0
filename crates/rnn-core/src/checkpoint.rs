//! Checkpoints: a model and, optionally, everything needed to continue its training
//! bit-identically, in ONE safetensors model file written by [`io::save_model`] (docs/FORMAT.md:
//! "checkpoints may add `training` and optimizer state tensors under an `optim.` prefix"). A
//! sequence-to-sequence model's checkpoint is its own model file (`Seq2Seq::save`) with the same
//! training parts ([`save_seq2seq_checkpoint`], [`load_seq2seq_checkpoint`]); it never carries a
//! state.
//!
//! On top of the model file (parameters, `config`, `tokenizer`, user metadata) a checkpoint holds:
//! - `optim.<slot>` `[N]` (N = number of parameters): the optimizer's state buffers, PyTorch's
//!   slot names (`optim.exp_avg`, `optim.momentum_buffer`, …);
//! - `train.state_h` (and `train.state_c`, LSTM) `[L·D, B, H]`: the detached state that
//!   truncated-BPTT lanes carry into the next batch, when the run stopped mid-epoch in lanes mode;
//! - metadata `training`, JSON:
//!   `{"checkpoint_version": 1, "options": <TrainOptions::to_json>, "position": {"step", "epoch",
//!   "batch"}, "optimizer_step": n, "rng": {"seed", "word_pos"}, "carried": bool}`.
//!
//! Loading checks that these parts agree with each other and with the model (slot set of the
//! optimizer type, slot and state shapes, finiteness, step counts) and refuses a file that does
//! not with `Error::Format` naming the file and the part. A plain model file (no `training`, no
//! `optim.*`/`train.*` tensors) loads with `trainer: None`. Other extra tensors are not part of a
//! checkpoint and are ignored, as `io::load_model` allows foreign extras.

use crate::error::{Error, Result};
use crate::io::{self, SaveOptions};
use crate::layer::recurrent::StackState;
use crate::model::network::Network;
use crate::model::seq2seq::Seq2Seq;
use crate::optim::{Optimizer, OptimizerConfig, OptimizerState};
use crate::rng::RngState;
use crate::train::{Position, TrainOptions, TrainerState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The only `checkpoint_version` this build reads and writes.
pub const CHECKPOINT_VERSION: u64 = 1;

/// Tensor names of the carried truncated-BPTT state.
const STATE_H: &str = "train.state_h";
const STATE_C: &str = "train.state_c";

/// A loaded checkpoint (or plain model file).
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub network: Network,
    /// The training state, when the file is a checkpoint (resume with `Trainer::resume`).
    pub trainer: Option<TrainerState>,
    /// The `tokenizer` metadata (JSON text), if any.
    pub tokenizer: Option<String>,
    /// User metadata (every pair rnnkit does not write itself).
    pub metadata: BTreeMap<String, String>,
}

/// The `training` metadata JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingMeta {
    checkpoint_version: u64,
    /// `TrainOptions::to_json()` (with the schedule).
    options: serde_json::Value,
    position: Position,
    /// Steps the optimizer took; fewer than `position.step` when steps were skipped
    /// (`skip_non_finite`), which advance the position but not the optimizer.
    optimizer_step: u64,
    rng: RngState,
    /// Whether `train.state_h` (and `train.state_c`) are present.
    carried: bool,
}

/// The `optim.*` slot names an optimizer of `config` keeps (they depend on the options, e.g.
/// SGD keeps a momentum buffer only with momentum, Adam a `max_exp_avg_sq` only with amsgrad).
fn expected_slots(config: &OptimizerConfig) -> Result<Vec<String>> {
    // An optimizer over zero parameters has the same slot set at no cost.
    Ok(Optimizer::new(config, 0)?.export_state().slots.into_iter().map(|(k, _)| k).collect())
}

/// What the training state of a checkpoint is checked against: the model's parameter count,
/// its classes (class weights) and the dimensions of the state it can carry (truncated BPTT).
struct StateFit {
    params: usize,
    classes: Option<usize>,
    carried: Option<CarriedDims>,
}

/// A carried state `[blocks, B, hidden]` (blocks = L·D), with a cell state (LSTM) or not.
#[derive(Clone, Copy)]
struct CarriedDims {
    blocks: usize,
    hidden: usize,
    cell: bool,
}

impl CarriedDims {
    /// Shape `[L·D, B, H]` of a carried state of `values` values, or None when `values` is not a
    /// positive multiple of L·D·H.
    fn shape(&self, values: usize) -> Option<Vec<usize>> {
        let (blocks, h) = (self.blocks, self.hidden);
        (values > 0 && values.is_multiple_of(blocks * h)).then(|| vec![blocks, values / (blocks * h), h])
    }
}

impl StateFit {
    fn network(network: &Network) -> Self {
        let cfg = &network.config;
        StateFit {
            params: network.params().data.len(),
            classes: Some(cfg.output_size),
            carried: Some(CarriedDims {
                blocks: cfg.num_layers * cfg.directions(),
                hidden: cfg.hidden_size,
                cell: cfg.cell.has_cell_state(),
            }),
        }
    }

    /// A sequence-to-sequence network: no class weights, no carried state (pairs train whole).
    fn seq2seq(net: &Seq2Seq) -> Self {
        StateFit { params: net.params().data.len(), classes: None, carried: None }
    }
}

/// Extra tensors `(name, shape, values)` as `SaveOptions` takes them.
type Tensors<'a> = Vec<(&'a str, Vec<usize>, &'a [f32])>;

/// The tensors and the `training` metadata text of the training state `t`, checked against the
/// model it is saved with.
fn training_parts<'a>(fit: &StateFit, t: &'a TrainerState) -> Result<(Tensors<'a>, String)> {
    let n = fit.params;
    let mut tensors: Tensors = Vec::new();
    let expected = expected_slots(&t.options.optimizer)?;
    let names: Vec<&String> = t.optimizer.slots.iter().map(|(k, _)| k).collect();
    if names.len() != expected.len() || expected.iter().any(|e| !names.contains(&e)) {
        return Err(Error::Config(format!(
            "trainer: optimizer slots {names:?} do not match a {} optimizer's {expected:?}",
            t.options.optimizer.name()
        )));
    }
    for (name, values) in &t.optimizer.slots {
        crate::error::check_len(name, values.len(), n)?;
        tensors.push((name, vec![n], values));
    }
    if let Some(s) = &t.carried {
        let dims = fit.carried.ok_or_else(|| Error::Shape("trainer: this model carries no state".into()))?;
        let shape = dims.shape(s.h.len()).ok_or_else(|| {
            Error::Shape(format!(
                "trainer: carried state of {} values does not fit this model's [L·D, B, H]",
                s.h.len()
            ))
        })?;
        match (&s.c, dims.cell) {
            (Some(c), true) => {
                crate::error::check_len("carried state c", c.len(), s.h.len())?;
                tensors.push((STATE_C, shape.clone(), c));
            }
            (None, false) => {}
            _ => {
                return Err(Error::Shape(
                    "trainer: the carried cell state c must be present exactly for an LSTM".into(),
                ))
            }
        }
        tensors.push((STATE_H, shape, &s.h));
    }
    let meta = TrainingMeta {
        checkpoint_version: CHECKPOINT_VERSION,
        options: t.options.to_json(),
        position: t.position,
        optimizer_step: t.optimizer.step,
        rng: t.rng,
        carried: t.carried.is_some(),
    };
    Ok((tensors, serde_json::to_string(&meta).expect("training metadata serialises")))
}

/// Writes `network` and, when given, the training state `trainer` (from `Trainer::state`) to
/// `path` atomically, with the tokenizer JSON and user metadata pairs.
pub fn save_checkpoint(
    path: &Path,
    network: &Network,
    trainer: Option<&TrainerState>,
    tokenizer: Option<&str>,
    metadata: &[(&str, &str)],
) -> Result<()> {
    let (tensors, training) = match trainer {
        Some(t) => {
            let (tensors, text) = training_parts(&StateFit::network(network), t)?;
            (tensors, Some(text))
        }
        None => (Vec::new(), None),
    };
    let opts = SaveOptions { tokenizer, training: training.as_deref(), metadata: metadata.to_vec(), tensors };
    io::save_model(path, &network.config, network.params(), &opts)
}

/// Reads a checkpoint or a plain model file (then `trainer` is None).
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let file = io::load_model(path)?;
    let shown = path.display().to_string();
    let network = Network::from_params(file.config, file.params)?;
    let mut extra = file.extra;
    let trainer = training_state(&shown, file.training.as_deref(), &StateFit::network(&network), &mut extra)?;
    Ok(Checkpoint { network, trainer, tokenizer: file.tokenizer, metadata: file.metadata })
}

/// A loaded sequence-to-sequence checkpoint (or plain model file).
#[derive(Debug, Clone)]
pub struct Seq2SeqCheckpoint {
    pub network: Seq2Seq,
    /// The training state, when the file is a checkpoint (resume with `Trainer::resume`).
    pub trainer: Option<TrainerState>,
    /// Every metadata pair of the file (the two tokenizers, user keys).
    pub metadata: BTreeMap<String, String>,
}

/// [`save_checkpoint`] of a sequence-to-sequence network: its model file (`Seq2Seq::save`) with
/// the same `optim.*` tensors and `training` metadata (it carries no state).
pub fn save_seq2seq_checkpoint(
    path: &Path,
    network: &Seq2Seq,
    trainer: Option<&TrainerState>,
    metadata: &[(&str, &str)],
) -> Result<()> {
    let (tensors, training) = match trainer {
        Some(t) => {
            let (tensors, text) = training_parts(&StateFit::seq2seq(network), t)?;
            (tensors, Some(text))
        }
        None => (Vec::new(), None),
    };
    let opts = SaveOptions { tokenizer: None, training: training.as_deref(), metadata: metadata.to_vec(), tensors };
    network.save(path, &opts)
}

/// [`load_checkpoint`] of a sequence-to-sequence file.
pub fn load_seq2seq_checkpoint(path: &Path) -> Result<Seq2SeqCheckpoint> {
    let (network, parts) = Seq2Seq::load(path)?;
    let shown = path.display().to_string();
    let mut extra = parts.extra;
    let trainer = training_state(&shown, parts.training.as_deref(), &StateFit::seq2seq(&network), &mut extra)?;
    Ok(Seq2SeqCheckpoint { network, trainer, metadata: parts.metadata })
}

/// The training state of a file from its `training` metadata (None: a plain model file), its
/// tensors taken out of `extra`; training tensors the metadata does not account for are refused.
fn training_state(
    shown: &str,
    training: Option<&str>,
    fit: &StateFit,
    extra: &mut BTreeMap<String, (Vec<usize>, Vec<f32>)>,
) -> Result<Option<TrainerState>> {
    let trainer = match training {
        Some(text) => Some(read_training(shown, text, fit, extra)?),
        None => None,
    };
    // Whatever training state is left over was not accounted for by the metadata.
    if let Some(name) = extra.keys().find(|k| k.starts_with("optim.") || k.starts_with("train.")) {
        let why = if trainer.is_some() {
            "does not belong to the training state its \"training\" metadata describes"
        } else {
            "is training state, but the file has no \"training\" metadata"
        };
        return Err(Error::Format(format!("\"{shown}\": tensor \"{name}\" {why}")));
    }
    Ok(trainer)
}

/// Parses and cross-checks the `training` metadata, taking its tensors out of `extra`.
fn read_training(
    file: &str,
    text: &str,
    fit: &StateFit,
    extra: &mut BTreeMap<String, (Vec<usize>, Vec<f32>)>,
) -> Result<TrainerState> {
    let bad = |msg: String| Error::Format(format!("\"{file}\": {msg}"));
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("metadata \"training\" is not JSON: {e}")))?;
    // The version first: a newer layout should say so, not fail on some field.
    match value.get("checkpoint_version").and_then(serde_json::Value::as_u64) {
        Some(CHECKPOINT_VERSION) => {}
        other => {
            return Err(bad(format!(
                "training checkpoint_version {} is not supported; this rnnkit reads version {CHECKPOINT_VERSION}",
                other.map_or_else(
                    || value.get("checkpoint_version").map_or("(missing)".into(), |v| v.to_string()),
                    |v| v.to_string()
                )
            )))
        }
    }
    let meta: TrainingMeta = serde_json::from_value(value).map_err(|e| bad(format!("metadata \"training\": {e}")))?;
    let options = TrainOptions::from_json(&meta.options).map_err(|e| bad(format!("training options: {e}")))?;
    if let (Some(w), Some(classes)) = (&options.class_weights, fit.classes) {
        if w.len() != classes {
            return Err(bad(format!(
                "training options: classWeights has {} entries, the model has {classes} classes",
                w.len()
            )));
        }
    }
    if meta.optimizer_step > meta.position.step {
        return Err(bad(format!(
            "training: optimizer_step {} exceeds position.step {}; every optimizer step is a training step",
            meta.optimizer_step, meta.position.step
        )));
    }
    let n = fit.params;
    let mut slots = Vec::new();
    for name in expected_slots(&options.optimizer).map_err(|e| bad(format!("training options: {e}")))? {
        let values = take(file, extra, &name, &[n]).map_err(|e| match e {
            Error::Format(m) => Error::Format(format!("{m} (a {} optimizer keeps it)", options.optimizer.name())),
            other => other,
        })?;
        slots.push((name, values));
    }
    let carried = if meta.carried {
        if !options.tbptt {
            return Err(bad(
                "training: a carried state is only kept by truncated BPTT (tbptt), which the options do not use".into(),
            ));
        }
        let dims = fit.carried.ok_or_else(|| bad("training: this model carries no state between batches".into()))?;
        let (shape, _) = extra.get(STATE_H).ok_or_else(|| {
            bad(format!("tensor \"{STATE_H}\" is missing; the training metadata says a state is carried"))
        })?;
        let want = dims.shape(shape.iter().product()).filter(|s| s == shape).ok_or_else(|| {
            bad(format!(
                "tensor \"{STATE_H}\": expected shape [{}, B, {}] (L·D, rows, hidden), got {shape:?}",
                dims.blocks, dims.hidden
            ))
        })?;
        let h = take(file, extra, STATE_H, &want)?;
        let c = if dims.cell { Some(take(file, extra, STATE_C, &want)?) } else { None };
        Some(StackState { h, c })
    } else {
        None
    };
    Ok(TrainerState {
        options,
        position: meta.position,
        optimizer: OptimizerState { step: meta.optimizer_step, slots },
        rng: meta.rng,
        carried,
    })
}

/// Removes tensor `name` from `extra`, checking its shape and that every value is finite.
fn take(
    file: &str,
    extra: &mut BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>> {
    let (got, values) = extra.remove(name).ok_or_else(|| {
        Error::Format(format!(
            "\"{file}\": tensor \"{name}\" (shape {shape:?}) is missing; the training metadata requires it"
        ))
    })?;
    if got != shape {
        return Err(Error::Format(format!("\"{file}\": tensor \"{name}\": expected shape {shape:?}, got {got:?}")));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::Format(format!(
            "\"{file}\": tensor \"{name}\": value {} at index {i} is not finite",
            values[i]
        )));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;
    use crate::init::{init_params, InitConfig};
    use crate::rng::Rng;
    use serde_json::json;
    use std::path::PathBuf;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rnnkit-ckpt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn lstm() -> Network {
        let cfg = ModelConfig::from_json(&json!({"cell": "lstm", "vocab_size": 6, "embed_dim": 3,
            "hidden_size": 4, "num_layers": 2, "dropout": 0.2}))
        .unwrap();
        let params = init_params(&cfg, &InitConfig::default(), &mut Rng::new(1)).unwrap();
        Network::from_params(cfg, params).unwrap()
    }

    /// A trainer state with recognisable values: Adam (amsgrad: three slots), a carried state of
    /// B = 3 lanes `[2, 3, 4]`, mid-epoch position.
    fn state(net: &Network) -> TrainerState {
        let options = TrainOptions::from_json(&json!({"batch_size": 3, "seq_len": 5, "tbptt": true, "seed": 9,
            "optimizer": {"type": "adam", "lr": 0.01, "amsgrad": true},
            "schedule": {"type": "cosine", "t_max": 100, "warmup_steps": 3}, "clip_norm": 0.5}))
        .unwrap();
        let n = net.params().data.len();
        let slot = |k: f32| (0..n).map(|i| k + i as f32 * 1e-3).collect::<Vec<f32>>();
        TrainerState {
            options,
            position: Position { step: 7, epoch: 1, batch: 2 },
            optimizer: OptimizerState {
                step: 6,
                slots: vec![
                    ("optim.exp_avg".into(), slot(0.1)),
                    ("optim.exp_avg_sq".into(), slot(0.2)),
                    ("optim.max_exp_avg_sq".into(), slot(0.3)),
                ],
            },
            rng: RngState { seed: 42, word_pos: 123_456_789_012_345 },
            carried: Some(StackState { h: vec![0.5; 24], c: Some(vec![-0.25; 24]) }),
        }
    }

    #[test]
    fn round_trip_keeps_every_part() {
        let d = dir("round-trip");
        let path = d.join("c.safetensors");
        let net = lstm();
        let t = state(&net);
        save_checkpoint(
            &path,
            &net,
            Some(&t),
            Some(r#"{"type":"char","vocab":["a","b","c","d","e","f"]}"#),
            &[("note", "x")],
        )
        .unwrap();
        let back = load_checkpoint(&path).unwrap();
        assert_eq!(back.network.config, net.config);
        assert_eq!(back.network.params().data, net.params().data);
        let bt = back.trainer.expect("a checkpoint");
        assert_eq!(bt.options, t.options);
        assert_eq!(bt.position, t.position);
        assert_eq!(bt.optimizer, t.optimizer);
        assert_eq!(bt.rng, t.rng);
        assert_eq!(bt.carried, t.carried);
        assert!(back.tokenizer.unwrap().contains("char"));
        assert_eq!(back.metadata.get("note").map(String::as_str), Some("x"));
        // A plain model file has no trainer.
        save_checkpoint(&path, &net, None, None, &[]).unwrap();
        let plain = load_checkpoint(&path).unwrap();
        assert!(plain.trainer.is_none() && plain.tokenizer.is_none());
    }

    /// Writes `net`'s model with a hand-made `training` text and tensors, returns the load error.
    fn load_error(path: &Path, net: &Network, training: Option<&str>, tensors: Tensors) -> String {
        let opts = SaveOptions { training, tensors, ..Default::default() };
        io::save_model(path, &net.config, net.params(), &opts).unwrap();
        match load_checkpoint(path) {
            Err(e @ Error::Format(_)) => e.to_string(),
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn inconsistent_files_are_refused_with_the_part_named() {
        let d = dir("refuse");
        let path = d.join("c.safetensors");
        let net = lstm();
        let good = state(&net);
        save_checkpoint(&path, &net, Some(&good), None, &[]).unwrap();
        let file = io::load_model(&path).unwrap();
        let meta: serde_json::Value = serde_json::from_str(file.training.as_deref().unwrap()).unwrap();
        let n = net.params().data.len();
        let (slot, h24) = (vec![0.0f32; n], vec![0.0f32; 24]);
        let all = |skip: &str| -> Tensors {
            [
                ("optim.exp_avg", vec![n], &slot[..]),
                ("optim.exp_avg_sq", vec![n], &slot[..]),
                ("optim.max_exp_avg_sq", vec![n], &slot[..]),
                (STATE_H, vec![2, 3, 4], &h24[..]),
                (STATE_C, vec![2, 3, 4], &h24[..]),
            ]
            .into_iter()
            .filter(|t| t.0 != skip)
            .collect()
        };
        let with = |k: &str, v: serde_json::Value| {
            let mut m = meta.clone();
            m[k] = v;
            m.to_string()
        };
        let text = meta.to_string();
        let cases: Vec<(Option<String>, Tensors, &str)> = vec![
            (Some(with("checkpoint_version", json!(2))), all(""), "checkpoint_version 2 is not supported"),
            (Some(json!({"step": 3}).to_string()), all(""), "checkpoint_version (missing)"),
            (Some(text.clone()), all("optim.exp_avg_sq"), "tensor \"optim.exp_avg_sq\" (shape"),
            (Some(text.clone()), all(STATE_C), "tensor \"train.state_c\""),
            (Some(with("carried", json!(false))), all(""), "does not belong to the training state"),
            (Some(with("optimizer_step", json!(8))), all(""), "optimizer_step 8 exceeds position.step 7"),
            (Some(with("rng", json!({"seed": 1}))), all(""), "word_pos"),
            (Some(with("extra_field", json!(1))), all(""), "extra_field"),
            (Some(with("options", json!({"batch_size": 0}))), all(""), "batchSize"),
            (None, all(""), "is training state, but the file has no \"training\" metadata"),
        ];
        for (training, tensors, needle) in cases {
            let e = load_error(&path, &net, training.as_deref(), tensors);
            assert!(e.contains(needle), "{e:?} should contain {needle:?}");
            assert!(e.contains("c.safetensors"), "{e:?} should name the file");
        }
        // Wrong shapes: a slot of N−1 values, a state whose rows do not divide.
        let short = vec![0.0f32; n - 1];
        let mut t = all("optim.exp_avg");
        t.push(("optim.exp_avg", vec![n - 1], &short));
        assert!(load_error(&path, &net, Some(&text), t).contains(&format!("expected shape [{n}], got [{}]", n - 1)));
        let mut t = all(STATE_H);
        t.push((STATE_H, vec![2, 4, 3], &h24));
        assert!(load_error(&path, &net, Some(&text), t).contains("expected shape [2, B, 4]"));
        // Non-finite optimizer state.
        let mut nan = slot.clone();
        nan[3] = f32::NAN;
        let mut t = all("optim.exp_avg");
        t.push(("optim.exp_avg", vec![n], &nan));
        assert!(load_error(&path, &net, Some(&text), t).contains("value NaN at index 3"));
        // A carried state without truncated BPTT.
        let mut opts = meta["options"].clone();
        opts["tbptt"] = json!(false);
        assert!(load_error(&path, &net, Some(&with("options", opts)), all("")).contains("tbptt"));
    }

    #[test]
    fn saving_refuses_a_state_that_does_not_fit() {
        let d = dir("save-refuse");
        let path = d.join("c.safetensors");
        let net = lstm();
        let mut t = state(&net);
        t.optimizer.slots.pop();
        assert!(save_checkpoint(&path, &net, Some(&t), None, &[]).unwrap_err().to_string().contains("do not match"));
        let mut t = state(&net);
        t.carried = Some(StackState { h: vec![0.0; 25], c: Some(vec![0.0; 25]) });
        assert!(save_checkpoint(&path, &net, Some(&t), None, &[]).is_err());
        let mut t = state(&net);
        t.carried = Some(StackState { h: vec![0.0; 24], c: None });
        assert!(save_checkpoint(&path, &net, Some(&t), None, &[]).is_err());
        assert!(!path.exists(), "nothing is written on a refusal");
    }
}
