//! The sequence-to-sequence model in JavaScript: `NativeSeq2Seq` (create/load/save, `fit` on a
//! thread of its own with progress events and a `CancelToken`, decoding, attention, evaluation)
//! and `NativePairDataset` (pairs of id rows, split and batched by the engine). Logic-free: the
//! engine's `model/seq2seq*.rs` and `pairs.rs` compute everything; this converts and reports.
//!
//! The model lives in `Arc<RwLock<Option<Seq2SeqSlot>>>` as `NativeModel` does: inference takes
//! a read lock, training takes the slot out for its run, and every other call meanwhile is
//! refused with `ERR_RNNKIT_BUSY`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use napi::bindgen_prelude::{AsyncTask, Float32Array, Function, Int32Array, Object};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::Env;
use napi_derive::napi;
use serde_json::Value;

use rnn_core::checkpoint::{load_seq2seq_checkpoint, save_seq2seq_checkpoint, Seq2SeqCheckpoint};
use rnn_core::config::CellKind;
use rnn_core::kernels::precision::Precision;
use rnn_core::layer::attention::AttentionKind;
use rnn_core::model::seq2seq::{Seq2Seq, Seq2SeqConfig};
use rnn_core::model::seq2seq_evaluate::{attention, decode, evaluate, DecodeOptions, Seq2SeqEvaluation};
use rnn_core::model::seq2seq_stream::Seq2SeqStream;
use rnn_core::model::seq2seq_train::Seq2SeqTrainer;
use rnn_core::pairs::PairSet;
use rnn_core::rng::Rng;
use rnn_core::split::split_rows;
use rnn_core::train::{History, TrainEvent, TrainOptions, Trainer};

use crate::errors::{JsKind, NodeError};
use crate::guard::{guard, guard_js, Guarded, Work};
use crate::model::{ensure_trainer, last_fit, pairs, seed_from, CancelToken, NativeHistory, NativeTrainEvent};
use crate::options::Strict;
use crate::strict_object;
use crate::train_options::{data_order, train_options, whole, DataOrderOptions, FitOptions};

/// The metadata keys that hold the two tokenizers' JSON forms (docs/FORMAT.md).
const SOURCE_TOKENIZER: &str = "source_tokenizer";
const TARGET_TOKENIZER: &str = "target_tokenizer";

/// The architecture of a new sequence-to-sequence model; what is not given comes from the
/// engine's defaults (`Seq2SeqConfig::defaults`).
#[napi(object, object_to_js = false)]
pub struct Seq2SeqOptions {
    /// Ids of the source tokenizer (≥ 1).
    pub source_vocab_size: f64,
    /// Ids of the target tokenizer, its `<bos>` and `<eos>` included.
    pub target_vocab_size: f64,
    /// The target ids that start and end an output.
    pub bos_id: f64,
    pub eos_id: f64,
    /// `'rnn' | 'lstm' | 'gru'`; default `'gru'`.
    #[napi(ts_type = "'rnn' | 'lstm' | 'gru'")]
    pub cell: Option<String>,
    /// Elman RNN only: `'tanh' | 'relu'`.
    #[napi(ts_type = "'tanh' | 'relu'")]
    pub nonlinearity: Option<String>,
    /// Hidden width of encoder and decoder; default 128.
    pub hidden_size: Option<f64>,
    /// Layers of encoder and decoder; default 1.
    pub layers: Option<f64>,
    /// A bidirectional encoder (its final states bridged to the decoder); default true.
    pub bidirectional: Option<bool>,
    /// Width of both embeddings; default 64.
    pub embed_dim: Option<f64>,
    /// `'additive' | 'dot' | 'general'`; default `'general'`.
    #[napi(ts_type = "'additive' | 'dot' | 'general'")]
    pub attention: Option<String>,
    /// The additive score's hidden width; default the hidden size.
    pub attention_size: Option<f64>,
    /// Seed of the initial weights; default 0.
    pub seed: Option<f64>,
}
strict_object!(
    Seq2SeqOptions,
    "options",
    [
        "sourceVocabSize",
        "targetVocabSize",
        "bosId",
        "eosId",
        "cell",
        "nonlinearity",
        "hiddenSize",
        "layers",
        "bidirectional",
        "embedDim",
        "attention",
        "attentionSize",
        "seed"
    ]
);

