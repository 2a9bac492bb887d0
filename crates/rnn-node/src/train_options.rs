//! The options of `fit`/`trainStep` and of a dataset's data order, as typed objects, converted
//! into the engine's [`TrainOptions`], which validates every value once
//! ([`TrainOptions::from_json`] runs the engine's checks; the JSON here is an in-process value,
//! never text crossing the binding).

use napi_derive::napi;
use rnn_core::batch::LastBatch;
use rnn_core::optim::OptimizerConfig;
use rnn_core::train::TrainOptions;
use serde_json::{json, Map, Value};

use crate::errors::NodeError;
use crate::options::Strict;
use crate::strict_object;

/// Optimizer hyper-parameters (PyTorch's definitions).
#[napi(object, object_to_js = false)]
pub struct OptimizerOptions {
    /// `'sgd' | 'adam' | 'adamw' | 'rmsprop' | 'adagrad'`; default `'adam'`.
    #[napi(js_name = "type", ts_type = "'sgd' | 'adam' | 'adamw' | 'rmsprop' | 'adagrad'")]
    pub kind: Option<String>,
    /// Learning rate; default 2e-3 (adam, adamw, rmsprop), 0.1 (sgd), 0.01 (adagrad).
    pub lr: Option<f64>,
    pub momentum: Option<f64>,
    pub nesterov: Option<bool>,
    pub dampening: Option<f64>,
    pub weight_decay: Option<f64>,
    pub betas: Option<Vec<f64>>,
    pub eps: Option<f64>,
    pub alpha: Option<f64>,
    pub centered: Option<bool>,
    pub lr_decay: Option<f64>,
}
strict_object!(
    OptimizerOptions,
    "options.optimizer",
    ["type", "lr", "momentum", "nesterov", "dampening", "weightDecay", "betas", "eps", "alpha", "centered", "lrDecay"]
);

/// Learning-rate schedule over the model's life-long step counter.
#[napi(object, object_to_js = false)]
pub struct ScheduleOptions {
    /// `'constant' | 'step' | 'exponential' | 'cosine'`; default `'constant'`.
    #[napi(js_name = "type", ts_type = "'constant' | 'step' | 'exponential' | 'cosine'")]
    pub kind: Option<String>,
    pub warmup_steps: Option<f64>,
    pub step_size: Option<f64>,
    pub gamma: Option<f64>,
    /// Cosine period in steps; default: to the end of this call's `maxSteps`.
    pub t_max: Option<f64>,
    pub eta_min: Option<f64>,
}
strict_object!(ScheduleOptions, "options.schedule", ["type", "warmupSteps", "stepSize", "gamma", "tMax", "etaMin"]);

/// Where and when `fit` saves checkpoints (model + optimizer + RNG + position).
#[napi(object, object_to_js = false)]
pub struct CheckpointOptions {
    pub path: String,
    /// Steps between checkpoints; optional with `best`.
    pub every: Option<f64>,
    /// Also write the checkpoint at every validation that improves the monitored metric
    /// (`earlyStopping.monitor`, else `valLoss`): without `every`, the file is always the best
    /// model so far; with it, the later of the two writes. Needs validation data.
    pub best: Option<bool>,
}
strict_object!(CheckpointOptions, "options.checkpoint", ["path", "every", "best"]);

/// Early stopping: stop when the monitored validation metric has not improved for `patience`
/// validations (validations run at epoch ends, or every `validateEvery` steps). Needs
/// validation data.
#[napi(object, object_to_js = false)]
pub struct EarlyStoppingOptions {
    /// `'valLoss'` (lower is better; default) or `'valAccuracy'` (higher is better; class heads).
    #[napi(ts_type = "'valLoss' | 'valAccuracy'")]
    pub monitor: Option<String>,
    /// Validations without improvement before the run stops; default 3.
    pub patience: Option<f64>,
    /// An improvement beats the best value by more than this; default 0.
    pub min_delta: Option<f64>,
    /// Put back the weights of the best validation when the run ends (not when aborted);
    /// default true. The engine keeps one copy of the parameters for it.
    pub restore_best: Option<bool>,
}
strict_object!(EarlyStoppingOptions, "options.earlyStopping", ["monitor", "patience", "minDelta", "restoreBest"]);

