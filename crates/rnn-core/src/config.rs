//! Model architecture: what a network is made of, its JSON form (docs/FORMAT.md `config`) and the
//! names and shapes of its parameters.

use crate::alphabet::Alphabet;
use crate::error::{Error, Result};
use crate::params::ParamLayout;
use serde_json::{json, Value};

/// The recurrent cell. Gate counts G and gate order follow PyTorch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    /// Elman RNN, `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`.
    RnnTanh,
    /// Elman RNN with ReLU.
    RnnRelu,
    /// LSTM, gate rows `i, f, g, o`.
    Lstm,
    /// GRU, gate rows `r, z, n`, reset applied after the hidden matmul.
    Gru,
}

impl CellKind {
    /// Number of gate blocks G (the weight matrices have G·H rows).
    pub fn gates(self) -> usize {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    /// Whether the cell carries a memory state `c` besides `h`.
    pub fn has_cell_state(self) -> bool {
        self == CellKind::Lstm
    }

    /// Parses `cell` (`"rnn" | "lstm" | "gru"`, also `"rnn_tanh"`, `"rnn_relu"`) and
    /// `nonlinearity` (`"tanh" | "relu" | null`).
    pub fn parse(cell: &str, nonlinearity: Option<&str>) -> Result<Self> {
        let kind = match (cell, nonlinearity) {
            ("lstm", None) => CellKind::Lstm,
            ("gru", None) => CellKind::Gru,
            ("rnn", None | Some("tanh")) | ("rnn_tanh", None) => CellKind::RnnTanh,
            ("rnn", Some("relu")) | ("rnn_relu", None) => CellKind::RnnRelu,
            ("lstm" | "gru", Some(n)) => {
                return Err(Error::Config(format!(
                    "nonlinearity: only the Elman \"rnn\" cell takes one, got \"{n}\" for \"{cell}\""
                )))
            }
            ("rnn", Some(n)) => {
                return Err(Error::Config(format!("nonlinearity: expected \"tanh\" or \"relu\", got \"{n}\"")))
            }
            _ => return Err(Error::Config(format!("cell: expected \"rnn\", \"lstm\" or \"gru\", got \"{cell}\""))),
        };
        Ok(kind)
    }

    /// The `cell` string of the JSON config.
    pub fn cell_name(self) -> &'static str {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => "rnn",
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        }
    }

    /// The `nonlinearity` of the JSON config (`None` for LSTM and GRU).
    pub fn nonlinearity(self) -> Option<&'static str> {
        match self {
            CellKind::RnnTanh => Some("tanh"),
            CellKind::RnnRelu => Some("relu"),
            _ => None,
        }
    }
}

/// What the network computes from its recurrent outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Next-token logits at every step (`output_size` = vocabulary size).
    LanguageModel,
    /// One label per sequence from pooled recurrent outputs.
    Classify,
    /// One label per input step.
    Tag,
    /// Real-valued outputs (MSE), one per sequence or one per step (see `per_step`).
    Regress,
    /// Speech recognition: dense feature frames in, per-frame scores over an alphabet and the
    /// CTC blank out (see [`SpeechConfig`]), trained with the CTC loss.
    Speech,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::LanguageModel => "language_model",
            Task::Classify => "classify",
            Task::Tag => "tag",
            Task::Regress => "regress",
            Task::Speech => "speech",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "language_model" => Task::LanguageModel,
            "classify" => Task::Classify,
            "tag" => Task::Tag,
            "regress" => Task::Regress,
            "speech" => Task::Speech,
            _ => {
                return Err(Error::Config(format!(
                    "task: expected \"language_model\", \"classify\", \"tag\", \"regress\" or \"speech\", got \"{s}\""
                )))
            }
        })
    }
}

/// How a many-to-one model reduces the real steps of a sequence to one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The output at the last real step (for a bidirectional layer: the forward half at the last
    /// real step and the backward half at step 0, i.e. both directions' final states).
    Last,
    /// The mean over real steps.
    Mean,
    /// The element-wise maximum over real steps.
    Max,
}