fn size(name: &str, v: f64) -> Result<usize, NodeError> {
    Ok(whole(name, v)?.min(usize::MAX as u64) as usize)
}

fn token_id(name: &str, v: f64) -> Result<u32, NodeError> {
    Ok(whole(name, v)?.min(u32::MAX as u64) as u32)
}

/// The engine's configuration for `o` (validated there).
fn seq2seq_config(o: &Seq2SeqOptions) -> Result<Seq2SeqConfig, NodeError> {
    let mut c = Seq2SeqConfig::defaults(
        size("options.sourceVocabSize", o.source_vocab_size)?,
        size("options.targetVocabSize", o.target_vocab_size)?,
        token_id("options.bosId", o.bos_id)?,
        token_id("options.eosId", o.eos_id)?,
    );
    if o.cell.is_some() || o.nonlinearity.is_some() {
        c.cell = CellKind::parse(o.cell.as_deref().unwrap_or("gru"), o.nonlinearity.as_deref())
            .map_err(|e| in_options("cell", e))?;
    }
    if let Some(h) = o.hidden_size {
        c.hidden_size = size("options.hiddenSize", h)?;
        c.attention_size = c.hidden_size;
    }
    if let Some(l) = o.layers {
        c.num_layers = size("options.layers", l)?;
    }
    if let Some(b) = o.bidirectional {
        c.bidirectional = b;
    }
    if let Some(e) = o.embed_dim {
        c.embed_dim = size("options.embedDim", e)?;
    }
    if let Some(a) = &o.attention {
        c.attention = AttentionKind::parse(a).map_err(|e| in_options("attention", e))?;
    }
    if let Some(a) = o.attention_size {
        c.attention_size = size("options.attentionSize", a)?;
    }
    c.validate().map_err(in_options_named)?;
    Ok(c)
}

/// An engine error about option `name`, as `options.<name>: ...`.
fn in_options(name: &str, e: rnn_core::Error) -> NodeError {
    let mut n = NodeError::from(e);
    n.message = format!("options.{name}: {}", n.message.trim_start_matches(&format!("{name}: ")));
    n.param = Some(format!("options.{name}"));
    n
}

/// The engine's configuration errors name its fields (`hidden_size`); say the option instead.
fn in_options_named(e: rnn_core::Error) -> NodeError {
    let message = e.to_string();
    let names = [
        ("source_vocab", "sourceVocabSize"),
        ("target_vocab", "targetVocabSize"),
        ("embed_dim", "embedDim"),
        ("hidden_size", "hiddenSize"),
        ("num_layers", "layers"),
        ("bos", "bosId"),
        ("eos", "eosId"),
        ("attention_size", "attentionSize"),
        ("attention", "attention"),
    ];
    for (field, option) in names {
        if let Some(rest) = message.strip_prefix(&format!("{field}: ")) {
            let mut n = NodeError::from(e);
            n.message = format!("options.{option}: {rest}");
            n.param = Some(format!("options.{option}"));
            return n;
        }
    }
    NodeError::from(e)
}

/// How outputs are decoded (`translate`, `evaluate`).
#[napi(object, object_to_js = false)]
pub struct Seq2SeqDecodeOptions {
    /// 1 (default): greedy, batched; more: beam search with this many hypotheses.
    pub beams: Option<f64>,
    /// Beam search's GNMT length penalty α; default 0.6.
    pub length_penalty: Option<f64>,
    /// Most tokens of an output; default 12 × the source's tokens + 16.
    pub max_length: Option<f64>,
}
strict_object!(Seq2SeqDecodeOptions, "options", ["beams", "lengthPenalty", "maxLength"], caller: ["attention", "signal"]);

fn decode_options(o: &Seq2SeqDecodeOptions) -> Result<DecodeOptions, NodeError> {
    let d = DecodeOptions::default();
    let opts = DecodeOptions {
        beams: o.beams.map(|b| size("options.beams", b)).transpose()?.unwrap_or(d.beams),
        length_penalty: o.length_penalty.unwrap_or(d.length_penalty),
        max_length: o.max_length.map(|m| size("options.maxLength", m)).transpose()?,
    };
    opts.validate().map_err(|e| {
        let mut n = NodeError::from(e);
        n.message = format!("options.{}", n.message);
        n.param = n.param.map(|p| format!("options.{p}"));
        n
    })?;
    Ok(opts)
}