/// SpecAugment for speech training (Park et al., 2019, without time warping): per utterance and
/// step, `freqMasks` bands of up to `freqMaskWidth` mel bands and `timeMasks` spans of up to
/// `timeMaskWidth` frames (at most `maxTimeRatio` of the utterance each) set to `maskValue`.
/// `{}` takes the defaults: 2 × 8 bands, 2 × 20 frames, 0.2, 0.
#[napi(object, object_to_js = false)]
pub struct SpecAugmentOptions {
    pub freq_masks: Option<f64>,
    pub freq_mask_width: Option<f64>,
    pub time_masks: Option<f64>,
    pub time_mask_width: Option<f64>,
    pub max_time_ratio: Option<f64>,
    pub mask_value: Option<f64>,
}
strict_object!(
    SpecAugmentOptions,
    "options.specAugment",
    ["freqMasks", "freqMaskWidth", "timeMasks", "timeMaskWidth", "maxTimeRatio", "maskValue"]
);

/// The engine's JSON form of SpecAugment options (absent fields take the engine's defaults).
fn spec_augment_json(o: &SpecAugmentOptions) -> Result<Value, NodeError> {
    let mut m = Map::new();
    for (key, name, v) in [
        ("freq_masks", "freqMasks", o.freq_masks),
        ("freq_mask_width", "freqMaskWidth", o.freq_mask_width),
        ("time_masks", "timeMasks", o.time_masks),
        ("time_mask_width", "timeMaskWidth", o.time_mask_width),
    ] {
        put(&mut m, key, whole_json(&format!("options.specAugment.{name}"), v)?);
    }
    for (key, name, v) in
        [("max_time_ratio", "maxTimeRatio", o.max_time_ratio), ("mask_value", "maskValue", o.mask_value)]
    {
        if let Some(x) = v {
            if !x.is_finite() {
                // JSON has no NaN or infinity: refuse here, before it would turn into a missing value.
                return Err(NodeError::range_error(
                    "ERR_RNNKIT_RANGE",
                    format!("options.specAugment.{name}: expected a finite number, got {x}"),
                ));
            }
            m.insert(key.into(), json!(x));
        }
    }
    Ok(Value::Object(m))
}

/// Options of a training run (`fit`) or step (`trainStep`). Data order (batch size, windows,
/// shuffling, seed) belongs to the dataset, not to these.
#[napi(object, object_to_js = false)]
pub struct FitOptions {
    /// Epochs to run in this call.
    pub epochs: Option<f64>,
    /// Optimizer steps to take in this call.
    pub max_steps: Option<f64>,
    /// Seconds.
    pub time_limit: Option<f64>,
    #[napi(ts_type = "OptimizerOptions")]
    pub optimizer: Option<Strict<OptimizerOptions>>,
    #[napi(ts_type = "ScheduleOptions")]
    pub schedule: Option<Strict<ScheduleOptions>>,
    pub clip_norm: Option<f64>,
    pub clip_value: Option<f64>,
    /// Seed of the dropout masks (default: the dataset's seed).
    pub seed: Option<f64>,
    pub validate_every: Option<f64>,
    pub log_every: Option<f64>,
    #[napi(ts_type = "CheckpointOptions")]
    pub checkpoint: Option<Strict<CheckpointOptions>>,
    pub skip_non_finite: Option<bool>,
    /// One loss weight per class (classification, tagging).
    pub class_weights: Option<Vec<f64>>,
    #[napi(ts_type = "EarlyStoppingOptions")]
    pub early_stopping: Option<Strict<EarlyStoppingOptions>>,
    /// Sequence to sequence: the probability, per target step, that the decoder reads its own
    /// previous greedy prediction instead of the target token (scheduled sampling); default 0.
    pub scheduled_sampling: Option<f64>,
    /// With `scheduledSampling`: the probability rises linearly from 0 over this many steps of
    /// the model's life.
    pub scheduled_sampling_ramp: Option<f64>,
    /// Speech: SpecAugment masks over the training features (`{}`: the defaults); default off.
    #[napi(ts_type = "SpecAugmentOptions")]
    pub spec_augment: Option<Strict<SpecAugmentOptions>>,
}
strict_object!(
    FitOptions,
    "options",
    [
        "epochs", "maxSteps", "timeLimit", "optimizer", "schedule", "clipNorm", "clipValue", "seed", "validateEvery",
        "logEvery", "checkpoint", "skipNonFinite", "classWeights", "earlyStopping", "scheduledSampling",
        "scheduledSamplingRamp", "specAugment"
    ],
    caller: ["signal", "onProgress", "validation"]
);

