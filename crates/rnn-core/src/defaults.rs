//! The defaults of a new model and of its training, chosen per task from what the data looks like:
//! the one table the API (`recommendOptions`, `create*` without sizes) and the CLI (`rnnkit train`
//! without tuning flags) share.
//!
//! Why data-dependent: one fixed architecture cannot suit 2,000 short reviews and a 700 KB novel.
//! A character-level two-layer BiLSTM of 2 M parameters fitted for one epoch on 2,400 sentences
//! reaches ~0.6 accuracy in minutes, where a word-level GRU of 64 units with early stopping
//! reaches ~0.8 in seconds. The rules below are few and measured (docs/CLI.md, "Defaults"):
//! - tokenizer (classify): words when the texts are mostly space-separated words that repeat
//!   (English, most European languages); characters otherwise (Chinese, Japanese, codes);
//! - size: the hidden width grows with the amount of training data (tokens seen per epoch), so
//!   that small data does not get a model that only memorises it;
//! - length of training: as many epochs as a budget of tokens allows (about a minute on two
//!   cores for the bundled data), stopped early when the validation metric stops improving, with
//!   the best weights kept.

use std::collections::{HashMap, HashSet};

use crate::config::Task;

/// What the rows (or the text) of a data set look like, as far as the defaults care.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataProfile {
    /// Rows (1 for a language model's text).
    pub rows: u64,
    /// Unicode scalar values in all rows.
    pub chars: u64,
    /// Distinct characters.
    pub distinct_chars: u64,
    /// Whitespace-separated words, lower-cased, punctuation around them removed.
    pub words: u64,
    /// Distinct words.
    pub distinct_words: u64,
    /// Occurrences of the words that occur at least twice: the part of the text a word
    /// vocabulary with a minimum count of 2 covers.
    pub repeated_word_occurrences: u64,
    /// Pieces: whitespace-separated runs with every ASCII digit and every CJK ideograph a piece
    /// of its own (what the word tokenizer with `splitDigits` and `splitCjk` reads), `37201`
    /// five pieces and `一万` two.
    pub pieces: u64,
    /// Distinct pieces.
    pub distinct_pieces: u64,
    /// Occurrences of the pieces that occur at least twice.
    pub repeated_piece_occurrences: u64,
}

/// Whether `c` is a piece of its own: an ASCII digit or a CJK ideograph (BERT's
/// BasicTokenizer ranges, and 〇), the rule of the word tokenizer's `splitDigits`/`splitCjk`.
pub fn is_single_piece(c: char) -> bool {
    c.is_ascii_digit()
        || matches!(c as u32,
            0x3007 | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2A6DF
            | 0x2A700..=0x2CEAF | 0x2F800..=0x2FA1F)
}

impl DataProfile {
    /// The profile of `texts`, one pass over each.
    pub fn of_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> DataProfile {
        let mut chars = HashSet::new();
        let mut words: HashMap<String, u64> = HashMap::new();
        let mut pieces: HashMap<String, u64> = HashMap::new();
        let mut p = DataProfile::default();
        for text in texts {
            p.rows += 1;
            for c in text.chars() {
                p.chars += 1;
                chars.insert(c);
            }
            for raw in text.split_whitespace() {
                let mut run = String::new();
                for c in raw.chars() {
                    if is_single_piece(c) {
                        if !run.is_empty() {
                            *pieces.entry(std::mem::take(&mut run)).or_default() += 1;
                        }
                        *pieces.entry(c.to_string()).or_default() += 1;
                    } else {
                        run.push(c);
                    }
                }
                if !run.is_empty() {
                    *pieces.entry(run).or_default() += 1;
                }
                let word = raw.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
                if !word.is_empty() {
                    p.words += 1;
                    *words.entry(word).or_default() += 1;
                }
            }
        }
        p.distinct_chars = chars.len() as u64;
        p.distinct_words = words.len() as u64;
        p.repeated_word_occurrences = words.values().filter(|&&n| n >= 2).sum();
        p.pieces = pieces.values().sum();
        p.distinct_pieces = pieces.len() as u64;
        p.repeated_piece_occurrences = pieces.values().filter(|&&n| n >= 2).sum();
        p
    }