/// A split of a pair dataset.
fn split_of<'a>(d: &'a NativePairDataset, split: &str) -> Result<&'a PairSet, NodeError> {
    match split {
        "train" => Ok(&d.train),
        "validation" => Ok(&d.validation),
        other => Err(NodeError::type_error(
            "ERR_RNNKIT_TYPE",
            format!("split: expected \"train\" or \"validation\", got \"{other}\""),
        )),
    }
}

/// The order options of a pair dataset and its split.
#[napi(object, object_to_js = false)]
pub struct PairDatasetOptions {
    /// Pairs per batch; default 64.
    pub batch_size: Option<f64>,
    /// Seed of the split and of the data order; default 0.
    pub seed: Option<f64>,
    /// The share of pairs held out for validation, in [0, 1); default 0.
    pub validation_split: Option<f64>,
}
strict_object!(PairDatasetOptions, "options", ["batchSize", "seed", "validationSplit"]);

/// Pairs of id rows: a seeded train/validation split, and the bucketed data order of
/// `pairs.rs` that `fit` trains in.
#[napi]
pub struct NativePairDataset {
    train: PairSet,
    validation: PairSet,
    order: TrainOptions,
    source_vocab: usize,
    target_vocab: usize,
}

#[napi]
impl NativePairDataset {
    /// `source[i]` → `target[i]` (ids without bos/eos), ids inside the two vocabularies.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        source: Vec<Int32Array>,
        target: Vec<Int32Array>,
        source_vocab_size: u32,
        target_vocab_size: u32,
        #[napi(ts_arg_type = "PairDatasetOptions")] options: Strict<PairDatasetOptions>,
    ) -> napi::Result<Self> {
        guard_js(&env, || {
            let o = &options.0;
            let order_options = DataOrderOptions {
                batch_size: Some(o.batch_size.unwrap_or(64.0)),
                seq_len: None,
                stride: None,
                tbptt: None,
                shuffle: None,
                seed: o.seed,
                last: None,
                pad_id: None,
            };
            let (order, _) = data_order(&order_options, rnn_core::batch::LastBatch::Keep, false)?;
            let all = PairSet {
                source: source.iter().map(|r| r.to_vec()).collect(),
                target: target.iter().map(|r| r.to_vec()).collect(),
            };
            all.validate(source_vocab_size as usize, target_vocab_size as usize)?;
            if all.is_empty() {
                return Err(NodeError::range_error("ERR_RNNKIT_RANGE", "data: expected at least one pair".into()));
            }
            let split = split_rows(all.len(), o.validation_split.unwrap_or(0.0), order.seed, None)
                .map_err(|e| in_options("validationSplit", e))?;
            Ok(NativePairDataset {
                train: all.subset(&split.train),
                validation: all.subset(&split.validation),
                order,
                source_vocab: source_vocab_size as usize,
                target_vocab: target_vocab_size as usize,
            })
        })
    }

    /// Pairs in `split` (`'train'` or `'validation'`).
    #[napi]
    pub fn size(&self, env: Env, split: String) -> napi::Result<u32> {
        guard_js(&env, || Ok(split_of(self, &split)?.len() as u32))
    }

    /// The row indices (into `split`) of every batch of `epoch`, in training order.
    #[napi]
    pub fn batches(&self, env: Env, split: String, epoch: f64) -> napi::Result<Vec<Vec<u32>>> {
        guard_js(&env, || {
            let epoch = whole("epoch", epoch)?;
            let part = split_of(self, &split)?;
            Ok(part
                .epoch_batches(self.order.seed, epoch, self.order.batch_size)
                .into_iter()
                .map(|b| b.into_iter().map(|r| r as u32).collect())
                .collect())
        })
    }

    /// Pairs per batch.
    #[napi(getter)]
    pub fn batch_size(&self) -> u32 {
        self.order.batch_size as u32
    }
}