impl Pooling {
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Last => "last",
            Pooling::Mean => "mean",
            Pooling::Max => "max",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "last" => Pooling::Last,
            "mean" => Pooling::Mean,
            "max" => Pooling::Max,
            _ => return Err(Error::Config(format!("pooling: expected \"last\", \"mean\" or \"max\", got \"{s}\""))),
        })
    }
}

/// The input side: token ids through an embedding, or dense float vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Tokens { vocab_size: usize, embed_dim: usize },
    Dense { input_size: usize },
}

/// What a speech model adds to its network (config fields `alphabet`, `frame_stacking`).
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechConfig {
    /// The output characters; the head has `alphabet.classes()` outputs, the blank first.
    pub alphabet: Alphabet,
    /// `k` consecutive feature frames joined into one recurrent input of `k·F` values (stride
    /// `k`), so the recurrence runs `⌈T / k⌉` steps; 1 = every frame.
    pub frame_stacking: usize,
}

/// The largest frame stacking accepted.
pub const MAX_FRAME_STACKING: usize = 64;

impl SpeechConfig {
    /// Steps the recurrence runs for `frames` input frames: `⌈frames / k⌉`.
    pub fn steps(&self, frames: usize) -> usize {
        frames.div_ceil(self.frame_stacking)
    }
}

/// A whole network: input → stacked (bi)directional recurrent layers → head.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub task: Task,
    pub cell: CellKind,
    pub input: InputKind,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub bidirectional: bool,
    /// Elman's input-to-output term `W_xo x_t` (token LM only; `skip.weight` [V, E]).
    pub skip: bool,
    /// Dropout probability between recurrent layers, applied in training only.
    pub dropout: f32,
    /// Head width: vocabulary size (LM), classes, tags or regression outputs.
    pub output_size: usize,
    /// Pooling for `Classify` and many-to-one `Regress`.
    pub pooling: Pooling,
    /// `Regress` only: one output per step (many-to-many) instead of one per sequence.
    pub per_step: bool,
    /// `Speech` only (and required there): alphabet and frame stacking.
    pub speech: Option<SpeechConfig>,
}

/// The largest size accepted for any single dimension; bigger is refused before allocating.
pub const MAX_DIM: usize = 1 << 20;
/// The largest number of parameters accepted (4 GiB of f32).
pub const MAX_PARAMS: usize = 1 << 30;

impl ModelConfig {
    /// Number of directions D.
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Width of the vector fed to the first recurrent layer (E, or the dense input size times
    /// a speech model's frame stacking).
    pub fn rnn_input_size(&self) -> usize {
        match self.input {
            InputKind::Tokens { embed_dim, .. } => embed_dim,
            InputKind::Dense { input_size } => input_size * self.speech.as_ref().map_or(1, |s| s.frame_stacking),
        }
    }

    /// Checks every size and combination, with messages naming the offending field.
    pub fn validate(&self) -> Result<()> {
        let dim = |name: &str, v: usize| -> Result<()> {
            if v == 0 || v > MAX_DIM {
                return Err(Error::Range(format!("{name}: expected an integer in 1..={MAX_DIM}, got {v}")));
            }
            Ok(())
        };
        dim("hidden_size", self.hidden_size)?;
        dim("output_size", self.output_size)?;
        if self.num_layers == 0 || self.num_layers > 64 {
            return Err(Error::Range(format!("num_layers: expected an integer in 1..=64, got {}", self.num_layers)));
        }
        match self.input {
            InputKind::Tokens { vocab_size, embed_dim } => {
                dim("vocab_size", vocab_size)?;
                dim("embed_dim", embed_dim)?;
                if self.task == Task::LanguageModel && self.output_size != vocab_size {
                    return Err(Error::Config(format!(
                        "output_size: a language model predicts its own vocabulary ({vocab_size}), got {}",
                        self.output_size
                    )));
                }
            }
            InputKind::Dense { input_size } => {
                dim("input_size", input_size)?;
                if self.task == Task::LanguageModel {
                    return Err(Error::Config(
                        "task: a language model needs token inputs (vocab_size and embed_dim)".into(),
                    ));
                }
            }
        }
        if self.skip && !(self.task == Task::LanguageModel) {
            return Err(Error::Config("skip: the input-to-output term is only defined for language models".into()));
        }
        match (&self.speech, self.task) {
            (Some(sp), Task::Speech) => {
                if !matches!(self.input, InputKind::Dense { .. }) {
                    return Err(Error::Config("task: a speech model takes dense feature frames (input_size)".into()));
                }
                if sp.frame_stacking == 0 || sp.frame_stacking > MAX_FRAME_STACKING {
                    return Err(Error::Range(format!(
                        "frame_stacking: expected an integer in 1..={MAX_FRAME_STACKING}, got {}",
                        sp.frame_stacking
                    )));
                }
                dim("input_size × frame_stacking", self.rnn_input_size())?;
                if self.output_size != sp.alphabet.classes() {
                    return Err(Error::Config(format!(
                        "output_size: a speech model outputs its {} symbols and the blank ({}), got {}",
                        sp.alphabet.symbols().len(),
                        sp.alphabet.classes(),
                        self.output_size
                    )));
                }
            }
            (None, Task::Speech) => return Err(Error::Config("alphabet: a speech model needs its alphabet".into())),
            (Some(_), _) => return Err(Error::Config("alphabet: only a speech model has an alphabet".into())),
            (None, _) => {}
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Range(format!("dropout: expected a number in [0, 1), got {}", self.dropout)));
        }
        if self.task == Task::LanguageModel && self.bidirectional {
            return Err(Error::Config(
                "bidirectional: a language model cannot see the future; use it for classify or tag".into(),
            ));
        }
        let total = self.param_entries().iter().map(|(_, s)| s.iter().product::<usize>()).sum::<usize>();
        if total > MAX_PARAMS {
            return Err(Error::Range(format!("model size: {total} parameters exceed the limit of {MAX_PARAMS}")));
        }
        Ok(())
    }