    /// Whether the texts are a closed vocabulary of pieces (number words, digits, ideographs,
    /// codes): pieces seen twice cover at least 99 % of them, at most 12 characters a piece. A
    /// sequence-to-sequence model then reads and writes pieces, several times fewer steps than
    /// characters; open text, where new words keep coming, stays with characters (a decoder
    /// cannot write a word its vocabulary lacks).
    fn closed_pieces(&self) -> bool {
        self.pieces > 0
            && self.chars as f64 <= 12.0 * self.pieces as f64
            && self.repeated_piece_occurrences as f64 >= 0.99 * self.pieces as f64
    }

    /// Mean characters per whitespace-separated word (`inf` without words).
    fn chars_per_word(&self) -> f64 {
        if self.words == 0 {
            f64::INFINITY
        } else {
            self.chars as f64 / self.words as f64
        }
    }

    /// Whether a word vocabulary suits these texts: they are mostly words of ordinary length
    /// (at most 12 characters on average, spaces and punctuation included: Chinese runs of
    /// characters without spaces give far more), and words seen twice cover at least 60 % of
    /// the text (a vocabulary of mostly one-off words would map most of a new text to `<unk>`).
    fn suits_words(&self) -> bool {
        self.chars_per_word() <= 12.0
            && self.words > 0
            && self.repeated_word_occurrences as f64 >= 0.6 * self.words as f64
    }
}

/// The tokenizer a recipe picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerChoice {
    /// One token per character.
    Char,
    /// Lower-cased words with a minimum count of 2 (rarer words read as `<unk>`).
    Word,
    /// Sequence to sequence: the word tokenizer reading pieces (`DataProfile::pieces`: every
    /// digit and ideograph its own token, other runs of non-space characters whole, so
    /// `thirty-seven` stays one word), case kept, every piece of the pairs in the vocabulary.
    Pieces,
}

/// The validation metric early stopping follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorChoice {
    ValLoss,
    ValAccuracy,
}

/// The defaults of one task on one data set: a model, its tokenizer and its training.
#[derive(Clone, Debug, PartialEq)]
pub struct Recipe {
    /// `None` where the task or the rows fix the tokenizer (tagging: one token per tag; regression:
    /// dense input).
    pub tokenizer: Option<TokenizerChoice>,
    /// Whether the word tokenizer lower-cases (`Car` and `car` are one word to a sentiment).
    pub lowercase: bool,
    /// Fewest occurrences of a word in the training rows to get its own token (the rest read as
    /// `<unk>`, which the model then learns for words it has not seen).
    pub min_count: u64,
    pub cell: &'static str,
    pub hidden_size: u64,
    pub num_layers: u64,
    pub embed_dim: u64,
    pub bidirectional: bool,
    /// `last`, `mean` or `max`: how a many-to-one head pools the steps.
    pub pooling: &'static str,
    pub batch_size: u64,
    /// Tokens per training window (language models).
    pub seq_len: u64,
    /// Whether consecutive windows carry the state (truncated BPTT; language models): every
    /// character then trains with the context before it, as the stateful evaluation reads it.
    pub tbptt: bool,
    /// Most epochs of one run; early stopping usually ends it sooner.
    pub epochs: u64,
    pub learning_rate: f64,
    /// Whether the rate decays to 0 by a cosine over the run's steps (epochs × batches per
    /// epoch); else it stays constant.
    pub cosine: bool,
    pub clip_norm: f64,
    pub monitor: MonitorChoice,
    /// Validations without improvement before the run stops (with the best weights kept).
    pub patience: u64,
    /// Why each choice was made, in words, for the CLI to print.
    pub reasons: Vec<String>,
}