/// What a sequence-to-sequence model is, besides the handle.
struct Seq2SeqSlot {
    net: Seq2Seq,
    /// Optimizer, RNG and position, once the model has trained or was loaded from a checkpoint.
    trainer: Option<Seq2SeqTrainer>,
    /// Every metadata pair of the file (the two tokenizers, `last_fit`, user keys).
    metadata: BTreeMap<String, String>,
}

type Shared = Arc<RwLock<Option<Seq2SeqSlot>>>;

fn busy() -> NodeError {
    NodeError::with_kind(
        JsKind::Error,
        "ERR_RNNKIT_BUSY",
        "the model is training; wait for fit() to settle (or abort it) before using it".into(),
    )
}

fn read(shared: &Shared) -> Result<RwLockReadGuard<'_, Option<Seq2SeqSlot>>, NodeError> {
    let g = shared.read().map_err(|_| NodeError::panic("model lock poisoned"))?;
    if g.is_none() {
        return Err(busy());
    }
    Ok(g)
}

fn with_slot<T>(shared: &Shared, f: impl FnOnce(&Seq2SeqSlot) -> Result<T, NodeError>) -> Result<T, NodeError> {
    let g = read(shared)?;
    f(g.as_ref().expect("checked"))
}

/// Writes the model file; with `checkpoint`, the training state too (when the model has one).
fn save_slot(slot: &Seq2SeqSlot, path: &str, checkpoint: bool) -> Result<(), NodeError> {
    let state = if checkpoint { slot.trainer.as_ref().map(Trainer::state) } else { None };
    Ok(save_seq2seq_checkpoint(Path::new(path), &slot.net, state.as_ref(), &pairs(&slot.metadata))?)
}

/// A model file or checkpoint; a checkpoint's trainer resumes where it stopped.
fn load_slot(path: &str) -> Result<Seq2SeqSlot, NodeError> {
    let Seq2SeqCheckpoint { network, trainer, metadata } = load_seq2seq_checkpoint(Path::new(path))?;
    let trainer = trainer.map(|state| Trainer::resume(&network, state)).transpose()?;
    Ok(Seq2SeqSlot { net: network, trainer, metadata })
}

/// The figures of an evaluation: teacher-forced loss and token accuracy, decoded exact match.
#[napi(object)]
pub struct Seq2SeqEvalInfo {
    pub loss: f64,
    pub token_accuracy: f64,
    pub exact_match: f64,
    pub pairs: u32,
    pub tokens: u32,
}

impl From<Seq2SeqEvaluation> for Seq2SeqEvalInfo {
    fn from(e: Seq2SeqEvaluation) -> Self {
        Seq2SeqEvalInfo {
            loss: e.loss,
            token_accuracy: e.token_accuracy,
            exact_match: e.exact_match,
            pairs: e.pairs as u32,
            tokens: e.tokens as u32,
        }
    }
}

/// A sequence-to-sequence network and its training state.
#[napi]
pub struct NativeSeq2Seq {
    shared: Shared,
}

#[napi]
impl NativeSeq2Seq {
    /// A new model, initialised from `options.seed`.
    #[napi(factory)]
    pub fn create(
        env: Env,
        #[napi(ts_arg_type = "Seq2SeqOptions")] options: Strict<Seq2SeqOptions>,
    ) -> napi::Result<NativeSeq2Seq> {
        guard_js(&env, || {
            let config = seq2seq_config(&options.0)?;
            let seed = options.0.seed.map(|s| seed_from("options.seed", s)).transpose()?.unwrap_or(0);
            let net = Seq2Seq::init(config, &mut Rng::new(seed))?;
            Ok(Self::from_slot(Seq2SeqSlot { net, trainer: None, metadata: BTreeMap::new() }))
        })
    }

    /// Accepts only `f32`: the engine refuses a reduced precision for sequence-to-sequence models.
    #[napi]
    pub fn set_precision(&self, env: Env, precision: String) -> napi::Result<()> {
        guard_js(&env, || Ok(Seq2Seq::check_precision(Precision::parse(&precision)?)?))
    }

    /// Reads a model file written by `save`.
    #[napi(factory)]
    pub fn load(env: Env, path: String) -> napi::Result<NativeSeq2Seq> {
        guard_js(&env, || Ok(Self::from_slot(load_slot(&path)?)))
    }