/// How a dataset is cut into batches: the engine's data order.
#[napi(object, object_to_js = false)]
pub struct DataOrderOptions {
    /// Rows (windows) per batch.
    pub batch_size: Option<f64>,
    /// Token streams: input tokens per window (the BPTT length).
    pub seq_len: Option<f64>,
    /// Token streams: tokens between window starts (default `seqLen`).
    pub stride: Option<f64>,
    /// Token streams: read the text as `batchSize` contiguous lanes with state carried
    /// (truncated BPTT) instead of shuffled windows.
    pub tbptt: Option<bool>,
    /// Shuffle windows/rows each epoch (default true).
    pub shuffle: Option<bool>,
    /// Seed of the split and the shuffles (default 0).
    pub seed: Option<f64>,
    /// The last, smaller batch: `'keep'`, `'drop'` or (token streams) `'pad'`.
    #[napi(ts_type = "'keep' | 'drop' | 'pad'")]
    pub last: Option<String>,
    /// Input id of padding rows (`last: 'pad'`).
    pub pad_id: Option<f64>,
}
strict_object!(
    DataOrderOptions,
    "options",
    ["batchSize", "seqLen", "stride", "tbptt", "shuffle", "seed", "last", "padId"],
    caller: [
        "tokenizer", "tokenizerOptions", "validation", "chunkSize", "labels", "tags", "maxLength", "onTooLong", "stratify",
        "textField", "labelField", "textColumn", "labelColumn", "delimiter", "inputSize", "outputSize", "targets",
        "normalize", "vocabSize", "alphabet", "featureSize"
    ]
);

/// A JS number that must be a whole number ≥ 0 (checked here because the engine takes `u64`;
/// its range is then the engine's to check).
pub fn whole(name: &str, v: f64) -> Result<u64, NodeError> {
    if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0) {
        return Err(NodeError::range_error("ERR_RNNKIT_RANGE", format!("{name}: expected an integer >= 0, got {v}")));
    }
    Ok(v as u64)
}

/// Inserts `key: value` when the option is present.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.to_string(), v);
    }
}

/// Whole-number option as JSON.
fn whole_json(name: &str, v: Option<f64>) -> Result<Option<Value>, NodeError> {
    v.map(|x| whole(name, x).map(Value::from)).transpose()
}

