//! The architecture options of a new model, typed, with the defaults of each task in one table
//! (`rnn_core::defaults::task_recipe`), converted into the engine's `ModelConfig`, which validates them once.

use napi_derive::napi;
use rnn_core::config::{ModelConfig, Task};
use serde_json::{json, Map, Value};

use crate::errors::NodeError;
use crate::options::Strict;
use crate::strict_object;
use crate::train_options::{whole, within};

/// What a new model is made of. Which keys apply depends on the task: token input
/// (`vocabSize`, `embedDim`) or dense input (`inputSize`); `skip` for language models;
/// `bidirectional`, `pooling` for sequence tasks; `perStep` for regressors.
#[napi(object, object_to_js = false)]
pub struct ModelOptions {
    #[napi(ts_type = "'rnn' | 'lstm' | 'gru'")]
    pub cell: Option<String>,
    #[napi(ts_type = "'tanh' | 'relu'")]
    pub nonlinearity: Option<String>,
    pub hidden_size: Option<f64>,
    pub num_layers: Option<f64>,
    pub dropout: Option<f64>,
    /// Seed of the initial weights.
    pub seed: Option<f64>,
    #[napi(ts_type = "InitOptions")]
    pub init: Option<Strict<crate::model::InitOptions>>,
    pub vocab_size: Option<f64>,
    pub embed_dim: Option<f64>,
    pub input_size: Option<f64>,
    pub output_size: Option<f64>,
    pub skip: Option<bool>,
    pub bidirectional: Option<bool>,
    #[napi(ts_type = "'last' | 'mean' | 'max'")]
    pub pooling: Option<String>,
    pub per_step: Option<bool>,
    /// Speech models: the output characters, in class order after the CTC blank (e.g.
    /// `"0123456789 "`; the space separates words).
    pub alphabet: Option<String>,
    /// Speech models: feature frames joined into one recurrent step (stride the same), default 1.
    pub frame_stacking: Option<f64>,
}
strict_object!(
    ModelOptions,
    "options",
    [
        "cell", "nonlinearity", "hiddenSize", "numLayers", "dropout", "seed", "init", "vocabSize", "embedDim", "inputSize",
        "outputSize", "skip", "bidirectional", "pooling", "perStep", "alphabet", "frameStacking"
    ],
    caller: ["tokenizer", "labels", "tags", "maxLength", "normalize", "featureStats", "features"]
);

/// The engine's config of a new `task` model from `o`, and the seed of its weights.
pub fn model_config(task: &str, o: &ModelOptions) -> Result<(ModelConfig, u64), NodeError> {
    let d = rnn_core::defaults::task_recipe(Task::parse(task).map_err(NodeError::from)?);
    let size = |name: &str, v: Option<f64>, default: Option<u64>| -> Result<Option<Value>, NodeError> {
        Ok(match v {
            Some(x) => Some(Value::from(whole(&format!("options.{name}"), x)?)),
            None => default.map(Value::from),
        })
    };
    let mut m = Map::new();
    m.insert("task".into(), Value::from(task));
    m.insert("cell".into(), Value::from(o.cell.clone().unwrap_or_else(|| d.cell.into())));
    if let Some(n) = &o.nonlinearity {
        m.insert("nonlinearity".into(), Value::from(n.clone()));
    }
    for (key, name, v, default) in [
        ("hidden_size", "hiddenSize", o.hidden_size, Some(d.hidden_size)),
        ("num_layers", "numLayers", o.num_layers, Some(d.num_layers)),
        ("output_size", "outputSize", o.output_size, Some(1)),
        ("input_size", "inputSize", o.input_size, None),
        ("vocab_size", "vocabSize", o.vocab_size, None),
    ] {
        if let Some(v) = size(name, v, default)? {
            m.insert(key.into(), v);
        }
    }
    if o.vocab_size.is_some() {
        m.insert("embed_dim".into(), size("embedDim", o.embed_dim, Some(d.embed_dim))?.expect("has a default"));
    } else if o.embed_dim.is_some() {
        return Err(NodeError::type_error(
            "ERR_RNNKIT_CONFIG",
            "options.embedDim: only for token input (tokenizer)".into(),
        ));
    }
    if task == "language_model" {
        // A language model predicts its own vocabulary.
        if let Some(v) = m.get("vocab_size").cloned() {
            m.insert("output_size".into(), v);
        }
    }
    if let Some(p) = o.dropout {
        m.insert("dropout".into(), json!(p));
    }
    m.insert("skip".into(), Value::from(o.skip.unwrap_or(false)));
    m.insert("bidirectional".into(), Value::from(o.bidirectional.unwrap_or(d.bidirectional)));
    if o.pooling.is_some() && o.per_step == Some(true) {
        return Err(NodeError::type_error(
            "ERR_RNNKIT_CONFIG",
            "options.pooling: a per-step regressor does not pool".into(),
        ));
    }
    m.insert("pooling".into(), Value::from(o.pooling.clone().unwrap_or_else(|| d.pooling.into())));
    m.insert("per_step".into(), Value::from(o.per_step.unwrap_or(task == "tag")));
    match (&o.alphabet, task) {
        (Some(a), _) => {
            let symbols: Vec<Value> = a.chars().map(|c| Value::from(c.to_string())).collect();
            if task == "speech" {
                // The head: the symbols and the blank.
                m.insert("output_size".into(), Value::from(symbols.len() + 1));
            }
            m.insert("alphabet".into(), Value::Array(symbols));
        }
        (None, "speech") => {
            return Err(NodeError::type_error(
                "ERR_RNNKIT_CONFIG",
                "options.alphabet: a speech model needs its alphabet (a string of its output characters)".into(),
            ))
        }
        (None, _) => {}
    }
    if let Some(k) = size("frameStacking", o.frame_stacking, None)? {
        if task != "speech" {
            return Err(NodeError::type_error(
                "ERR_RNNKIT_CONFIG",
                "options.frameStacking: only for speech models".into(),
            ));
        }
        m.insert("frame_stacking".into(), k);
    }
    let seed = o.seed.map(|s| whole("options.seed", s)).transpose()?.unwrap_or(0);
    let config = ModelConfig::from_json(&Value::Object(m))
        .and_then(|c| c.validate().map(|()| c))
        .map_err(|e| within("options", e))?;
    Ok((config, seed))
}