    /// [`NativeSeq2Seq::load`] off the JS thread.
    #[napi(ts_return_type = "Promise<NativeSeq2Seq>")]
    pub fn load_async(path: String) -> AsyncTask<Guarded<LoadWork>> {
        AsyncTask::new(Guarded(LoadWork { path, slot: None }))
    }

    fn from_slot(slot: Seq2SeqSlot) -> Self {
        NativeSeq2Seq { shared: Arc::new(RwLock::new(Some(slot))) }
    }

    /// The architecture (the file's `config`, `task: "seq2seq"`).
    #[napi(ts_return_type = "Record<string, unknown>")]
    pub fn config(&self, env: Env) -> napi::Result<Value> {
        guard_js(&env, || with_slot(&self.shared, |s| Ok(s.net.config.to_json())))
    }

    /// The two tokenizers as stored in the metadata, parsed (`null` when absent).
    #[napi(ts_return_type = "{ source: Record<string, unknown> | null, target: Record<string, unknown> | null }")]
    pub fn tokenizers(&self, env: Env) -> napi::Result<HashMap<String, Option<Value>>> {
        guard_js(&env, || {
            with_slot(&self.shared, |s| {
                let parse = |key: &str| -> Result<Option<Value>, NodeError> {
                    s.metadata
                        .get(key)
                        .map(|text| {
                            serde_json::from_str(text).map_err(|e| {
                                NodeError::from(rnn_core::Error::Format(format!("metadata {key}: not JSON ({e})")))
                            })
                        })
                        .transpose()
                };
                Ok(HashMap::from([
                    ("source".to_string(), parse(SOURCE_TOKENIZER)?),
                    ("target".to_string(), parse(TARGET_TOKENIZER)?),
                ]))
            })
        })
    }

    /// Every metadata pair.
    #[napi]
    pub fn metadata(&self, env: Env) -> napi::Result<HashMap<String, String>> {
        guard_js(&env, || with_slot(&self.shared, |s| Ok(s.metadata.clone().into_iter().collect())))
    }

    /// Sets a metadata pair (saved with the model).
    #[napi]
    pub fn set_metadata(&self, env: Env, key: String, value: String) -> napi::Result<()> {
        guard_js(&env, || {
            let mut g = self.shared.write().map_err(|_| NodeError::panic("model lock poisoned"))?;
            let slot = g.as_mut().ok_or_else(busy)?;
            slot.metadata.insert(key, value);
            Ok(())
        })
    }

    /// Trainable parameters.
    #[napi]
    pub fn num_params(&self, env: Env) -> napi::Result<f64> {
        guard_js(&env, || with_slot(&self.shared, |s| Ok(s.net.params().data.len() as f64)))
    }

    /// Optimizer steps taken over the model's life (0 before training; a checkpoint's count).
    #[napi]
    pub fn steps_trained(&self, env: Env) -> napi::Result<f64> {
        guard_js(&env, || with_slot(&self.shared, |s| Ok(s.trainer.as_ref().map_or(0, |t| t.position.step) as f64)))
    }

    /// Whether a `fit` is running.
    #[napi(getter)]
    pub fn is_training(&self) -> bool {
        self.shared.read().map(|g| g.is_none()).unwrap_or(false)
    }

    /// Writes the model file atomically (weights, config, metadata with both tokenizers); with
    /// `checkpoint`, the optimizer state, RNG and position too, so training resumes exactly.
    #[napi]
    pub fn save(&self, env: Env, path: String, checkpoint: bool) -> napi::Result<()> {
        guard_js(&env, || with_slot(&self.shared, |s| save_slot(s, &path, checkpoint)))
    }

