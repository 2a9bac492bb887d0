//! The engine's data-dependent defaults (`rnn_core::defaults`) for JavaScript: the profile of a
//! data set (`profileTexts`) and the model, tokenizer and training a task gets on it
//! (`recommendOptions`; `recommendSeq2SeqOptions` for pairs, one profile per side;
//! `recommendSpeechOptions` for utterances).

use napi::Env;
use napi_derive::napi;
use rnn_core::config::Task;
use rnn_core::defaults::{self, MonitorChoice, TokenizerChoice};

use crate::errors::NodeError;
use crate::guard::guard_js;
use crate::options::Strict;
use crate::strict_object;
use crate::train_options::whole;

/// What a data set looks like, as far as the defaults care (see `profileTexts`).
#[napi(object)]
pub struct DataProfile {
    /// Rows (1 for a language model's text).
    pub rows: f64,
    /// Characters (Unicode code points) in all rows.
    pub chars: f64,
    /// Distinct characters.
    pub distinct_chars: f64,
    /// Whitespace-separated words, lower-cased, surrounding punctuation removed.
    pub words: f64,
    /// Distinct words.
    pub distinct_words: f64,
    /// Occurrences of the words that occur at least twice.
    pub repeated_word_occurrences: f64,
    /// Whitespace-separated runs with every ASCII digit and CJK ideograph a piece of its own
    /// (the word tokenizer with `splitDigits` and `splitCjk`); what the seq2seq defaults read.
    pub pieces: Option<f64>,
    /// Distinct pieces.
    pub distinct_pieces: Option<f64>,
    /// Occurrences of the pieces that occur at least twice.
    pub repeated_piece_occurrences: Option<f64>,
}
strict_object!(
    DataProfile,
    "profile",
    [
        "rows",
        "chars",
        "distinctChars",
        "words",
        "distinctWords",
        "repeatedWordOccurrences",
        "pieces",
        "distinctPieces",
        "repeatedPieceOccurrences"
    ]
);

impl DataProfile {
    /// The engine's profile; `name` prefixes the errors (`profile.chars`).
    fn to_engine(&self, name: &str) -> Result<defaults::DataProfile, NodeError> {
        let count = |field: &str, v: f64| whole(&format!("{name}.{field}"), v);
        let optional = |field: &str, v: Option<f64>| v.map_or(Ok(0), |v| count(field, v));
        Ok(defaults::DataProfile {
            rows: count("rows", self.rows)?,
            chars: count("chars", self.chars)?,
            distinct_chars: count("distinctChars", self.distinct_chars)?,
            words: count("words", self.words)?,
            distinct_words: count("distinctWords", self.distinct_words)?,
            repeated_word_occurrences: count("repeatedWordOccurrences", self.repeated_word_occurrences)?,
            pieces: optional("pieces", self.pieces)?,
            distinct_pieces: optional("distinctPieces", self.distinct_pieces)?,
            repeated_piece_occurrences: optional("repeatedPieceOccurrences", self.repeated_piece_occurrences)?,
        })
    }
}

/// The defaults of a task on a data set: the model, its tokenizer, its training, and why.
#[napi(object, object_from_js = false)]
pub struct Recommendation {
    /// `'char'` or `'word'`; absent where the task or the rows fix the tokenizer.
    #[napi(ts_type = "'char' | 'word'")]
    pub tokenizer: Option<String>,
    /// Whether the word tokenizer lower-cases.
    pub lowercase: bool,
    /// Fewest occurrences of a word to get its own token.
    pub min_count: u32,
    #[napi(ts_type = "'rnn' | 'lstm' | 'gru'")]
    pub cell: String,
    pub hidden_size: u32,
    pub num_layers: u32,
    pub embed_dim: u32,
    pub bidirectional: bool,
    #[napi(ts_type = "'last' | 'mean' | 'max'")]
    pub pooling: String,
    pub batch_size: u32,
    /// Tokens per training window (language models).
    pub seq_len: u32,
    /// Language models: carry the state across consecutive windows (truncated BPTT).
    pub tbptt: bool,
    /// Most epochs; early stopping usually ends the run sooner.
    pub epochs: u32,
    pub learning_rate: f64,
    /// `'cosine'`: the rate decays to 0 over the run (`tMax` = epochs × batches per epoch);
    /// `'constant'` otherwise.
    #[napi(ts_type = "'constant' | 'cosine'")]
    pub schedule: String,
    pub clip_norm: f64,
    /// The metric early stopping follows.
    #[napi(ts_type = "'valLoss' | 'valAccuracy'")]
    pub monitor: String,
    /// Validations without improvement before the run stops, keeping the best weights.
    pub patience: u32,
    /// Why each choice was made, one sentence each.
    pub reasons: Vec<String>,
}