    /// The parameter names and shapes, in file order (docs/FORMAT.md).
    pub fn param_entries(&self) -> Vec<(String, Vec<usize>)> {
        let mut v = Vec::new();
        if let InputKind::Tokens { vocab_size, embed_dim } = self.input {
            v.push(("embed.weight".to_string(), vec![vocab_size, embed_dim]));
        }
        let gh = self.cell.gates() * self.hidden_size;
        let d = self.directions();
        for layer in 0..self.num_layers {
            let in_k = if layer == 0 { self.rnn_input_size() } else { d * self.hidden_size };
            for dir in 0..d {
                let sfx = if dir == 1 { "_reverse" } else { "" };
                v.push((format!("rnn.weight_ih_l{layer}{sfx}"), vec![gh, in_k]));
                v.push((format!("rnn.weight_hh_l{layer}{sfx}"), vec![gh, self.hidden_size]));
                v.push((format!("rnn.bias_ih_l{layer}{sfx}"), vec![gh]));
                v.push((format!("rnn.bias_hh_l{layer}{sfx}"), vec![gh]));
            }
        }
        v.push(("head.weight".to_string(), vec![self.output_size, d * self.hidden_size]));
        v.push(("head.bias".to_string(), vec![self.output_size]));
        if self.skip {
            if let InputKind::Tokens { vocab_size, embed_dim } = self.input {
                v.push(("skip.weight".to_string(), vec![vocab_size, embed_dim]));
            }
        }
        v
    }

    /// The flat-buffer layout of the parameters.
    pub fn layout(&self) -> ParamLayout {
        ParamLayout::new(self.param_entries())
    }

    /// The JSON form written to a model file's `config` metadata.
    pub fn to_json(&self) -> Value {
        let mut m = json!({
            "task": self.task.name(),
            "cell": self.cell.cell_name(),
            "nonlinearity": self.cell.nonlinearity(),
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "skip": self.skip,
            "dropout": self.dropout,
            "output_size": self.output_size,
            "pooling": self.pooling.name(),
            "per_step": self.per_step,
        });
        match self.input {
            InputKind::Tokens { vocab_size, embed_dim } => {
                m["vocab_size"] = json!(vocab_size);
                m["embed_dim"] = json!(embed_dim);
            }
            InputKind::Dense { input_size } => m["input_size"] = json!(input_size),
        }
        if let Some(sp) = &self.speech {
            m["alphabet"] = json!(sp.alphabet.symbols().iter().map(|c| c.to_string()).collect::<Vec<_>>());
            m["frame_stacking"] = json!(sp.frame_stacking);
        }
        m
    }

