//! Datasets held natively: a token stream for language models ([`NativeTokenDataset`]) and a
//! padded row set for classification, tagging and regression ([`NativeSequenceDataset`]), each
//! with its train/validation split and data order. `batch(split, epoch, index)` is computed by
//! the same engine functions the trainer calls (`TrainData::epoch_order` / `TrainData::batch`),
//! so what `dataset.batches()` shows in JavaScript is exactly what `fit` trains on.

use std::sync::Mutex;

use napi::bindgen_prelude::{Float32Array, Int32Array, Uint32Array};
use napi::Env;
use napi_derive::napi;

use rnn_core::batch::{Batch, BatchInput, BatchTargets, LastBatch, SequenceSet, TokenStream, IGNORE_INDEX};
use rnn_core::split::{split_rows, split_tail, RowSplit};
use rnn_core::token_store::{TokenSlice, TokenStore};
use rnn_core::train::{stream_mode, TrainData, TrainOptions};

use crate::errors::NodeError;
use crate::guard::guard_js;
use crate::options::Strict;
use crate::train_options::{data_order, whole, DataOrderOptions};

/// Padded sequences batch-first, with targets: rows for classification, tagging and regression.
#[napi(object)]
pub struct SequenceData {
    /// Token ids `[N, T]` (token models).
    pub tokens: Option<Int32Array>,
    /// Dense features `[N, T, I]` (dense models).
    pub values: Option<Float32Array>,
    /// Real length of each row `[N]`.
    pub lengths: Int32Array,
    /// Rows N.
    pub rows: u32,
    /// Padded length T.
    pub steps: u32,
    /// Class per row `[N]` (classification).
    pub labels: Option<Int32Array>,
    /// Class per step `[N, T]`, -100 where not counted (tagging).
    pub tags: Option<Int32Array>,
    /// Real-valued targets `[N, O]` or `[N, T, O]` (regression).
    pub targets: Option<Float32Array>,
    /// Label sequences `[N, S]` padded with 0 (speech; labels of the model's alphabet,
    /// `encodeTranscripts`), with `transcriptLengths`.
    pub transcripts: Option<Int32Array>,
    /// Real length of each transcript `[N]`.
    pub transcript_lengths: Option<Int32Array>,
}

/// The shape facts a row set needs besides its arrays.
#[derive(Clone, Copy)]
pub struct RowShape {
    /// Dense features per step (0 for tokens).
    pub features: usize,
    /// Width of real-valued targets (0 for class targets).
    pub outputs: usize,
    /// Real-valued targets are per step.
    pub per_step: bool,
}

fn type_error(message: String) -> NodeError {
    NodeError::type_error("ERR_RNNKIT_TYPE", message)
}