/// The profile of `texts` (the rows of a data set, or the pieces of a text).
#[napi]
pub fn profile_texts(env: Env, texts: Vec<String>) -> napi::Result<DataProfile> {
    guard_js(&env, || {
        let p = defaults::DataProfile::of_texts(texts.iter().map(String::as_str));
        Ok(DataProfile {
            rows: p.rows as f64,
            chars: p.chars as f64,
            distinct_chars: p.distinct_chars as f64,
            words: p.words as f64,
            distinct_words: p.distinct_words as f64,
            repeated_word_occurrences: p.repeated_word_occurrences as f64,
            pieces: Some(p.pieces as f64),
            distinct_pieces: Some(p.distinct_pieces as f64),
            repeated_piece_occurrences: Some(p.repeated_piece_occurrences as f64),
        })
    })
}

/// The defaults of `task` (`language_model`, `classify`, `tag`, `regress`) on data that looks
/// like `profile`.
#[napi]
pub fn recommend_options(
    env: Env,
    task: String,
    #[napi(ts_arg_type = "DataProfile")] profile: Strict<DataProfile>,
) -> napi::Result<Recommendation> {
    guard_js(&env, || {
        let task = Task::parse(&task).map_err(NodeError::from)?;
        let r = defaults::recipe(task, &profile.0.to_engine("profile")?);
        Ok(Recommendation {
            tokenizer: r.tokenizer.map(tokenizer_name),
            lowercase: r.lowercase,
            min_count: r.min_count as u32,
            cell: r.cell.into(),
            hidden_size: r.hidden_size as u32,
            num_layers: r.num_layers as u32,
            embed_dim: r.embed_dim as u32,
            bidirectional: r.bidirectional,
            pooling: r.pooling.into(),
            batch_size: r.batch_size as u32,
            seq_len: r.seq_len as u32,
            tbptt: r.tbptt,
            epochs: r.epochs as u32,
            learning_rate: r.learning_rate,
            schedule: if r.cosine { "cosine".into() } else { "constant".into() },
            clip_norm: r.clip_norm,
            monitor: monitor_name(r.monitor),
            patience: r.patience as u32,
            reasons: r.reasons,
        })
    })
}

/// The JavaScript name of a tokenizer choice: pieces are the word tokenizer with its splits.
fn tokenizer_name(t: TokenizerChoice) -> String {
    match t {
        TokenizerChoice::Char => "char".into(),
        TokenizerChoice::Word | TokenizerChoice::Pieces => "word".into(),
    }
}

/// One side's tokenizer in the seq2seq defaults: `char`, or `word` with the options that make it
/// read pieces.
#[napi(object, object_from_js = false)]
pub struct TokenizerRecommendation {
    #[napi(js_name = "type", ts_type = "'char' | 'word'")]
    pub kind: String,
    /// Word only: every ASCII digit a token of its own.
    pub split_digits: bool,
    /// Word only: every CJK ideograph a token of its own.
    pub split_cjk: bool,
    /// Word only: false (a target is written as given).
    pub lowercase: bool,
    /// Word only: `'keep'` (punctuation stays in its word: `thirty-seven` is one token).
    #[napi(ts_type = "'split' | 'drop' | 'keep'")]
    pub punctuation: String,
}

impl From<TokenizerChoice> for TokenizerRecommendation {
    fn from(t: TokenizerChoice) -> Self {
        let pieces = t == TokenizerChoice::Pieces;
        TokenizerRecommendation {
            kind: tokenizer_name(t),
            split_digits: pieces,
            split_cjk: pieces,
            lowercase: false,
            punctuation: "keep".into(),
        }
    }
}

