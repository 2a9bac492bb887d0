//! The output symbols of a speech model: characters, one class each after the CTC blank (class 0),
//! so class `k ≥ 1` is `symbols[k - 1]`. The space, when present, separates words (word error
//! rate, lexicon constraints). Texts become label sequences here and back, so a transcript's
//! characters are checked once, with the offending character named.

use crate::error::{Error, Result};

/// The CTC blank's class index in every speech model.
pub const BLANK: usize = 0;

/// The most symbols an alphabet may hold.
pub const MAX_SYMBOLS: usize = 4096;

/// Characters of a speech model's output, in class order after the blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alphabet {
    symbols: Vec<char>,
}

impl Alphabet {
    /// An alphabet of distinct characters (the space included if words are to be told apart).
    pub fn new(symbols: Vec<char>) -> Result<Self> {
        if symbols.is_empty() || symbols.len() > MAX_SYMBOLS {
            return Err(Error::Range(format!(
                "alphabet: expected 1..={MAX_SYMBOLS} characters, got {}",
                symbols.len()
            )));
        }
        for (i, c) in symbols.iter().enumerate() {
            if c.is_control() {
                return Err(Error::Range(format!("alphabet[{i}]: a control character ({:?}) cannot be a symbol", c)));
            }
            if let Some(j) = symbols[..i].iter().position(|d| d == c) {
                return Err(Error::Range(format!("alphabet[{i}]: {c:?} repeats alphabet[{j}]")));
            }
        }
        Ok(Alphabet { symbols })
    }

    /// The alphabet of a string's characters, in order (`"0123456789 "`).
    pub fn from_chars(s: &str) -> Result<Self> {
        Self::new(s.chars().collect())
    }

    /// The alphabet of a corpus: every character its transcripts use, in code-point order (so the
    /// same transcripts always give the same classes). A control character is an error naming the
    /// transcript (`transcripts[i]`), as is a corpus without characters.
    pub fn of_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, text) in texts.into_iter().enumerate() {
            for (j, c) in text.chars().enumerate() {
                if c.is_control() {
                    return Err(Error::Range(format!(
                        "transcripts[{i}]: character {j} is a control character ({c:?}), which cannot be a symbol"
                    )));
                }
                seen.insert(c);
            }
        }
        if seen.is_empty() {
            return Err(Error::Range("transcripts: no characters to make an alphabet of".into()));
        }
        Self::new(seen.into_iter().collect())
    }

    /// The symbols, in class order after the blank.
    pub fn symbols(&self) -> &[char] {
        &self.symbols
    }

    /// Classes of the model's head: the symbols and the blank.
    pub fn classes(&self) -> usize {
        self.symbols.len() + 1
    }

    /// The space's class, the word separator, if the alphabet has one.
    pub fn separator(&self) -> Option<usize> {
        self.symbols.iter().position(|&c| c == ' ').map(|i| i + 1)
    }

    /// The labels of `text` (`name` names it in errors, e.g. `transcripts[3]`): every character
    /// must be a symbol.
    pub fn encode(&self, text: &str, name: &str) -> Result<Vec<usize>> {
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                self.symbols.iter().position(|&s| s == c).map(|k| k + 1).ok_or_else(|| {
                    Error::Range(format!(
                        "{name}: character {i} ({c:?}) is not in the model's alphabet {:?}",
                        self.symbols.iter().collect::<String>()
                    ))
                })
            })
            .collect()
    }

    /// The text of `labels` (blanks and out-of-range labels skipped: decoders never emit them).
    pub fn decode(&self, labels: &[usize]) -> String {
        labels.iter().filter_map(|&k| k.checked_sub(1).and_then(|i| self.symbols.get(i))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip_and_unknown_characters_are_named() {
        let a = Alphabet::from_chars("0123456789 ").unwrap();
        assert_eq!(a.classes(), 12);
        assert_eq!(a.separator(), Some(11));
        let labels = a.encode("3 7 1", "text").unwrap();
        assert_eq!(labels, vec![4, 11, 8, 11, 2]);
        assert_eq!(a.decode(&labels), "3 7 1");
        let e = a.encode("3 x", "transcripts[2]").unwrap_err().to_string();
        assert!(e.starts_with("transcripts[2]: character 2 ('x')"), "{e}");
        assert!(Alphabet::from_chars("aba").unwrap_err().to_string().starts_with("alphabet[2]"));
        assert!(Alphabet::from_chars("").is_err());
        assert!(Alphabet::from_chars("a\n").is_err());
    }

    #[test]
    fn a_corpus_alphabet_is_its_characters_in_code_point_order() {
        let a = Alphabet::of_texts(["3 7 1", "9 0", "5"]).unwrap();
        assert_eq!(a.symbols().iter().collect::<String>(), " 013579");
        let e = Alphabet::of_texts(["1 2", "3\t4"]).unwrap_err().to_string();
        assert!(e.starts_with("transcripts[1]: character 1 is a control character"), "{e}");
        assert!(Alphabet::of_texts(["", ""]).unwrap_err().to_string().starts_with("transcripts: no characters"));
    }
}
