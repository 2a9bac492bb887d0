//! Plain PyTorch `state_dict`s in: a safetensors file written by `safetensors.torch.save_file(
//! module.state_dict(), path)` (no rnnkit metadata) mapped onto a [`ModelConfig`]'s parameters.
//!
//! The module names of the user's PyTorch model are free (`encoder`, `lstm`, `decoder`, ...): the
//! recurrent module is the one prefix of `*weight_ih_l0`; the head is the one `M.weight` + `M.bias`
//! pair shaped `[C, D·H]` + `[C]`; the embedding the one bias-free `M.weight` shaped `[V, E]`
//! (and, with `skip`, the skip term the other). Any of them may be named instead
//! ([`StateDictNames`]) when the shapes do not tell them apart. Every parameter the config needs
//! must be present with its shape and finite, and every tensor of the file must be used, so a
//! state_dict of another architecture (say, `proj_size`, a second head) is refused, not
//! half-read. Weight layouts and gate orders are PyTorch's already (docs/FORMAT.md), so values
//! are copied as they are (F64 tensors rounded to f32).

use crate::config::{InputKind, ModelConfig};
use crate::error::{Error, Result};
use crate::io::{read_tensors, Tensor, TensorData, TensorFile};
use crate::params::Params;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// Module names of the PyTorch model (`"encoder"` for `encoder.weight`); `None` = inferred.
#[derive(Debug, Clone, Default)]
pub struct StateDictNames {
    /// The `nn.Embedding` (token input only).
    pub embedding: Option<String>,
    /// The `nn.RNN`/`nn.LSTM`/`nn.GRU`.
    pub rnn: Option<String>,
    /// The output `nn.Linear`.
    pub head: Option<String>,
    /// The bias-free `nn.Linear` of the skip term (`skip: true` only).
    pub skip: Option<String>,
}

/// Reads `path` (a plain state_dict) and returns the parameters of `config` from it.
pub fn import_state_dict(path: &Path, config: &ModelConfig, names: &StateDictNames) -> Result<Params> {
    let file = read_tensors(path)?;
    params_from_state_dict(&file, config, names)
}

/// [`import_state_dict`] on a file already read.
pub fn params_from_state_dict(file: &TensorFile, config: &ModelConfig, names: &StateDictNames) -> Result<Params> {
    let f = &file.path;
    let rnn = match &names.rnn {
        Some(m) => module_prefix(m),
        None => infer_rnn(file)?,
    };
    let d = config.directions();
    let head = match &names.head {
        Some(m) => module_prefix(m),
        None => infer_linear(file, &rnn, &[config.output_size, d * config.hidden_size], true, &[], "head")?,
    };
    let (embed, skip) = match config.input {
        InputKind::Dense { .. } => (None, None),
        InputKind::Tokens { vocab_size, embed_dim } => {
            let shape = [vocab_size, embed_dim];
            let taken = [head.clone()];
            let embed = match &names.embedding {
                Some(m) => module_prefix(m),
                None if config.skip && names.skip.is_some() => {
                    let s = module_prefix(names.skip.as_deref().expect("checked"));
                    infer_linear(file, &rnn, &shape, false, &[head.clone(), s], "embedding")?
                }
                None if config.skip => {
                    return Err(Error::Config(format!(
                        "\"{f}\": with skip, the embedding and the skip term have the same shape {shape:?}; name them (names.embedding, names.skip)"
                    )))
                }
                None => infer_linear(file, &rnn, &shape, false, &taken, "embedding")?,
            };
            let skip = match (&names.skip, config.skip) {
                (Some(m), true) => Some(module_prefix(m)),
                (None, true) => Some(infer_linear(file, &rnn, &shape, false, &[head.clone(), embed.clone()], "skip")?),
                (_, false) => None,
            };
            (Some(embed), skip)
        }
    };
    let source = |name: &str| -> String {
        if let Some(rest) = name.strip_prefix("rnn.") {
            format!("{rnn}{rest}")
        } else if let Some(rest) = name.strip_prefix("head.") {
            format!("{head}{rest}")
        } else if let Some(rest) = name.strip_prefix("embed.") {
            format!("{}{rest}", embed.as_deref().unwrap_or("embed."))
        } else if let Some(rest) = name.strip_prefix("skip.") {
            format!("{}{rest}", skip.as_deref().unwrap_or("skip."))
        } else {
            name.to_string()
        }
    };
    let layout = Arc::new(config.layout());
    let mut params = Params::zeros(layout.clone());
    let mut used = BTreeSet::new();
    for spec in layout.specs() {
        let from = source(&spec.name);
        let t = file.tensors.get(&from).ok_or_else(|| {
            Error::Format(format!(
                "\"{f}\": tensor \"{from}\" (rnnkit's \"{}\", shape {:?}) is missing; the config requires it",
                spec.name, spec.shape
            ))
        })?;
        if t.shape != spec.shape {
            return Err(Error::Format(format!(
                "\"{f}\": tensor \"{from}\" (rnnkit's \"{}\"): expected shape {:?} from the config, got {:?}",
                spec.name, spec.shape, t.shape
            )));
        }
        let dst = params.view_mut(&spec.name);
        copy_values(f, &from, t, dst)?;
        if let Some(i) = dst.iter().position(|v| !v.is_finite()) {
            return Err(Error::Format(format!(
                "\"{f}\": tensor \"{from}\": value {} at flat index {i} is not finite",
                dst[i]
            )));
        }
        used.insert(from);
    }
    if let Some(extra) = file.tensors.keys().find(|k| !used.contains(*k)) {
        return Err(Error::Format(format!(
            "\"{f}\": tensor \"{extra}\" (shape {:?}) has no place in the rnnkit model of this config; \
             an architecture rnnkit does not have (or a config with fewer layers, no bidirectional, no skip) cannot be imported",
            file.tensors[extra].shape
        )));
    }
    Ok(params)
}