/// Token positions a default run may train on: about a minute on two cores at the speed of the
/// default models (a GRU-64 classifier reads ~40,000 tokens a second in training, forward and
/// backward, both directions).
const TOKEN_BUDGET: f64 = 2.5e6;
/// Batches of lanes a language model's text must fill before the state is carried across
/// windows: carried lanes need `batch × seq_len` tokens a step, while windows from the zero state
/// (padded) train on a text of any length.
const CARRIED_STATE_MIN_BATCHES: f64 = 4.0;
/// The same for a language model (a GRU of 192 reads ~55,000 characters a second).
const LANGUAGE_MODEL_TOKEN_BUDGET: f64 = 3.75e6;

/// Source and target tokens a default sequence-to-sequence run may train on: 16 epochs of the
/// numbers task (60,000 pairs, 0.9 M pieces an epoch), about 5 minutes on two cores. Measured
/// there (docs/CLI.md, "Sequence to sequence"): 8 epochs left Chinese numerals at 98.8 % exact
/// match on held-out numbers (zeros dropped: 六千零六万… read as 6061428), 16 epochs reach 99.9 %
/// in every direction.
const SEQ2SEQ_TOKEN_BUDGET: f64 = 15e6;

/// The defaults of a sequence-to-sequence model and its training on one pair set.
#[derive(Clone, Debug, PartialEq)]
pub struct Seq2SeqRecipe {
    /// [`TokenizerChoice::Char`] or [`TokenizerChoice::Pieces`], per side.
    pub source_tokenizer: TokenizerChoice,
    pub target_tokenizer: TokenizerChoice,
    pub cell: &'static str,
    pub hidden_size: u64,
    pub num_layers: u64,
    pub embed_dim: u64,
    /// A bidirectional encoder.
    pub bidirectional: bool,
    /// `additive`, `dot` or `general`.
    pub attention: &'static str,
    pub batch_size: u64,
    /// Epochs of one run; early stopping (on a validation split) may end it sooner.
    pub epochs: u64,
    pub learning_rate: f64,
    /// Whether the rate decays to 0 by a cosine over the run.
    pub cosine: bool,
    pub clip_norm: f64,
    pub monitor: MonitorChoice,
    pub patience: u64,
    /// Why each choice was made: tokenizers, model, length of training.
    pub reasons: Vec<String>,
}

/// The defaults of a sequence-to-sequence model on pairs whose sources look like `source` and
/// whose targets look like `target` (one profile per side: Chinese numerals in, digits out).
pub fn seq2seq_recipe(source: &DataProfile, target: &DataProfile) -> Seq2SeqRecipe {
    let mut reasons = Vec::new();
    let side = |p: &DataProfile, name: &str, reasons: &mut Vec<String>| {
        if p.closed_pieces() {
            reasons.push(format!(
                "{name}: word tokenizer with every digit and ideograph a token of its own, case kept: {} pieces of {:.1} characters, {} distinct, cover the texts (a model of characters would take {:.1}× the steps)",
                p.pieces,
                p.chars as f64 / p.pieces as f64,
                p.distinct_pieces,
                p.chars as f64 / p.pieces as f64
            ));
            (TokenizerChoice::Pieces, p.pieces)
        } else {
            reasons.push(format!(
                "{name}: character tokenizer: the texts are not a closed vocabulary of words and digits (pieces seen twice cover {:.0} % of them)",
                100.0 * p.repeated_piece_occurrences as f64 / p.pieces.max(1) as f64
            ));
            (TokenizerChoice::Char, p.chars)
        }
    };
    let (source_tokenizer, source_tokens) = side(source, "source", &mut reasons);
    let (target_tokenizer, target_tokens) = side(target, "target", &mut reasons);
    let tokens = (source_tokens + target_tokens).max(1) as f64;
    // The bands of the other sequence tasks: parameters well below the tokens of an epoch.
    let hidden_size = match tokens {
        t if t < 500_000.0 => 64,
        t if t < 5e6 => 128,
        _ => 256,
    };
    let epochs = ((SEQ2SEQ_TOKEN_BUDGET / tokens).floor() as u64).clamp(3, 30);
    // The numbers task at 3e-3 with a decay over the run: 1 epoch at a constant rate leaves
    // 47–97 % exact match per direction, 6 epochs decayed 98.5–99.8 %.
    let learning_rate = 3e-3;
    reasons.push(format!(
        "GRU {hidden_size}, bidirectional encoder, general attention, Adam at {learning_rate} decaying to 0 by a cosine over the run: sized for {} source and target tokens",
        tokens as u64
    ));
    reasons.push(format!(
        "{epochs} epochs, stopping once the validation loss has not improved for 3 validations and keeping the best weights"
    ));
    Seq2SeqRecipe {
        source_tokenizer,
        target_tokenizer,
        cell: "gru",
        hidden_size,
        num_layers: 1,
        embed_dim: 64,
        bidirectional: true,
        attention: "general",
        batch_size: 64,
        epochs,
        learning_rate,
        cosine: true,
        clip_norm: 1.0,
        monitor: MonitorChoice::ValLoss,
        patience: 3,
        reasons,
    }
}