    /// [`NativeSeq2Seq::save`] off the JS thread.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn save_async(&self, path: String, checkpoint: bool) -> AsyncTask<Guarded<SaveWork>> {
        AsyncTask::new(Guarded(SaveWork { shared: self.shared.clone(), path, checkpoint }))
    }

    /// Trains on `data`'s training split off the JS thread, validating on its validation split
    /// (when it has pairs). `onEvent` receives progress events; `cancel` stops between steps.
    /// `options.checkpoint` writes checkpoints (weights, metadata and the training state).
    #[napi(ts_return_type = "Promise<NativeHistory>")]
    pub fn fit<'env>(
        &self,
        env: &'env Env,
        data: &NativePairDataset,
        #[napi(ts_arg_type = "FitOptions")] options: Strict<FitOptions>,
        on_event: Function<NativeTrainEvent, ()>,
        cancel: &CancelToken,
    ) -> napi::Result<Object<'env>> {
        let prepared = guard(|| {
            with_slot(&self.shared, |s| {
                let c = &s.net.config;
                if (data.source_vocab, data.target_vocab) != (c.source_vocab, c.target_vocab) {
                    return Err(NodeError::type_error(
                        "ERR_RNNKIT_VOCAB",
                        format!(
                            "data: the dataset's vocabularies ({} → {}) are not the model's ({} → {})",
                            data.source_vocab, data.target_vocab, c.source_vocab, c.target_vocab
                        ),
                    ));
                }
                let steps_before = s.trainer.as_ref().map_or(0, |t| t.position.step);
                train_options(&options.0, &data.order, steps_before)
            })
        });
        let opts = prepared.map_err(|e| e.into_napi(env))?;
        let checkpoint_path = options.0.checkpoint.map(|c| c.0.path);
        let events = on_event.build_threadsafe_function().callee_handled::<false>().max_queue_size::<256>().build()?;
        let taken = {
            let mut g = self.shared.write().map_err(|_| NodeError::panic("model lock poisoned").into_napi(env))?;
            g.take().ok_or_else(|| busy().into_napi(env))?
        };
        let (train, valid) = (data.train.clone(), data.validation.clone());
        let (deferred, promise) = env.create_deferred()?;
        let shared = self.shared.clone();
        let cancel = cancel.flag.clone();
        std::thread::Builder::new()
            .name("rnnkit-fit".into())
            .spawn(move || {
                let mut slot = taken;
                let outcome = guard(|| {
                    let Seq2SeqSlot { net, trainer, metadata } = &mut slot;
                    let t = ensure_trainer(trainer, net, opts)?;
                    let mut on_event = |e: TrainEvent| {
                        let mode = if matches!(e, TrainEvent::Step { .. }) {
                            ThreadsafeFunctionCallMode::NonBlocking
                        } else {
                            ThreadsafeFunctionCallMode::Blocking
                        };
                        events.call(NativeTrainEvent::from(e), mode);
                    };
                    let meta = &*metadata;
                    let mut checkpoint = |n: &Seq2Seq, t: &Seq2SeqTrainer| -> rnn_core::Result<String> {
                        let p = checkpoint_path.as_deref().ok_or_else(|| {
                            rnn_core::Error::Config("checkpoint: every is set but no path was given".into())
                        })?;
                        save_seq2seq_checkpoint(Path::new(p), n, Some(&t.state()), &pairs(meta))?;
                        Ok(p.to_string())
                    };
                    let valid = (!valid.is_empty()).then_some(&valid);
                    Ok(t.fit(net, &train, valid, &cancel, &mut on_event, &mut checkpoint)?)
                });
                if let Ok(history) = &outcome {
                    slot.metadata.insert("last_fit".into(), last_fit(history).to_string());
                }
                // The model goes back whatever happened, so an error or panic leaves it usable.
                if let Ok(mut g) = shared.write() {
                    *g = Some(slot);
                }
                drop(events);
                deferred.resolve(move |env| {
                    outcome.map(|h: History| NativeHistory::from(&h)).map_err(|e| e.into_napi(&env))
                });
            })
            .map_err(|e| napi::Error::from_reason(format!("could not start the training thread: {e}")))?;
        Ok(promise)
    }

    /// Decodes every source (ids of the source vocabulary) off the JS thread; the outputs'
    /// target ids without `eos`, in input order. `cancel` stops between batches (and beam steps).
    #[napi(ts_return_type = "Promise<number[][]>")]
    pub fn translate(
        &self,
        sources: Vec<Int32Array>,
        #[napi(ts_arg_type = "Seq2SeqDecodeOptions")] options: Strict<Seq2SeqDecodeOptions>,
        cancel: &CancelToken,
    ) -> AsyncTask<Guarded<DecodeWork>> {
        AsyncTask::new(Guarded(DecodeWork {
            shared: self.shared.clone(),
            sources: sources.iter().map(|s| s.to_vec()).collect(),
            options: decode_options(&options.0),
            cancel: cancel.flag.clone(),
        }))
    }

    /// A stream of the output of `source` (ids of the source vocabulary) under `options`, a
    /// token per `nextToken()`: greedy decoding one step at a time (the tokens of `translate`), or a
    /// beam search's best output once it is found. The stream decodes a copy of the model as it
    /// is now.
    #[napi]
    pub fn stream(
        &self,
        env: Env,
        source: Int32Array,
        #[napi(ts_arg_type = "Seq2SeqDecodeOptions")] options: Strict<Seq2SeqDecodeOptions>,
    ) -> napi::Result<NativeSeq2SeqStream> {
        guard_js(&env, || {
            let opts = decode_options(&options.0)?;
            with_slot(&self.shared, |s| {
                let stream = Seq2SeqStream::new(&s.net, &source, &opts)?;
                Ok(NativeSeq2SeqStream { inner: Arc::new(Mutex::new(stream)) })
            })
        })
    }

    /// [`NativeSeq2Seq::translate`] on the calling thread.
    #[napi]
    pub fn translate_sync(
        &self,
        env: Env,
        sources: Vec<Int32Array>,
        #[napi(ts_arg_type = "Seq2SeqDecodeOptions")] options: Strict<Seq2SeqDecodeOptions>,
    ) -> napi::Result<Vec<Vec<u32>>> {
        guard_js(&env, || {
            let opts = decode_options(&options.0)?;
            let sources: Vec<Vec<i32>> = sources.iter().map(|s| s.to_vec()).collect();
            with_slot(&self.shared, |s| Ok(decode(&s.net, &sources, &opts, &AtomicBool::new(false))?))
        })
    }

    /// The attention weights of decoding `source` into `output` (a translation's ids):
    /// `[output.length + 1, source.length]` row-major, one row per output token and the eos.
    #[napi]
    pub fn attention(&self, env: Env, source: Int32Array, output: Vec<u32>) -> napi::Result<Float32Array> {
        guard_js(&env, || with_slot(&self.shared, |s| Ok(Float32Array::new(attention(&s.net, &source, &output)?))))
    }

    /// Evaluates on `split` of `data` off the JS thread: teacher-forced loss and token accuracy,
    /// and the exact match of outputs decoded with `options`.
    #[napi(ts_return_type = "Promise<Seq2SeqEvalInfo>")]
    pub fn evaluate(
        &self,
        data: &NativePairDataset,
        split: String,
        #[napi(ts_arg_type = "Seq2SeqDecodeOptions")] options: Strict<Seq2SeqDecodeOptions>,
        cancel: &CancelToken,
    ) -> AsyncTask<Guarded<EvaluateWork>> {
        AsyncTask::new(Guarded(EvaluateWork {
            shared: self.shared.clone(),
            pairs: split_of(data, &split).cloned(),
            options: decode_options(&options.0),
            cancel: cancel.flag.clone(),
        }))
    }

    /// [`NativeSeq2Seq::evaluate`] on the calling thread.
    #[napi]
    pub fn evaluate_sync(
        &self,
        env: Env,
        data: &NativePairDataset,
        split: String,
        #[napi(ts_arg_type = "Seq2SeqDecodeOptions")] options: Strict<Seq2SeqDecodeOptions>,
    ) -> napi::Result<Seq2SeqEvalInfo> {
        guard_js(&env, || {
            let opts = decode_options(&options.0)?;
            let pairs = split_of(data, &split)?;
            with_slot(&self.shared, |s| Ok(evaluate(&s.net, pairs, &opts, &AtomicBool::new(false))?.into()))
        })
    }
}