    /// Reads the JSON form, accepting the minimal form of the PyTorch fixtures (docs/FORMAT.md).
    pub fn from_json(v: &Value) -> Result<Self> {
        let obj = v.as_object().ok_or_else(|| Error::Format("config: expected a JSON object".into()))?;
        let uint = |k: &str| -> Result<Option<usize>> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => x
                    .as_u64()
                    .map(|n| Some(n as usize))
                    .ok_or_else(|| Error::Format(format!("config.{k}: expected a non-negative integer, got {x}"))),
            }
        };
        let string = |k: &str| -> Result<Option<&str>> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => {
                    x.as_str().map(Some).ok_or_else(|| Error::Format(format!("config.{k}: expected a string, got {x}")))
                }
            }
        };
        let boolean = |k: &str| -> Result<bool> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(false),
                Some(x) => x.as_bool().ok_or_else(|| Error::Format(format!("config.{k}: expected a boolean, got {x}"))),
            }
        };
        let required = |k: &str, x: Option<usize>| x.ok_or_else(|| Error::Format(format!("config.{k}: missing")));
        let task_name = string("task")?.unwrap_or("language_model");
        if task_name == "seq2seq" {
            // A different architecture with its own loader: say so instead of a parse error.
            return Err(Error::Format(
                "config.task: \"seq2seq\" is a sequence-to-sequence model; read it with Seq2Seq::load (loadModel in JavaScript)"
                    .into(),
            ));
        }
        let task = Task::parse(task_name)?;
        let cell = CellKind::parse(
            string("cell")?.ok_or_else(|| Error::Format("config.cell: missing".into()))?,
            string("nonlinearity")?,
        )?;
        let input = match (uint("vocab_size")?, uint("embed_dim")?, uint("input_size")?) {
            (Some(vocab_size), Some(embed_dim), None) => InputKind::Tokens { vocab_size, embed_dim },
            (None, None, Some(input_size)) => InputKind::Dense { input_size },
            _ => {
                return Err(Error::Format(
                    "config: expected either vocab_size and embed_dim (tokens) or input_size (dense)".into(),
                ))
            }
        };
        let output_size = match (uint("output_size")?, input) {
            (Some(n), _) => n,
            (None, InputKind::Tokens { vocab_size, .. }) if task == Task::LanguageModel => vocab_size,
            _ => return Err(Error::Format("config.output_size: missing".into())),
        };
        let dropout = match obj.get("dropout") {
            None | Some(Value::Null) => 0.0,
            Some(x) => {
                x.as_f64().ok_or_else(|| Error::Format(format!("config.dropout: expected a number, got {x}")))? as f32
            }
        };
        let speech = match obj.get("alphabet") {
            None | Some(Value::Null) => None,
            Some(Value::Array(symbols)) => {
                let chars = symbols
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let mut it = v.as_str().map(str::chars).into_iter().flatten();
                        match (it.next(), it.next()) {
                            (Some(c), None) => Ok(c),
                            _ => Err(Error::Format(format!(
                                "config.alphabet[{i}]: expected a one-character string, got {v}"
                            ))),
                        }
                    })
                    .collect::<Result<Vec<char>>>()?;
                Some(SpeechConfig {
                    alphabet: Alphabet::new(chars)?,
                    frame_stacking: uint("frame_stacking")?.unwrap_or(1),
                })
            }
            Some(x) => return Err(Error::Format(format!("config.alphabet: expected an array of characters, got {x}"))),
        };
        let cfg = ModelConfig {
            task,
            cell,
            input,
            hidden_size: required("hidden_size", uint("hidden_size")?)?,
            num_layers: required("num_layers", uint("num_layers")?)?,
            bidirectional: boolean("bidirectional")?,
            skip: boolean("skip")?,
            dropout,
            output_size,
            pooling: Pooling::parse(string("pooling")?.unwrap_or("last"))?,
            per_step: boolean("per_step")?,
            speech,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}