/// Feature frames (10 ms each) a default speech run may train on: about 5 minutes on two cores
/// for the default bidirectional GRU 128 × 2 over frames stacked by 3. Measured on the spoken-digit
/// corpus (3,800 training utterances, 767,490 frames: 23 epochs, docs/CLI.md, "Speech"): word
/// error rates of 0.0–1.3 % on reserved voices.
const SPEECH_FRAME_BUDGET: f64 = 18e6;

/// The defaults of a speech recognizer and its training on one set of utterances.
#[derive(Clone, Debug, PartialEq)]
pub struct SpeechRecipe {
    pub cell: &'static str,
    pub hidden_size: u64,
    pub num_layers: u64,
    /// Both directions: a sound is often told by what follows it.
    pub bidirectional: bool,
    /// Consecutive frames joined into one recurrent step (stride the same): 10 ms frames carry
    /// far more steps than a transcript has characters, and a 3-fold shorter recurrence trains 3×
    /// faster with CTC alignments still feasible (30 ms a step, a digit lasts ≥ 150 ms).
    pub frame_stacking: u64,
    /// SpecAugment's default masks over the training features: measured on the spoken-digit
    /// corpus, they cut the word error rate on reserved voices from 2.06–4.49 % to 0.00–1.26 %.
    pub spec_augment: bool,
    pub epochs: u64,
    pub learning_rate: f64,
    /// Whether the rate decays to 0 by a cosine over the run.
    pub cosine: bool,
    /// CTC gradients of a young model are large at a few frames; a looser clip than the other
    /// tasks' 1 lets the model leave the all-blank start sooner.
    pub clip_norm: f64,
    pub monitor: MonitorChoice,
    pub patience: u64,
    /// Why each choice was made: model, length of training.
    pub reasons: Vec<String>,
}

/// The defaults of a speech recognizer on `utterances` training utterances of `frames` feature
/// frames in all.
pub fn speech_recipe(utterances: u64, frames: u64) -> SpeechRecipe {
    let f = frames.max(1) as f64;
    // Parameters well below the frames of an epoch (128 × 2 bidirectional is ~0.5 M).
    let (hidden_size, num_layers) = match f {
        f if f < 100_000.0 => (64, 2),
        f if f < 10e6 => (128, 2),
        _ => (256, 3),
    };
    let frame_stacking = 3;
    let epochs = ((SPEECH_FRAME_BUDGET / f).floor() as u64).clamp(3, 30);
    let learning_rate = 3e-3;
    let minutes = f / 6000.0;
    SpeechRecipe {
        cell: "gru",
        hidden_size,
        num_layers,
        bidirectional: true,
        frame_stacking,
        spec_augment: true,
        epochs,
        learning_rate,
        cosine: true,
        clip_norm: 5.0,
        monitor: MonitorChoice::ValLoss,
        patience: 3,
        reasons: vec![
            format!(
                "bidirectional GRU {hidden_size} × {num_layers} over {frame_stacking} frames a step, SpecAugment masks, Adam at {learning_rate} decaying to 0 by a cosine over the run, gradients clipped at 5: sized for {utterances} utterances, {frames} frames ({minutes:.1} minutes of audio)"
            ),
            format!(
                "{epochs} epochs, stopping once the validation loss has not improved for 3 validations and keeping the best weights"
            ),
        ],
    }
}