/// One output being decoded a token at a time (from `NativeSeq2Seq.stream`).
#[napi]
pub struct NativeSeq2SeqStream {
    inner: Arc<Mutex<Seq2SeqStream>>,
}

#[napi]
impl NativeSeq2SeqStream {
    /// The next output token (a target id) off the JS thread, or `null` once the output has
    /// ended (`eos` or the length limit). `cancel` stops a beam search between its steps.
    #[napi(ts_return_type = "Promise<number | null>")]
    pub fn next_token(&self, cancel: &CancelToken) -> AsyncTask<Guarded<StreamStepWork>> {
        AsyncTask::new(Guarded(StreamStepWork { inner: self.inner.clone(), cancel: cancel.flag.clone() }))
    }
}

/// One `NativeSeq2SeqStream.nextToken`.
pub struct StreamStepWork {
    inner: Arc<Mutex<Seq2SeqStream>>,
    cancel: Arc<AtomicBool>,
}

impl Work for StreamStepWork {
    type Output = Option<u32>;
    type JsValue = Option<u32>;
    fn compute(&mut self) -> Result<Option<u32>, NodeError> {
        let mut stream = self.inner.lock().map_err(|_| NodeError::panic("stream lock poisoned"))?;
        Ok(stream.next(&self.cancel)?)
    }
    fn resolve(&mut self, _env: Env, output: Option<u32>) -> napi::Result<Option<u32>> {
        Ok(output)
    }
}