/// The engine's form of the optimizer options.
fn optimizer_json(o: &OptimizerOptions) -> Result<Value, NodeError> {
    let kind = o.kind.clone().unwrap_or_else(|| "adam".into());
    const KINDS: [&str; 5] = ["sgd", "adam", "adamw", "rmsprop", "adagrad"];
    if !KINDS.contains(&kind.as_str()) {
        return Err(NodeError::type_error(
            "ERR_RNNKIT_TYPE",
            format!("options.optimizer.type: expected one of {}, got \"{kind}\"", KINDS.join(", ")),
        ));
    }
    let lr = o.lr.unwrap_or_else(|| OptimizerConfig::default_lr(&kind));
    if !(lr.is_finite() && lr > 0.0) {
        // JSON has no NaN: refuse it here, before it would turn into a missing value.
        return Err(NodeError::range_error(
            "ERR_RNNKIT_RANGE",
            format!("options.optimizer.lr: expected a finite number > 0, got {lr}"),
        ));
    }
    let mut m = Map::new();
    m.insert("lr".into(), json!(lr));
    m.insert("type".into(), Value::from(kind));
    put(&mut m, "momentum", o.momentum.map(Value::from));
    put(&mut m, "nesterov", o.nesterov.map(Value::from));
    put(&mut m, "dampening", o.dampening.map(Value::from));
    put(&mut m, "weight_decay", o.weight_decay.map(Value::from));
    put(&mut m, "betas", o.betas.clone().map(Value::from));
    put(&mut m, "eps", o.eps.map(Value::from));
    put(&mut m, "alpha", o.alpha.map(Value::from));
    put(&mut m, "centered", o.centered.map(Value::from));
    put(&mut m, "lr_decay", o.lr_decay.map(Value::from));
    Ok(Value::Object(m))
}

/// The engine's form of the schedule; a cosine period defaults to the end of this call's
/// `max_steps` on the life-long step counter (`steps_before` + `max_steps`).
fn schedule_json(s: &ScheduleOptions, steps_before: u64, max_steps: Option<u64>) -> Result<Value, NodeError> {
    let kind = s.kind.clone().unwrap_or_else(|| "constant".into());
    let mut m = Map::new();
    put(&mut m, "warmup_steps", whole_json("options.schedule.warmupSteps", s.warmup_steps)?);
    put(&mut m, "step_size", whole_json("options.schedule.stepSize", s.step_size)?);
    put(&mut m, "gamma", s.gamma.map(Value::from));
    if kind == "step" && s.gamma.is_none() {
        m.insert("gamma".into(), json!(0.1));
    }
    if kind == "cosine" {
        let t_max = match s.t_max {
            Some(t) => whole("options.schedule.tMax", t)?,
            None => match max_steps {
                Some(m) => steps_before + m,
                None => {
                    return Err(NodeError::type_error(
                        "ERR_RNNKIT_CONFIG",
                        "options.schedule.tMax: required for a cosine schedule when the run has no maxSteps".into(),
                    ))
                }
            },
        };
        m.insert("t_max".into(), Value::from(t_max));
        m.insert("eta_min".into(), json!(s.eta_min.unwrap_or(0.0)));
    }
    m.insert("type".into(), Value::from(kind));
    Ok(Value::Object(m))
}

/// The engine's form of the early-stopping options (its defaults fill what is absent).
fn early_stopping_json(es: &EarlyStoppingOptions) -> Result<Value, NodeError> {
    let mut m = Map::new();
    match es.monitor.as_deref() {
        None => {}
        Some("valLoss") => {
            m.insert("monitor".into(), Value::from("val_loss"));
        }
        Some("valAccuracy") => {
            m.insert("monitor".into(), Value::from("val_accuracy"));
        }
        Some(other) => {
            return Err(NodeError::type_error(
                "ERR_RNNKIT_TYPE",
                format!("options.earlyStopping.monitor: expected \"valLoss\" or \"valAccuracy\", got \"{other}\""),
            ))
        }
    }
    put(&mut m, "patience", whole_json("options.earlyStopping.patience", es.patience)?);
    if let Some(d) = es.min_delta {
        if !d.is_finite() {
            // JSON has no NaN or infinity: refuse here, before it would turn into a missing value.
            return Err(NodeError::range_error(
                "ERR_RNNKIT_RANGE",
                format!("options.earlyStopping.minDelta: expected a finite number >= 0, got {d}"),
            ));
        }
        m.insert("min_delta".into(), json!(d));
    }
    put(&mut m, "restore_best", es.restore_best.map(Value::from));
    Ok(Value::Object(m))
}