/// The defaults of `task` before any data is seen: what `create*` uses for a size not given.
/// They equal [`recipe`]'s choices for data of the bundled files' size.
pub fn task_recipe(task: Task) -> Recipe {
    let typical = match task {
        Task::LanguageModel => DataProfile { rows: 1, chars: 600_000, words: 110_000, ..DataProfile::default() },
        _ => DataProfile { rows: 2_000, chars: 200_000, words: 35_000, ..DataProfile::default() },
    };
    let mut r = recipe(task, &typical);
    r.tokenizer = None;
    r.reasons.clear();
    r
}

/// The defaults of `task` on data that looks like `p`.
pub fn recipe(task: Task, p: &DataProfile) -> Recipe {
    let mut reasons = Vec::new();
    let tokenizer = match task {
        Task::Classify if p.suits_words() => {
            reasons.push(format!(
                "word tokenizer (lower-cased, words seen at least twice): the texts are space-separated words ({:.1} characters a word) and words seen twice cover {:.0} % of them",
                p.chars_per_word(),
                100.0 * p.repeated_word_occurrences as f64 / p.words as f64
            ));
            Some(TokenizerChoice::Word)
        }
        Task::Classify => {
            reasons.push(if p.words == 0 || p.chars_per_word() > 12.0 {
                "character tokenizer: the texts are not space-separated words".to_string()
            } else {
                "character tokenizer: most words occur only once, so a word vocabulary would not cover new texts"
                    .to_string()
            });
            Some(TokenizerChoice::Char)
        }
        Task::LanguageModel => {
            reasons.push("character tokenizer: a model of characters can write any word".to_string());
            Some(TokenizerChoice::Char)
        }
        Task::Tag | Task::Regress | Task::Speech => None,
    };
    // Tokens a training epoch reads: words or characters (a word is ~6 characters of English).
    let tokens = match tokenizer {
        Some(TokenizerChoice::Word) => p.words.max(1) as f64,
        _ => p.chars.max(1) as f64,
    };
    let language_model = task == Task::LanguageModel;
    // Wider models for more data; the thresholds keep parameters well below the training tokens.
    let hidden_size = match (language_model, tokens) {
        (true, t) if t < 2e6 => 192,
        (true, t) if t < 20e6 => 256,
        (true, _) => 512,
        (false, t) if t < 500_000.0 => 64,
        (false, t) if t < 5e6 => 128,
        (false, _) => 256,
    };
    let num_layers = if tokens >= 5e6 { 2 } else { 1 };
    let budget = if language_model { LANGUAGE_MODEL_TOKEN_BUDGET } else { TOKEN_BUDGET };
    let (min_epochs, max_epochs) = if language_model { (1, 20) } else { (3, 30) };
    let epochs = ((budget / tokens).floor() as u64).clamp(min_epochs, max_epochs);
    // Measured on the bundled novel (validation bits per character after 6 epochs with a cosine
    // decay): per character read, a GRU learns faster than an LSTM and costs less (GRU 128 1.914,
    // LSTM 128 1.989 at 8e-3); carrying the state gains ~0.01 (GRU 128 1.905); the GRU takes a
    // higher rate (1.2e-2: 1.860), though not 2e-2 (GRU 192: 1.992 against 1.781 at 1.2e-2).
    // The sequence tasks stop early long before a decay would matter.
    let (learning_rate, cosine) = if language_model { (1.2e-2, true) } else { (2e-3, false) };
    reasons.push(format!(
        "GRU {hidden_size} × {num_layers}{}, Adam at {learning_rate}{}: sized for {} training tokens",
        match (language_model, tokens >= CARRIED_STATE_MIN_BATCHES * 32.0 * 100.0) {
            (true, true) => ", the state carried across windows",
            (true, false) => "",
            (false, _) => ", both directions",
        },
        if cosine { " decaying to 0 by a cosine over the run" } else { "" },
        tokens as u64
    ));
    let monitor = match task {
        Task::Classify | Task::Tag => MonitorChoice::ValAccuracy,
        _ => MonitorChoice::ValLoss,
    };
    reasons.push(format!(
        "up to {epochs} epochs, stopping once the validation {} has not improved for 3 validations and keeping the best weights",
        if monitor == MonitorChoice::ValAccuracy { "accuracy" } else { "loss" }
    ));
    let words = tokenizer == Some(TokenizerChoice::Word);
    Recipe {
        tokenizer,
        lowercase: words,
        min_count: if words { 2 } else { 1 },
        cell: "gru",
        hidden_size,
        num_layers,
        embed_dim: 64,
        // A label, a tag or a sound may depend on what follows: read both ways. A language model
        // cannot.
        bidirectional: matches!(task, Task::Classify | Task::Tag | Task::Speech),
        // Max pooling picks up the one strong word of a review wherever it is.
        pooling: if task == Task::Classify { "max" } else { "last" },
        batch_size: 32,
        seq_len: 100,
        tbptt: language_model && tokens >= CARRIED_STATE_MIN_BATCHES * 32.0 * 100.0,
        epochs,
        learning_rate,
        cosine,
        clip_norm: 1.0,
        monitor,
        patience: 3,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(texts: &[&str]) -> DataProfile {
        DataProfile::of_texts(texts.iter().copied())
    }

    #[test]
    fn profile_counts_characters_and_words() {
        let p = profile(&["The cat, the CAT!", "a dog"]);
        assert_eq!(p.rows, 2);
        assert_eq!(p.chars, 17 + 5);
        assert_eq!(p.words, 6);
        assert_eq!(p.distinct_words, 4); // the, cat, a, dog
        assert_eq!(p.repeated_word_occurrences, 4); // the ×2, cat ×2
        assert_eq!(p.distinct_chars, 14); // T h e ␠ c a t , C A ! d o g
    }

    #[test]
    fn english_reviews_get_words_and_chinese_gets_characters() {
        let english: Vec<String> =
            (0..200).map(|i| format!("the food was good and the service {} slow", i % 3)).collect();
        let r = recipe(Task::Classify, &DataProfile::of_texts(english.iter().map(String::as_str)));
        assert_eq!(r.tokenizer, Some(TokenizerChoice::Word));
        let chinese: Vec<&str> = vec!["学而时习之不亦说乎有朋自远方来不亦乐乎"; 200];
        let r = recipe(Task::Classify, &profile(&chinese));
        assert_eq!(r.tokenizer, Some(TokenizerChoice::Char));
    }

    #[test]
    fn one_off_words_get_characters() {
        let texts: Vec<String> = (0..300).map(|i| format!("id{i} code{i}x")).collect();
        let r = recipe(Task::Classify, &DataProfile::of_texts(texts.iter().map(String::as_str)));
        assert_eq!(r.tokenizer, Some(TokenizerChoice::Char));
    }

    #[test]
    fn more_data_gets_a_wider_model_and_fewer_epochs() {
        let small = DataProfile { rows: 2_000, chars: 200_000, words: 35_000, ..DataProfile::default() };
        let large = DataProfile { rows: 200_000, chars: 40_000_000, words: 7_000_000, ..DataProfile::default() };
        let (s, l) = (recipe(Task::Tag, &small), recipe(Task::Tag, &large));
        assert!(l.hidden_size > s.hidden_size && l.num_layers > s.num_layers);
        assert!(l.epochs < s.epochs);
        assert_eq!(recipe(Task::Regress, &large).epochs, 3, "at least three epochs");
    }

    #[test]
    fn number_pairs_get_pieces_and_open_text_gets_characters() {
        let words: Vec<String> =
            (0..400).map(|i| format!("thirty-{} thousand {}", ["one", "two"][i % 2], i % 7)).collect();
        let digits: Vec<String> = (0..400).map(|i| format!("{}", 30_000 + i * 37)).collect();
        let zh = vec!["一万一千七百八十七"; 400];
        let (w, d) = (
            DataProfile::of_texts(words.iter().map(String::as_str)),
            DataProfile::of_texts(digits.iter().map(String::as_str)),
        );
        assert_eq!(d.pieces, 5 * 400);
        assert_eq!(d.distinct_pieces, 10);
        assert_eq!(w.pieces, 3 * 400);
        let r = seq2seq_recipe(&w, &d);
        assert_eq!((r.source_tokenizer, r.target_tokenizer), (TokenizerChoice::Pieces, TokenizerChoice::Pieces));
        let z = profile(&zh);
        assert_eq!((z.pieces, z.distinct_pieces), (9 * 400, 7));
        assert_eq!(seq2seq_recipe(&z, &d).source_tokenizer, TokenizerChoice::Pieces);
        // Names that do not repeat: characters, which can spell a name never seen.
        let name = |i: u32| (0..3).map(|k| char::from(b'a' + ((i / 26u32.pow(k)) % 26) as u8)).collect::<String>();
        let names: Vec<String> = (0..400).map(|i| format!("{} is here", name(i))).collect();
        let r = seq2seq_recipe(&DataProfile::of_texts(names.iter().map(String::as_str)), &d);
        assert_eq!((r.source_tokenizer, r.target_tokenizer), (TokenizerChoice::Char, TokenizerChoice::Pieces));
        assert_eq!(r.reasons.len(), 4);
    }

    #[test]
    fn seq2seq_training_follows_the_tokens() {
        let numbers = DataProfile {
            rows: 60_000,
            pieces: 500_000,
            chars: 1_500_000,
            repeated_piece_occurrences: 500_000,
            ..DataProfile::default()
        };
        let targets =
            DataProfile { pieces: 400_000, chars: 1_400_000, repeated_piece_occurrences: 400_000, ..numbers.clone() };
        let r = seq2seq_recipe(&numbers, &targets);
        assert_eq!((r.hidden_size, r.epochs, r.batch_size, r.cosine), (128, 16, 64, true));
        let small =
            DataProfile { pieces: 20_000, chars: 60_000, repeated_piece_occurrences: 20_000, ..numbers.clone() };
        let s = seq2seq_recipe(&small, &small);
        assert_eq!((s.hidden_size, s.epochs), (64, 30));
    }

    #[test]
    fn speech_training_follows_the_frames() {
        // The spoken-digit corpus: 3,800 utterances, 767,490 frames.
        let r = speech_recipe(3_800, 767_490);
        assert_eq!((r.hidden_size, r.num_layers, r.frame_stacking, r.epochs), (128, 2, 3, 23));
        assert!(r.bidirectional && r.cosine && r.spec_augment);
        assert_eq!(speech_recipe(100, 30_000).hidden_size, 64);
        assert_eq!(speech_recipe(100, 30_000).epochs, 30, "at most 30 epochs");
        assert_eq!(speech_recipe(1_000_000, 50_000_000).epochs, 3, "at least 3 epochs");
        assert_eq!(speech_recipe(3_800, 767_490).reasons.len(), 2);
    }

    #[test]
    fn task_recipes_fit_the_task() {
        let lm = task_recipe(Task::LanguageModel);
        assert_eq!((lm.cell, lm.bidirectional, lm.tbptt, lm.monitor), ("gru", false, true, MonitorChoice::ValLoss));
        let c = task_recipe(Task::Classify);
        assert_eq!((c.cell, c.bidirectional, c.pooling, c.monitor), ("gru", true, "max", MonitorChoice::ValAccuracy));
        assert_eq!(task_recipe(Task::Regress).pooling, "last");
        assert!(task_recipe(Task::Tag).bidirectional);
    }
}