/// `loadAsync` work.
pub struct LoadWork {
    path: String,
    slot: Option<Seq2SeqSlot>,
}

impl Work for LoadWork {
    type Output = ();
    type JsValue = NativeSeq2Seq;
    fn compute(&mut self) -> Result<(), NodeError> {
        self.slot = Some(load_slot(&self.path)?);
        Ok(())
    }
    fn resolve(&mut self, _env: Env, _output: ()) -> napi::Result<NativeSeq2Seq> {
        Ok(NativeSeq2Seq::from_slot(self.slot.take().expect("compute succeeded")))
    }
}

/// `saveAsync` work.
pub struct SaveWork {
    shared: Shared,
    path: String,
    checkpoint: bool,
}

impl Work for SaveWork {
    type Output = ();
    type JsValue = ();
    fn compute(&mut self) -> Result<(), NodeError> {
        with_slot(&self.shared, |s| save_slot(s, &self.path, self.checkpoint))
    }
    fn resolve(&mut self, _env: Env, _output: ()) -> napi::Result<()> {
        Ok(())
    }
}

/// `translate` work (option errors are reported when it runs, as a rejection).
pub struct DecodeWork {
    shared: Shared,
    sources: Vec<Vec<i32>>,
    options: Result<DecodeOptions, NodeError>,
    cancel: Arc<AtomicBool>,
}

impl Work for DecodeWork {
    type Output = Vec<Vec<u32>>;
    type JsValue = Vec<Vec<u32>>;
    fn compute(&mut self) -> Result<Vec<Vec<u32>>, NodeError> {
        let opts = self.options.clone()?;
        with_slot(&self.shared, |s| Ok(decode(&s.net, &self.sources, &opts, &self.cancel)?))
    }
    fn resolve(&mut self, _env: Env, output: Vec<Vec<u32>>) -> napi::Result<Vec<Vec<u32>>> {
        Ok(output)
    }
}

/// `evaluate` work.
pub struct EvaluateWork {
    shared: Shared,
    pairs: Result<PairSet, NodeError>,
    options: Result<DecodeOptions, NodeError>,
    cancel: Arc<AtomicBool>,
}

impl Work for EvaluateWork {
    type Output = Seq2SeqEvaluation;
    type JsValue = Seq2SeqEvalInfo;
    fn compute(&mut self) -> Result<Seq2SeqEvaluation, NodeError> {
        let opts = self.options.clone()?;
        let pairs = self.pairs.clone()?;
        with_slot(&self.shared, |s| Ok(evaluate(&s.net, &pairs, &opts, &self.cancel)?))
    }
    fn resolve(&mut self, _env: Env, output: Seq2SeqEvaluation) -> napi::Result<Seq2SeqEvalInfo> {
        Ok(output.into())
    }
}

/// The `task` of the model file at `path` (from its header), so that `loadModel` picks the
/// loader of its architecture.
#[napi]
pub fn model_file_task(env: Env, path: String) -> napi::Result<String> {
    guard_js(&env, || {
        let config = rnn_core::io::read_config(Path::new(&path))?;
        Ok(config.get("task").and_then(Value::as_str).unwrap_or("language_model").to_string())
    })
}