/// `snake_case` → `camelCase` (the engine's file names → the API's option names).
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Engine errors about options name the option as the user wrote it: `options.<name>`.
fn in_options(e: rnn_core::Error) -> NodeError {
    within("options", e)
}

/// An engine error about a part of the options (`options.optimizer`, `options.schedule`) named
/// as the user wrote it: `momentum` → `options.optimizer.momentum`, `schedule.eta_min` →
/// `options.schedule.etaMin`.
pub(crate) fn within(prefix: &str, e: rnn_core::Error) -> NodeError {
    let mut e = NodeError::from(e);
    if let Some(p) = e.param.take() {
        let last = prefix.rsplit('.').next().unwrap_or(prefix);
        let local = p.strip_prefix("options.").unwrap_or(&p);
        let local = local.strip_prefix(&format!("{last}.")).unwrap_or(local);
        let full = if local == last { prefix.to_string() } else { format!("{prefix}.{}", camel(local)) };
        e.message = e.message.replacen(&p, &full, 1);
        e.param = Some(full);
    }
    e
}

/// The run's engine options: `fit` options over the dataset's data order (`order`).
/// `steps_before`: the model's step counter at the start (the cosine schedule's default period).
pub fn train_options(o: &FitOptions, order: &TrainOptions, steps_before: u64) -> Result<TrainOptions, NodeError> {
    let max_steps = o.max_steps.map(|m| whole("options.maxSteps", m)).transpose()?;
    let mut m = Map::new();
    put(&mut m, "epochs", whole_json("options.epochs", o.epochs)?);
    put(&mut m, "max_steps", max_steps.map(Value::from));
    put(&mut m, "time_limit", o.time_limit.map(Value::from));
    let optimizer = match &o.optimizer {
        Some(Strict(opt)) => optimizer_json(opt)?,
        None => optimizer_json(&OptimizerOptions {
            kind: None,
            lr: None,
            momentum: None,
            nesterov: None,
            dampening: None,
            weight_decay: None,
            betas: None,
            eps: None,
            alpha: None,
            centered: None,
            lr_decay: None,
        })?,
    };
    // Each part is checked on its own first, so its errors name the part.
    OptimizerConfig::from_json(&optimizer).map_err(|e| within("options.optimizer", e))?;
    m.insert("optimizer".into(), optimizer);
    if let Some(Strict(s)) = &o.schedule {
        let schedule = schedule_json(s, steps_before, max_steps)?;
        let lr = m["optimizer"]["lr"].as_f64().unwrap_or_default();
        rnn_core::optim::schedule::Schedule::new(
            lr,
            rnn_core::optim::schedule::ScheduleConfig::from_json(&schedule)
                .map_err(|e| within("options.schedule", e))?,
        )
        .map_err(|e| within("options.schedule", e))?;
        m.insert("schedule".into(), schedule);
    }
    put(&mut m, "clip_norm", o.clip_norm.map(Value::from));
    put(&mut m, "clip_value", o.clip_value.map(Value::from));
    put(&mut m, "dropout_seed", whole_json("options.seed", o.seed)?);
    put(&mut m, "validate_every", whole_json("options.validateEvery", o.validate_every)?);
    put(&mut m, "log_every", whole_json("options.logEvery", o.log_every)?);
    if let Some(Strict(c)) = &o.checkpoint {
        if c.path.is_empty() {
            return Err(NodeError::type_error(
                "ERR_RNNKIT_TYPE",
                "options.checkpoint.path: expected a non-empty string".into(),
            ));
        }
        let best = c.best.unwrap_or(false);
        match c.every {
            Some(every) => {
                let every = whole("options.checkpoint.every", every)?;
                if every == 0 {
                    return Err(NodeError::range_error(
                        "ERR_RNNKIT_RANGE",
                        "options.checkpoint.every: expected an integer >= 1, got 0".into(),
                    ));
                }
                m.insert("checkpoint_every".into(), Value::from(every));
            }
            None if !best => {
                return Err(NodeError::type_error(
                    "ERR_RNNKIT_TYPE",
                    "options.checkpoint.every: expected a number of steps (or best: true)".into(),
                ))
            }
            None => {}
        }
        m.insert("checkpoint_best".into(), Value::from(best));
    }
    if let Some(Strict(es)) = &o.early_stopping {
        m.insert("early_stopping".into(), early_stopping_json(es)?);
    }
    put(&mut m, "skip_non_finite", o.skip_non_finite.map(Value::from));
    put(&mut m, "class_weights", o.class_weights.clone().map(Value::from));
    if let Some(p) = o.scheduled_sampling {
        if !p.is_finite() {
            // JSON has no NaN: refuse it here, before it would turn into a missing value.
            return Err(NodeError::range_error(
                "ERR_RNNKIT_RANGE",
                format!("options.scheduledSampling: expected a probability in [0, 1], got {p}"),
            ));
        }
        m.insert("scheduled_sampling".into(), json!(p));
    }
    put(&mut m, "scheduled_sampling_ramp", whole_json("options.scheduledSamplingRamp", o.scheduled_sampling_ramp)?);
    if let Some(Strict(sa)) = &o.spec_augment {
        m.insert("spec_augment".into(), spec_augment_json(sa)?);
    }
    // The data order comes from the dataset.
    m.insert("batch_size".into(), Value::from(order.batch_size));
    m.insert("seq_len".into(), Value::from(order.seq_len));
    m.insert("stride".into(), json!(order.stride));
    m.insert("tbptt".into(), Value::from(order.tbptt));
    m.insert("shuffle".into(), Value::from(order.shuffle));
    m.insert("seed".into(), Value::from(order.seed));
    m.insert("last".into(), json!(order.last));
    TrainOptions::from_json(&Value::Object(m)).map_err(in_options)
}