/// The engine's row set from `d`; `placeholder` targets (prediction) when `d` has none.
pub fn row_set(d: &SequenceData, shape: RowShape, placeholder: Option<BatchTargets>) -> Result<SequenceSet, NodeError> {
    let input = match (&d.tokens, &d.values) {
        (Some(t), None) => BatchInput::Tokens(t.to_vec()),
        (None, Some(v)) => BatchInput::Dense(v.to_vec()),
        _ => return Err(type_error("data: give exactly one of tokens or values".into())),
    };
    let lengths = d
        .lengths
        .iter()
        .enumerate()
        .map(|(r, &l)| {
            usize::try_from(l).map_err(|_| {
                NodeError::range_error("ERR_RNNKIT_RANGE", format!("lengths[{r}]: expected a length >= 1, got {l}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let transcripts = match (&d.transcripts, &d.transcript_lengths) {
        (Some(labels), Some(l)) => {
            let rows = d.rows as usize;
            if l.len() != rows || (rows > 0 && labels.len() % rows != 0) {
                return Err(NodeError::type_error(
                    "ERR_RNNKIT_SHAPE",
                    format!(
                        "data.transcripts: expected [{rows}, S] labels and {rows} lengths, got {} labels and {} lengths",
                        labels.len(),
                        l.len()
                    ),
                ));
            }
            let lengths = l
                .iter()
                .enumerate()
                .map(|(r, &n)| {
                    usize::try_from(n).map_err(|_| {
                        NodeError::range_error(
                            "ERR_RNNKIT_RANGE",
                            format!("data.transcriptLengths[{r}]: expected a length >= 0, got {n}"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Some(BatchTargets::Transcripts { labels: labels.to_vec(), max_len: labels.len() / rows.max(1), lengths })
        }
        (None, None) => None,
        _ => return Err(type_error("data: transcripts and transcriptLengths go together".into())),
    };
    let targets = match (&d.labels, &d.tags, &d.targets, transcripts, placeholder) {
        (Some(l), None, None, None, _) => BatchTargets::PerRow(l.to_vec()),
        (None, Some(t), None, None, _) => BatchTargets::PerStep(t.to_vec()),
        (None, None, Some(v), None, _) if shape.per_step => BatchTargets::ValuesPerStep(v.to_vec()),
        (None, None, Some(v), None, _) => BatchTargets::ValuesPerRow(v.to_vec()),
        (None, None, None, Some(t), _) => t,
        (None, None, None, None, Some(p)) => p,
        _ => return Err(type_error("data: give exactly one of labels, tags, targets or transcripts".into())),
    };
    let set = SequenceSet {
        input,
        targets,
        rows: d.rows as usize,
        steps: d.steps as usize,
        lengths,
        features: shape.features,
        outputs: shape.outputs,
    };
    set.validate()?;
    Ok(set)
}

/// A batch in JavaScript form (batch-first), as the engine cut it.
pub fn batch_data(b: &Batch) -> SequenceData {
    let lengths = b.lengths.clone().unwrap_or_else(|| vec![b.steps; b.rows]);
    let (tokens, values) = match &b.input {
        BatchInput::Tokens(t) => (Some(Int32Array::new(t.clone())), None),
        BatchInput::Dense(v) => (None, Some(Float32Array::new(v.clone()))),
    };
    let (mut transcripts, mut transcript_lengths) = (None, None);
    let (labels, tags, targets) = match &b.targets {
        BatchTargets::PerRow(y) => (Some(Int32Array::new(y.clone())), None, None),
        BatchTargets::PerStep(y) => (None, Some(Int32Array::new(y.clone())), None),
        BatchTargets::ValuesPerStep(y) | BatchTargets::ValuesPerRow(y) => {
            (None, None, Some(Float32Array::new(y.clone())))
        }
        BatchTargets::Transcripts { labels, lengths, .. } => {
            transcripts = Some(Int32Array::new(labels.clone()));
            transcript_lengths = Some(Int32Array::new(lengths.iter().map(|&l| l as i32).collect()));
            (None, None, None)
        }
    };
    SequenceData {
        tokens,
        values,
        lengths: Int32Array::new(lengths.iter().map(|&l| l as i32).collect()),
        rows: b.rows as u32,
        steps: b.steps as u32,
        labels,
        tags,
        targets,
        transcripts,
        transcript_lengths,
    }
}

/// Which part of a dataset.
/// The data order of a split: the dataset's, except that validation is never shuffled.
fn split_order(order: &TrainOptions, train: bool) -> TrainOptions {
    let mut order = order.clone();
    order.shuffle &= train;
    order
}

/// Batch `index` of `epoch` of a split's data, exactly as `fit` cuts it.
fn split_batch(
    data: &TrainData,
    order: &TrainOptions,
    train: bool,
    epoch: u64,
    index: u32,
) -> Result<Batch, NodeError> {
    let order = split_order(order, train);
    let n = data.batches_per_epoch(&order);
    if index as usize >= n {
        return Err(NodeError::range_error(
            "ERR_RNNKIT_RANGE",
            format!("index: expected a batch index in [0, {n}), got {index}"),
        ));
    }
    Ok(data.batch(&order, &data.epoch_order(&order, epoch), index as usize))
}

fn split_name(split: &str) -> Result<bool, NodeError> {
    match split {
        "train" => Ok(true),
        "validation" => Ok(false),
        other => Err(type_error(format!("split: expected \"train\" or \"validation\", got \"{other}\""))),
    }
}

/// A batch of language-model windows: `targets` are `inputs` shifted by one token.
#[napi(object)]
pub struct TokenBatch {
    /// `[batchSize, seqLen]` row-major.
    pub inputs: Int32Array,
    /// `[batchSize, seqLen]`; padding rows hold -100.
    pub targets: Int32Array,
    /// Rows of this batch (with `last: 'pad'`, always the dataset's batch size).
    pub batch_size: u32,
    pub seq_len: u32,
    /// Rows holding real windows (the rest, at the end, are padding).
    pub rows: u32,
}

/// Token ids appended chunk by chunk as a text is encoded, held by the engine's
/// [`TokenStore`] (1, 2 or 4 bytes per id by vocabulary size), so a corpus never has to exist
/// whole as a JavaScript string or `Int32Array`. A dataset or an evaluation made from the buffer
/// shares its ids (no copy); the buffer then takes no more ids.
#[napi]
pub struct NativeTokenBuffer {
    ids: Mutex<Ids>,
}

enum Ids {
    /// Still being appended to.
    Open(TokenStore),
    /// Shared with a dataset or an evaluation.
    Shared(TokenSlice),
}

#[napi]
impl NativeTokenBuffer {
    /// An empty buffer of ids of a vocabulary of `vocabSize`.
    #[napi(constructor)]
    pub fn new(env: Env, vocab_size: u32) -> napi::Result<Self> {
        guard_js(&env, || {
            if vocab_size == 0 {
                return Err(NodeError::range_error(
                    "ERR_RNNKIT_RANGE",
                    "vocabSize: expected an integer >= 1, got 0".into(),
                ));
            }
            Ok(NativeTokenBuffer { ids: Mutex::new(Ids::Open(TokenStore::new(vocab_size as usize))) })
        })
    }

    /// Appends `ids`; an id outside the vocabulary is a RangeError naming its position in the
    /// whole stream (the buffer is left as it was).
    #[napi]
    pub fn push(&self, env: Env, ids: Int32Array) -> napi::Result<()> {
        guard_js(&env, || match &mut *self.lock()? {
            Ids::Open(store) => Ok(store.push(&ids)?),
            Ids::Shared(_) => Err(type_error("push: the ids were already used by a dataset or an evaluation".into())),
        })
    }

    /// Ids appended.
    #[napi(getter)]
    pub fn length(&self, env: Env) -> napi::Result<f64> {
        guard_js(&env, || {
            Ok(match &*self.lock()? {
                Ids::Open(store) => store.len(),
                Ids::Shared(slice) => slice.len(),
            } as f64)
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Ids>, NodeError> {
        self.ids.lock().map_err(|_| NodeError::panic("token buffer lock poisoned"))
    }

    /// The ids, shared read-only from now on.
    pub(crate) fn shared(&self) -> Result<TokenSlice, NodeError> {
        let mut g = self.lock()?;
        if let Ids::Open(store) = &mut *g {
            let store = std::mem::replace(store, TokenStore::new(1));
            *g = Ids::Shared(store.into_shared());
        }
        match &*g {
            Ids::Shared(slice) => Ok(slice.clone()),
            Ids::Open(_) => unreachable!("shared just above"),
        }
    }
}

/// A language model's token stream: training text, optional validation text, data order.
#[napi]
pub struct NativeTokenDataset {
    pub(crate) train: TrainData,
    /// The validation text, cut like the training text but never shuffled.
    pub(crate) validation: Option<TrainData>,
    /// The validation ids (empty without validation).
    pub(crate) validation_tokens: TokenSlice,
    pub(crate) order: TrainOptions,
    pub(crate) vocab_size: usize,
}

#[napi]
impl NativeTokenDataset {
    /// `tokens`: the whole text's ids (shared, not copied). Validation: an explicit `validation`
    /// text, or the tail `validationFraction` of `tokens`. `options`: the data order (token
    /// streams drop a short last batch unless `last` says otherwise).
    #[napi(constructor)]
    pub fn new(
        env: Env,
        tokens: &NativeTokenBuffer,
        validation: Option<&NativeTokenBuffer>,
        validation_fraction: f64,
        #[napi(ts_arg_type = "DataOrderOptions")] options: Strict<DataOrderOptions>,
    ) -> napi::Result<Self> {
        guard_js(&env, || {
            let (mut order, pad_id) = data_order(&options.0, LastBatch::Drop, true)?;
            if options.0.batch_size.is_none() || options.0.seq_len.is_none() {
                return Err(type_error("options: batchSize and seqLen are required".into()));
            }
            if order.tbptt && order.last == LastBatch::Pad {
                return Err(type_error("options.last: \"pad\" applies to windows, not to tbptt lanes".into()));
            }
            if order.tbptt {
                order.last = LastBatch::Keep;
            }
            let all = tokens.shared()?;
            let vocab = all.vocab_size();
            let (train, valid) = match validation {
                Some(v) => {
                    let v = v.shared()?;
                    if v.vocab_size() != vocab {
                        return Err(type_error(format!(
                            "validation: ids of a vocabulary of {}, the training ids' has {vocab}",
                            v.vocab_size()
                        )));
                    }
                    (all, v)
                }
                None => {
                    let n = split_tail(all.len(), validation_fraction).map_err(|e| {
                        let mut e = NodeError::from(e);
                        e.message = format!("options.{}", e.message);
                        e.param = Some("options.validation".into());
                        e
                    })?;
                    all.split_at(all.len() - n)
                }
            };
            let needed = if order.tbptt { order.batch_size * (order.seq_len + 1) } else { order.seq_len + 1 };
            if train.len() < needed {
                return Err(NodeError::range_error(
                    "ERR_RNNKIT_EMPTY",
                    format!(
                        "options.seqLen: the training stream has {} tokens, fewer than {} = {needed}",
                        train.len(),
                        if order.tbptt { "batchSize · (seqLen + 1)" } else { "seqLen + 1" }
                    ),
                ));
            }
            if !valid.is_empty() && valid.len() < order.seq_len + 1 {
                return Err(NodeError::range_error(
                    "ERR_RNNKIT_EMPTY",
                    format!(
                        "validation: the validation text has {} tokens, fewer than seqLen + 1 = {}",
                        valid.len(),
                        order.seq_len + 1
                    ),
                ));
            }
            let cut = |t: TokenSlice, last: LastBatch| -> Result<TokenStream, NodeError> {
                Ok(TokenStream::from_slice(t, vocab, order.batch_size, order.seq_len, stream_mode(&order))?
                    .with_last(last, pad_id, vocab)?)
            };
            let train_stream = cut(train, order.last)?;
            if train_stream.batches_per_epoch() == 0 {
                return Err(NodeError::range_error(
                    "ERR_RNNKIT_EMPTY",
                    format!(
                        "options.batchSize: {} is more than the {} training windows and options.last is \"drop\"",
                        order.batch_size,
                        train_stream.windows()
                    ),
                ));
            }
            let validation =
                if valid.is_empty() { None } else { Some(TrainData::Stream(cut(valid.clone(), order.last)?)) };
            Ok(NativeTokenDataset {
                train: TrainData::Stream(train_stream),
                validation,
                validation_tokens: valid,
                order,
                vocab_size: vocab,
            })
        })
    }

    fn part(&self, split: &str) -> Result<Option<&TrainData>, NodeError> {
        Ok(if split_name(split)? { Some(&self.train) } else { self.validation.as_ref() })
    }

    /// Windows of a split per epoch.
    #[napi]
    pub fn num_windows(&self, env: Env, split: String) -> napi::Result<u32> {
        guard_js(&env, || {
            Ok(match self.part(&split)? {
                Some(TrainData::Stream(s)) => s.windows() as u32,
                _ => 0,
            })
        })
    }

    /// Batches of a split per epoch.
    #[napi]
    pub fn num_batches(&self, env: Env, split: String) -> napi::Result<u32> {
        guard_js(&env, || Ok(self.part(&split)?.map_or(0, |d| d.batches_per_epoch(&self.order) as u32)))
    }

    /// Window start indices (window k starts at token k·stride) in the order `epoch` visits them.
    #[napi]
    pub fn window_order(&self, env: Env, split: String, epoch: f64) -> napi::Result<Uint32Array> {
        guard_js(&env, || {
            let epoch = whole("epoch", epoch)?;
            let stride = self.order.stride.unwrap_or(self.order.seq_len);
            let train = split_name(&split)?;
            Ok(Uint32Array::new(match self.part(&split)? {
                Some(d) => self.order_of(d, train, epoch).iter().map(|&s| (s / stride) as u32).collect(),
                None => Vec::new(),
            }))
        })
    }

    fn order_of(&self, data: &TrainData, train: bool, epoch: u64) -> Vec<usize> {
        data.epoch_order(&split_order(&self.order, train), epoch)
    }

    /// Batch `index` of `epoch` of a split, exactly as `fit` cuts it.
    #[napi]
    pub fn batch(&self, env: Env, split: String, epoch: f64, index: u32) -> napi::Result<TokenBatch> {
        guard_js(&env, || {
            let epoch = whole("epoch", epoch)?;
            let train = split_name(&split)?;
            let data =
                self.part(&split)?.ok_or_else(|| type_error("split: this dataset has no validation text".into()))?;
            let b = split_batch(data, &self.order, train, epoch, index)?;
            let (BatchInput::Tokens(inputs), BatchTargets::PerStep(targets)) = (&b.input, &b.targets) else {
                unreachable!("token streams cut token batches")
            };
            let real = (0..b.rows)
                .filter(|&r| targets[r * b.steps..(r + 1) * b.steps].iter().any(|&t| t != IGNORE_INDEX))
                .count();
            Ok(TokenBatch {
                inputs: Int32Array::new(inputs.clone()),
                targets: Int32Array::new(targets.clone()),
                batch_size: b.rows as u32,
                seq_len: b.steps as u32,
                rows: real as u32,
            })
        })
    }

    /// The token ids of a split (a copy).
    #[napi]
    pub fn tokens(&self, env: Env, split: String) -> napi::Result<Int32Array> {
        guard_js(&env, || {
            let ids = self.ids(&split)?;
            if ids.len() > MAX_TYPED_ARRAY {
                return Err(NodeError::range_error(
                    "ERR_RNNKIT_RANGE",
                    format!(
                        "split: the {split} stream has {} tokens, more than the {MAX_TYPED_ARRAY} an Int32Array of 4 GiB holds; read it by batches",
                        ids.len()
                    ),
                ));
            }
            Ok(Int32Array::new(ids.to_vec()))
        })
    }

    /// Tokens in a split (0 for a missing validation split).
    #[napi]
    pub fn num_tokens(&self, env: Env, split: String) -> napi::Result<f64> {
        guard_js(&env, || Ok(self.ids(&split)?.len() as f64))
    }

    /// Bytes each token id takes in memory (1, 2 or 4: the narrowest that holds the vocabulary).
    #[napi(getter)]
    pub fn bytes_per_id(&self) -> u32 {
        self.validation_tokens.bytes_per_id() as u32
    }

    fn ids(&self, split: &str) -> Result<&TokenSlice, NodeError> {
        Ok(if split_name(split)? {
            match &self.train {
                TrainData::Stream(s) => s.tokens(),
                TrainData::Sequences(_) => unreachable!("a token dataset holds a stream"),
            }
        } else {
            &self.validation_tokens
        })
    }

    /// Size of the vocabulary the ids were checked against.
    #[napi(getter)]
    pub fn vocab_size(&self) -> u32 {
        self.vocab_size as u32
    }
}

/// The longest `Int32Array` returned: 4 GiB of ids, Node 20's largest buffer
/// (`buffer.constants.MAX_LENGTH`).
const MAX_TYPED_ARRAY: usize = 1 << 30;

/// Padded rows with targets, split into train and validation, with their data order.
#[napi]
pub struct NativeSequenceDataset {
    pub(crate) train: TrainData,
    pub(crate) validation: Option<SequenceSet>,
    pub(crate) split: RowSplit,
    pub(crate) order: TrainOptions,
    pub(crate) shape: RowShape,
}

/// How the rows of a [`NativeSequenceDataset`] are split and what shape their values have.
#[napi(object, object_to_js = false)]
pub struct RowSplitOptions {
    /// Fraction of rows held out for validation, in [0, 1).
    pub validation: f64,
    /// Split within each class (labels) so each keeps its share.
    pub stratify: bool,
    /// Dense features per step (0 for token rows).
    pub input_size: u32,
    /// Values per target (regression; 0 for class targets).
    pub output_size: u32,
    /// Regression targets are per step.
    pub per_step: bool,
}

#[napi]
impl NativeSequenceDataset {
    /// All rows in `data`; `split` says how to split them; `options` the data order (a short last
    /// batch is kept unless `last: 'drop'`).
    #[napi(constructor)]
    pub fn new(
        env: Env,
        data: SequenceData,
        split: RowSplitOptions,
        #[napi(ts_arg_type = "DataOrderOptions")] options: Strict<DataOrderOptions>,
    ) -> napi::Result<Self> {
        guard_js(&env, || {
            let (order, _) = data_order(&options.0, LastBatch::Keep, false)?;
            if options.0.batch_size.is_none() {
                return Err(type_error("options.batchSize: required".into()));
            }
            let shape = RowShape {
                features: split.input_size as usize,
                outputs: split.output_size as usize,
                per_step: split.per_step,
            };
            let all = row_set(&data, shape, None)?;
            let strata = match (&all.targets, split.stratify) {
                (BatchTargets::PerRow(y), true) => Some(y.clone()),
                (_, true) => {
                    return Err(type_error("options.stratify: only rows with one label each can be stratified".into()))
                }
                _ => None,
            };
            let parts = split_rows(all.rows, split.validation, order.seed, strata.as_deref()).map_err(|e| {
                let mut e = NodeError::from(e);
                e.message = format!("options.{}", e.message);
                e.param = Some("options.validation".into());
                e
            })?;
            if parts.train.is_empty() {
                return Err(NodeError::range_error(
                    "ERR_RNNKIT_EMPTY",
                    format!("options.validation: {} leaves no training rows out of {}", split.validation, all.rows),
                ));
            }
            let train = all.subset(&parts.train);
            if train.batches_per_epoch(order.batch_size, order.last) == 0 {
                return Err(NodeError::range_error(
                    "ERR_RNNKIT_EMPTY",
                    format!(
                        "options.batchSize: {} is more than the {} training rows and options.last is \"drop\"",
                        order.batch_size, train.rows
                    ),
                ));
            }
            let validation = (!parts.validation.is_empty()).then(|| all.subset(&parts.validation));
            Ok(NativeSequenceDataset { train: TrainData::Sequences(train), validation, split: parts, order, shape })
        })
    }

    /// Rows in a split.
    #[napi]
    pub fn size(&self, env: Env, split: String) -> napi::Result<u32> {
        guard_js(&env, || {
            Ok((if split_name(&split)? { &self.split.train } else { &self.split.validation }).len() as u32)
        })
    }

    /// Indices (into the rows given at construction) of a split, ascending.
    #[napi]
    pub fn row_indices(&self, env: Env, split: String) -> napi::Result<Uint32Array> {
        guard_js(&env, || {
            let rows = if split_name(&split)? { &self.split.train } else { &self.split.validation };
            Ok(Uint32Array::new(rows.iter().map(|&r| r as u32).collect()))
        })
    }

    /// The validation rows as a dataset part of their own, if any.
    pub(crate) fn validation_data(&self) -> Option<&SequenceSet> {
        self.validation.as_ref()
    }

    fn part(&self, split: &str) -> Result<Option<TrainData>, NodeError> {
        Ok(if split_name(split)? {
            Some(self.train.clone())
        } else {
            self.validation.clone().map(TrainData::Sequences)
        })
    }

    /// Batches of a split per epoch.
    #[napi]
    pub fn num_batches(&self, env: Env, split: String) -> napi::Result<u32> {
        guard_js(&env, || Ok(self.part(&split)?.map_or(0, |d| d.batches_per_epoch(&self.order) as u32)))
    }

    /// Batch `index` of `epoch` of a split, exactly as `fit` cuts it (validation never shuffled).
    #[napi]
    pub fn batch(&self, env: Env, split: String, epoch: f64, index: u32) -> napi::Result<SequenceData> {
        guard_js(&env, || {
            let epoch = whole("epoch", epoch)?;
            let train = split_name(&split)?;
            let data =
                self.part(&split)?.ok_or_else(|| type_error("split: this dataset has no validation rows".into()))?;
            Ok(batch_data(&split_batch(&data, &self.order, train, epoch, index)?))
        })
    }
}

/// The train/validation split of `n` rows (seeded; `strata[i]` the class of row `i` for a
/// stratified split), each part ascending: the same split a [`NativeSequenceDataset`] with these
/// options makes, for callers that need it before the rows are encoded (fitting a tokenizer on
/// the training rows only).
#[napi]
pub fn split_row_indices(
    env: Env,
    n: u32,
    fraction: f64,
    seed: f64,
    strata: Option<Int32Array>,
) -> napi::Result<Vec<Uint32Array>> {
    guard_js(&env, || {
        let seed = whole("options.seed", seed)?;
        let parts = split_rows(n as usize, fraction, seed, strata.as_deref()).map_err(|e| {
            let mut e = NodeError::from(e);
            e.message = format!("options.{}", e.message);
            e.param = Some("options.validation".into());
            e
        })?;
        let to_js = |v: &[usize]| Uint32Array::new(v.iter().map(|&r| r as u32).collect());
        Ok(vec![to_js(&parts.train), to_js(&parts.validation)])
    })
}
