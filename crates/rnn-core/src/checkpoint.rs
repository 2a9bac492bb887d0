//! Checkpoints: a model file (INTEROP.md) that also carries what training needs to resume
//! bit-identically — optimizer slots as `optim.<slot>` tensors, the carried truncated-BPTT state
//! as `train.state_h` / `train.state_c`, and a `training` metadata JSON with the options, the
//! position (step, epoch, batch), the optimizer step count and the RNG state. A plain model file
//! is a checkpoint without training state.

use crate::error::{Error, Result};
use crate::io::{load_model, save_model, SaveOptions};
use crate::layer::recurrent::StackState;
use crate::model::network::Network;
use crate::optim::OptimizerState;
use crate::rng::RngState;
use crate::train::{Position, TrainOptions, TrainerState};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// Version of the `training` metadata layout.
const CHECKPOINT_VERSION: u64 = 1;

/// What a model file or checkpoint holds.
#[derive(Debug)]
pub struct Checkpoint {
    pub network: Network,
    /// Present in checkpoints only.
    pub trainer: Option<TrainerState>,
    /// The tokenizer's JSON text.
    pub tokenizer: Option<String>,
    /// Other metadata pairs.
    pub metadata: BTreeMap<String, String>,
}

/// Writes `network` (and `trainer`'s state when given) to `path` atomically.
pub fn save_checkpoint(
    path: &Path,
    network: &Network,
    trainer: Option<&TrainerState>,
    tokenizer: Option<&str>,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let n = network.params.data.len();
    let mut tensors: Vec<(&str, Vec<usize>, &[f32])> = Vec::new();
    let training = trainer.map(|t| {
        for (name, values) in &t.optimizer.slots {
            tensors.push((name.as_str(), vec![n], values.as_slice()));
        }
        if let Some(carried) = &t.carried {
            tensors.push(("train.state_h", vec![carried.h.len()], carried.h.as_slice()));
            if let Some(c) = &carried.c {
                tensors.push(("train.state_c", vec![c.len()], c.as_slice()));
            }
        }
        json!({
            "checkpoint_version": CHECKPOINT_VERSION,
            "options": t.options.to_json(),
            "position": t.position,
            "optimizer_step": t.optimizer.step,
            "optimizer_slots": t.optimizer.slots.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            "rng": t.rng,
        })
        .to_string()
    });
    let options = SaveOptions {
        tokenizer,
        training: training.as_deref(),
        metadata: metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        tensors,
    };
    save_model(path, &network.config, &network.params, &options)
}

/// Reads a model file or checkpoint.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let mut file = load_model(path)?;
    let shown = path.display();
    let trainer = match &file.training {
        None => None,
        Some(text) => {
            let bad = |what: &str| Error::Format(format!("\"{shown}\": training metadata: {what}"));
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(&format!("invalid JSON ({e})")))?;
            match v["checkpoint_version"].as_u64() {
                Some(CHECKPOINT_VERSION) => {}
                other => return Err(bad(&format!("unknown checkpoint_version {other:?}, expected {CHECKPOINT_VERSION}"))),
            }
            let options = TrainOptions::from_json(&v["options"])?;
            let position: Position = serde_json::from_value(v["position"].clone()).map_err(|e| bad(&format!("position: {e}")))?;
            let rng: RngState = serde_json::from_value(v["rng"].clone()).map_err(|e| bad(&format!("rng: {e}")))?;
            let step = v["optimizer_step"].as_u64().ok_or_else(|| bad("optimizer_step missing"))?;
            let names = v["optimizer_slots"].as_array().ok_or_else(|| bad("optimizer_slots missing"))?;
            let mut slots = Vec::new();
            for name in names {
                let name = name.as_str().ok_or_else(|| bad("optimizer_slots: expected strings"))?;
                let (_, values) = file.extra.remove(name).ok_or_else(|| bad(&format!("tensor \"{name}\" missing")))?;
                slots.push((name.to_string(), values));
            }
            let carried = match file.extra.remove("train.state_h") {
                Some((_, h)) => Some(StackState { h, c: file.extra.remove("train.state_c").map(|(_, c)| c) }),
                None => None,
            };
            Some(TrainerState { options, position, optimizer: OptimizerState { step, slots }, rng, carried })
        }
    };
    let network = Network::from_params(file.config, file.params)?;
    Ok(Checkpoint { network, trainer, tokenizer: file.tokenizer, metadata: file.metadata })
}