/// A dataset's data order from its options; `default_last` differs by kind (token streams drop
/// a short last batch, row sets keep it).
pub fn data_order(
    o: &DataOrderOptions,
    default_last: LastBatch,
    streams: bool,
) -> Result<(TrainOptions, Option<i32>), NodeError> {
    let last = match o.last.as_deref() {
        None => default_last,
        Some("keep") => LastBatch::Keep,
        Some("drop") => LastBatch::Drop,
        Some("pad") if streams => LastBatch::Pad,
        Some(other) => {
            let allowed = if streams { "\"keep\", \"drop\" or \"pad\"" } else { "\"keep\" or \"drop\"" };
            return Err(NodeError::type_error(
                "ERR_RNNKIT_TYPE",
                format!("options.last: expected {allowed}, got \"{other}\""),
            ));
        }
    };
    if !streams {
        for (name, given) in
            [("seqLen", o.seq_len.is_some()), ("stride", o.stride.is_some()), ("tbptt", o.tbptt.is_some())]
        {
            if given {
                return Err(NodeError::type_error(
                    "ERR_RNNKIT_CONFIG",
                    format!("options.{name}: rows are batched whole; there are no windows to set"),
                ));
            }
        }
    }
    let pad_id = o.pad_id.map(|p| whole("options.padId", p).map(|v| v.min(i32::MAX as u64) as i32)).transpose()?;
    let mut m = Map::new();
    put(&mut m, "batch_size", whole_json("options.batchSize", o.batch_size)?);
    put(&mut m, "seq_len", whole_json("options.seqLen", o.seq_len)?);
    put(&mut m, "stride", whole_json("options.stride", o.stride)?);
    put(&mut m, "tbptt", o.tbptt.map(Value::from));
    put(&mut m, "shuffle", o.shuffle.map(Value::from));
    put(&mut m, "seed", whole_json("options.seed", o.seed)?);
    m.insert("last".into(), json!(last));
    Ok((TrainOptions::from_json(&Value::Object(m)).map_err(in_options)?, pad_id))
}