/// The defaults of a sequence-to-sequence model on a pair set, and why.
#[napi(object, object_from_js = false)]
pub struct Seq2SeqRecommendation {
    pub source_tokenizer: TokenizerRecommendation,
    pub target_tokenizer: TokenizerRecommendation,
    #[napi(ts_type = "'rnn' | 'lstm' | 'gru'")]
    pub cell: String,
    pub hidden_size: u32,
    pub num_layers: u32,
    pub embed_dim: u32,
    pub bidirectional: bool,
    #[napi(ts_type = "'additive' | 'dot' | 'general'")]
    pub attention: String,
    pub batch_size: u32,
    /// Epochs of one run; early stopping may end it sooner.
    pub epochs: u32,
    pub learning_rate: f64,
    #[napi(ts_type = "'constant' | 'cosine'")]
    pub schedule: String,
    pub clip_norm: f64,
    #[napi(ts_type = "'valLoss' | 'valAccuracy'")]
    pub monitor: String,
    pub patience: u32,
    /// Why each choice was made: source tokenizer, target tokenizer, model, length of training.
    pub reasons: Vec<String>,
}

/// The defaults of a sequence-to-sequence model whose sources look like `source` and targets
/// like `target` (each `profileTexts` of one side).
#[napi]
pub fn recommend_seq2seq_options(
    env: Env,
    #[napi(ts_arg_type = "DataProfile")] source: Strict<DataProfile>,
    #[napi(ts_arg_type = "DataProfile")] target: Strict<DataProfile>,
) -> napi::Result<Seq2SeqRecommendation> {
    guard_js(&env, || {
        let r = defaults::seq2seq_recipe(&source.0.to_engine("source")?, &target.0.to_engine("target")?);
        Ok(Seq2SeqRecommendation {
            source_tokenizer: r.source_tokenizer.into(),
            target_tokenizer: r.target_tokenizer.into(),
            cell: r.cell.into(),
            hidden_size: r.hidden_size as u32,
            num_layers: r.num_layers as u32,
            embed_dim: r.embed_dim as u32,
            bidirectional: r.bidirectional,
            attention: r.attention.into(),
            batch_size: r.batch_size as u32,
            epochs: r.epochs as u32,
            learning_rate: r.learning_rate,
            schedule: if r.cosine { "cosine".into() } else { "constant".into() },
            clip_norm: r.clip_norm,
            monitor: monitor_name(r.monitor),
            patience: r.patience as u32,
            reasons: r.reasons,
        })
    })
}

/// The defaults of a speech recognizer on a set of utterances, and why.
#[napi(object, object_from_js = false)]
pub struct SpeechRecommendation {
    #[napi(ts_type = "'rnn' | 'lstm' | 'gru'")]
    pub cell: String,
    pub hidden_size: u32,
    pub num_layers: u32,
    pub bidirectional: bool,
    /// Consecutive feature frames joined into one recurrent step.
    pub frame_stacking: u32,
    /// Train with SpecAugment's default masks (`fit`'s `specAugment: {}`).
    pub spec_augment: bool,
    /// Epochs of one run; early stopping may end it sooner.
    pub epochs: u32,
    pub learning_rate: f64,
    #[napi(ts_type = "'constant' | 'cosine'")]
    pub schedule: String,
    pub clip_norm: f64,
    #[napi(ts_type = "'valLoss' | 'valAccuracy'")]
    pub monitor: String,
    pub patience: u32,
    /// Why each choice was made: model, length of training.
    pub reasons: Vec<String>,
}

/// The defaults of a speech recognizer trained on `utterances` utterances of `frames` feature
/// frames in all.
#[napi]
pub fn recommend_speech_options(env: Env, utterances: f64, frames: f64) -> napi::Result<SpeechRecommendation> {
    guard_js(&env, || {
        let r = defaults::speech_recipe(whole("utterances", utterances)?, whole("frames", frames)?);
        Ok(SpeechRecommendation {
            cell: r.cell.into(),
            hidden_size: r.hidden_size as u32,
            num_layers: r.num_layers as u32,
            bidirectional: r.bidirectional,
            frame_stacking: r.frame_stacking as u32,
            spec_augment: r.spec_augment,
            epochs: r.epochs as u32,
            learning_rate: r.learning_rate,
            schedule: if r.cosine { "cosine".into() } else { "constant".into() },
            clip_norm: r.clip_norm,
            monitor: monitor_name(r.monitor),
            patience: r.patience as u32,
            reasons: r.reasons,
        })
    })
}

/// The JavaScript name of the metric early stopping follows.
fn monitor_name(m: MonitorChoice) -> String {
    match m {
        MonitorChoice::ValLoss => "valLoss".into(),
        MonitorChoice::ValAccuracy => "valAccuracy".into(),
    }
}