/// `"lstm"` → `"lstm."`; `""` (a bare `nn.LSTM` saved on its own) stays `""`.
fn module_prefix(m: &str) -> String {
    if m.is_empty() || m.ends_with('.') {
        m.to_string()
    } else {
        format!("{m}.")
    }
}

/// The prefix of the one `*weight_ih_l0` tensor.
fn infer_rnn(file: &TensorFile) -> Result<String> {
    let found: Vec<&str> = file
        .tensors
        .keys()
        .filter_map(|k| k.strip_suffix("weight_ih_l0"))
        .filter(|p| p.is_empty() || p.ends_with('.'))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(Error::Format(format!(
            "\"{}\": no recurrent module: no tensor named \"<module>.weight_ih_l0\" (nn.RNN/nn.LSTM/nn.GRU); tensors: {}",
            file.path,
            list(file)
        ))),
        many => Err(Error::Config(format!(
            "\"{}\": several recurrent modules ({}); name the one to import (names.rnn)",
            file.path,
            many.iter().map(|p| format!("\"{}\"", p.trim_end_matches('.'))).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The module `M` outside the recurrent one and not in `taken` with a 2-D `M.weight` and
/// (`with_bias`) an `M.bias` of its rows, or (not `with_bias`) no `M.bias`: the only one, else the
/// only one of `shape` (so a single candidate of the wrong shape is reported by the shape check,
/// which names the tensor).
fn infer_linear(
    file: &TensorFile,
    rnn: &str,
    shape: &[usize],
    with_bias: bool,
    taken: &[String],
    what: &str,
) -> Result<String> {
    let candidates: Vec<(String, &Tensor)> = file
        .tensors
        .iter()
        .filter_map(|(k, t)| k.strip_suffix("weight").filter(|_| t.shape.len() == 2).map(|m| (m.to_string(), t)))
        .filter(|(m, _)| {
            (m.is_empty() || m.ends_with('.')) && (rnn.is_empty() || !m.starts_with(rnn)) && !taken.contains(m)
        })
        .filter(|(m, t)| {
            let bias = file.tensors.get(&format!("{m}bias"));
            if with_bias {
                bias.is_some_and(|b| b.shape == [t.shape[0]])
            } else {
                bias.is_none()
            }
        })
        .collect();
    let found: Vec<&String> = if candidates.len() == 1 {
        vec![&candidates[0].0]
    } else {
        candidates.iter().filter(|(_, t)| t.shape == shape).map(|(m, _)| m).collect()
    };
    let kind = if with_bias { "M.weight + M.bias" } else { "bias-free M.weight" };
    let option = match what {
        "head" => "head",
        "skip" => "skip",
        _ => "embedding",
    };
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::Format(format!(
            "\"{}\": no {what} found: no {kind} of shape {shape:?} (from the config); name it (names.{option}) or check the config; tensors: {}",
            file.path,
            list(file)
        ))),
        many => Err(Error::Config(format!(
            "\"{}\": several candidates for the {what} ({}); name it (names.{option})",
            file.path,
            many.iter().map(|m| format!("\"{}\"", m.trim_end_matches('.'))).collect::<Vec<_>>().join(", "),
        ))),
    }
}

/// Every tensor as `name [shape]`, for error messages.
fn list(file: &TensorFile) -> String {
    file.tensors.iter().map(|(k, t)| format!("{k} {:?}", t.shape)).collect::<Vec<_>>().join(", ")
}

fn copy_values(file: &str, name: &str, t: &Tensor, dst: &mut [f32]) -> Result<()> {
    match &t.data {
        TensorData::F32(v) => dst.copy_from_slice(v),
        TensorData::F64(v) => dst.iter_mut().zip(v).for_each(|(d, &s)| *d = s as f32),
        _ => {
            return Err(Error::Format(format!(
                "\"{file}\": tensor \"{name}\": expected a float tensor (F32 or F64), got an integer one"
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Tensor;
    use serde_json::json;
    use std::collections::BTreeMap;

    /// A PyTorch-named state_dict of `cfg` (`encoder`/`lstm`/`decoder`), values = flat index.
    fn state_dict(cfg: &ModelConfig, rename: &[(&str, &str)]) -> TensorFile {
        let mut tensors = BTreeMap::new();
        for (name, shape) in cfg.param_entries() {
            let mut n = name.clone();
            for (a, b) in rename {
                if let Some(rest) = name.strip_prefix(a) {
                    n = format!("{b}{rest}");
                }
            }
            let len: usize = shape.iter().product();
            let v: Vec<f32> = (0..len).map(|i| i as f32 * 0.01).collect();
            tensors.insert(n, Tensor { shape, data: TensorData::F32(v) });
        }
        TensorFile { path: "sd.safetensors".into(), metadata: BTreeMap::new(), tensors }
    }

    fn lm(skip: bool) -> ModelConfig {
        ModelConfig::from_json(&json!({"cell": "lstm", "vocab_size": 7, "embed_dim": 3, "hidden_size": 4,
            "num_layers": 2, "skip": skip}))
        .unwrap()
    }

    const NAMES: [(&str, &str); 3] = [("embed.", "encoder."), ("rnn.", "lstm."), ("head.", "decoder.")];

    #[test]
    fn names_are_inferred_from_shapes() {
        let cfg = lm(false);
        let sd = state_dict(&cfg, &NAMES);
        let p = params_from_state_dict(&sd, &cfg, &StateDictNames::default()).unwrap();
        assert_eq!(
            p.view("rnn.weight_hh_l1"),
            match &sd.tensors["lstm.weight_hh_l1"].data {
                TensorData::F32(v) => v.as_slice(),
                _ => unreachable!(),
            }
        );
        assert_eq!(p.view("head.bias")[2], 0.02);
    }

    #[test]
    fn missing_and_misshaped_tensors_are_named() {
        let cfg = lm(false);
        let mut sd = state_dict(&cfg, &NAMES);
        sd.tensors.remove("lstm.bias_hh_l1");
        let e = params_from_state_dict(&sd, &cfg, &StateDictNames::default()).unwrap_err().to_string();
        assert!(e.contains("\"lstm.bias_hh_l1\"") && e.contains("missing"), "{e}");
        let mut sd = state_dict(&cfg, &NAMES);
        sd.tensors.get_mut("lstm.weight_ih_l1").unwrap().shape = vec![16, 5];
        let e = params_from_state_dict(&sd, &cfg, &StateDictNames::default()).unwrap_err().to_string();
        assert!(e.contains("\"lstm.weight_ih_l1\"") && e.contains("[16, 4]") && e.contains("[16, 5]"), "{e}");
    }

    #[test]
    fn unused_tensors_are_refused() {
        let two = lm(false);
        let sd = state_dict(&two, &NAMES);
        let mut one = two.clone();
        one.num_layers = 1;
        let e = params_from_state_dict(&sd, &one, &StateDictNames::default()).unwrap_err().to_string();
        assert!(e.contains("\"lstm.bias_hh_l1\"") && e.contains("no place"), "{e}");
    }

    #[test]
    fn skip_needs_names_and_takes_them() {
        let cfg = lm(true);
        let sd = state_dict(&cfg, &[("embed.", "emb."), ("rnn.", "lstm."), ("head.", "out."), ("skip.", "direct.")]);
        let e = params_from_state_dict(&sd, &cfg, &StateDictNames::default()).unwrap_err().to_string();
        assert!(e.contains("names.embedding"), "{e}");
        let names = StateDictNames { skip: Some("direct".into()), ..Default::default() };
        let p = params_from_state_dict(&sd, &cfg, &names).unwrap();
        assert_eq!(p.view("skip.weight")[1], 0.01);
    }

    #[test]
    fn a_wrapped_state_dict_imports_under_its_prefix() {
        // `DistributedDataParallel(model).state_dict()` prefixes every name with "module.".
        let cfg = lm(false);
        let sd =
            state_dict(&cfg, &[("embed.", "module.encoder."), ("rnn.", "module.lstm."), ("head.", "module.decoder.")]);
        let p = params_from_state_dict(&sd, &cfg, &StateDictNames::default()).unwrap();
        assert_eq!(p.view("embed.weight")[3], 0.03);
    }

    #[test]
    fn a_bare_recurrent_module_imports_with_a_named_head() {
        let cfg = ModelConfig::from_json(&json!({"task": "regress", "cell": "gru", "input_size": 3, "hidden_size": 4,
            "num_layers": 1, "output_size": 2}))
        .unwrap();
        let sd = state_dict(&cfg, &[("rnn.", ""), ("head.", "fc.")]);
        let p = params_from_state_dict(&sd, &cfg, &StateDictNames::default()).unwrap();
        assert_eq!(p.view("rnn.bias_ih_l0").len(), 12);
    }
}
