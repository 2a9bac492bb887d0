//! Evaluation metrics beyond the loss: the confusion matrix of class predictions (accuracy,
//! per-class precision/recall/F1, macro F1), the errors of real-valued predictions (MSE, MAE) and
//! the error rates of transcripts (word and character error rates: Levenshtein distance over
//! words or characters, summed over a corpus, over the reference's length).
//! Accumulated batch by batch in `model::evaluate`, so one pass gives loss and metrics.

/// Counts of (true class, predicted class) over counted positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confusion {
    classes: usize,
    /// `[classes, classes]` row-major: `counts[truth · classes + predicted]`.
    counts: Vec<u64>,
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Counted positions whose true class is this one.
    pub support: u64,
}

impl Confusion {
    /// An empty matrix over `classes` classes.
    pub fn new(classes: usize) -> Self {
        Confusion { classes, counts: vec![0; classes * classes] }
    }

    /// Counts one position; `logits` `[classes]` are the model's outputs there, `truth` the
    /// target class. The prediction is the first maximum (as `argmax` everywhere).
    pub fn add(&mut self, logits: &[f32], truth: usize) {
        let predicted = argmax(logits);
        self.counts[truth * self.classes + predicted] += 1;
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The counts, `[truth, predicted]` row-major.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Counted positions.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Fraction of positions predicted right (NaN when nothing was counted).
    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..self.classes).map(|c| self.counts[c * self.classes + c]).sum();
        correct as f64 / self.total() as f64
    }

    /// Scores of each class. 0/0 is reported as 0 (scikit-learn's `zero_division=0`): no
    /// evidence is no credit.
    pub fn per_class(&self) -> Vec<ClassScores> {
        let k = self.classes;
        (0..k)
            .map(|c| {
                let tp = self.counts[c * k + c] as f64;
                let support: u64 = self.counts[c * k..(c + 1) * k].iter().sum();
                let predicted: u64 = (0..k).map(|t| self.counts[t * k + c]).sum();
                let precision = if predicted == 0 { 0.0 } else { tp / predicted as f64 };
                let recall = if support == 0 { 0.0 } else { tp / support as f64 };
                let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
                ClassScores { precision, recall, f1, support }
            })
            .collect()
    }

    /// Unweighted mean of the per-class F1.
    pub fn macro_f1(&self) -> f64 {
        let scores = self.per_class();
        scores.iter().map(|s| s.f1).sum::<f64>() / scores.len() as f64
    }

    /// Adds another matrix of the same size.
    pub fn merge(&mut self, other: &Confusion) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }
}

/// Index of the first maximum of `v` (0 for an empty slice).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (j, &x) in v.iter().enumerate().skip(1) {
        if x > v[best] {
            best = j;
        }
    }
    best
}

/// `softmax(logits)` into `out` (max-shifted, accumulated in f64, so huge logits do not overflow).
pub fn softmax_into(logits: &[f32], out: &mut [f32]) {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f64;
    for (o, &x) in out.iter_mut().zip(logits) {
        let e = ((x - m) as f64).exp();
        *o = e as f32;
        sum += e;
    }
    for o in out.iter_mut() {
        *o = (*o as f64 / sum) as f32;
    }
}

/// Squared and absolute errors of real-valued predictions.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RegressionErrors {
    pub squared: f64,
    pub absolute: f64,
    /// Predicted values counted.
    pub count: u64,
}

impl RegressionErrors {
    /// Adds one predicted value against its target.
    pub fn add(&mut self, predicted: f32, target: f32) {
        let d = (predicted - target) as f64;
        self.squared += d * d;
        self.absolute += d.abs();
        self.count += 1;
    }

    /// Mean squared error.
    pub fn mse(&self) -> f64 {
        self.squared / self.count as f64
    }

    /// Mean absolute error.
    pub fn mae(&self) -> f64 {
        self.absolute / self.count as f64
    }
}

/// The Levenshtein distance between two sequences: the fewest substitutions, insertions and
/// deletions that turn `reference` into `hypothesis` (one row of the table kept, O(|h|) memory).
pub fn edit_distance<T: PartialEq>(reference: &[T], hypothesis: &[T]) -> usize {
    let mut row: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, h) in hypothesis.iter().enumerate() {
            let substitute = diagonal + usize::from(r != h);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[hypothesis.len()]
}

/// Word and character errors of transcripts against their references, summed over a corpus:
/// `wer = word edits / reference words`, `cer = character edits / reference characters`
/// (the corpus-level rates speech toolkits report, not a mean of per-utterance rates). Words are
/// split at whitespace; characters are Unicode scalar values, spaces between words included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TranscriptErrors {
    pub word_edits: u64,
    pub words: u64,
    pub char_edits: u64,
    pub chars: u64,
    /// Transcripts counted.
    pub utterances: u64,
    /// Transcripts equal to their reference.
    pub exact: u64,
}

impl TranscriptErrors {
    /// Counts one transcript.
    pub fn add(&mut self, reference: &str, hypothesis: &str) {
        let (rw, hw): (Vec<&str>, Vec<&str>) =
            (reference.split_whitespace().collect(), hypothesis.split_whitespace().collect());
        let (rc, hc): (Vec<char>, Vec<char>) = (reference.chars().collect(), hypothesis.chars().collect());
        self.word_edits += edit_distance(&rw, &hw) as u64;
        self.words += rw.len() as u64;
        self.char_edits += edit_distance(&rc, &hc) as u64;
        self.chars += rc.len() as u64;
        self.utterances += 1;
        self.exact += u64::from(reference == hypothesis);
    }

    /// Word error rate (NaN when the references hold no word).
    pub fn wer(&self) -> f64 {
        self.word_edits as f64 / self.words as f64
    }

    /// Character error rate (NaN when the references hold no character).
    pub fn cer(&self) -> f64 {
        self.char_edits as f64 / self.chars as f64
    }

    /// Adds another corpus's counts.
    pub fn merge(&mut self, other: &TranscriptErrors) {
        self.word_edits += other.word_edits;
        self.words += other.words;
        self.char_edits += other.char_edits;
        self.chars += other.chars;
        self.utterances += other.utterances;
        self.exact += other.exact;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_substitutions_insertions_and_deletions() {
        let d = |a: &str, b: &str| edit_distance(&a.chars().collect::<Vec<_>>(), &b.chars().collect::<Vec<_>>());
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("", "abc"), 3);
        assert_eq!(d("abc", ""), 3);
        assert_eq!(d("flaw", "lawn"), 2);
        assert_eq!(d("same", "same"), 0);
    }

    #[test]
    fn error_rates_sum_edits_over_the_corpus() {
        let mut e = TranscriptErrors::default();
        e.add("3 7 1", "3 1"); // a word deleted: 1/3 words, 2/5 chars
        e.add("4 2", "4 2"); // exact
        e.add("9", "9 9"); // a word inserted: 1/1, 2/1
        assert_eq!((e.word_edits, e.words, e.char_edits, e.chars), (2, 6, 4, 9));
        assert_eq!((e.utterances, e.exact), (3, 1));
        assert!((e.wer() - 2.0 / 6.0).abs() < 1e-12 && (e.cer() - 4.0 / 9.0).abs() < 1e-12);
    }

    #[test]
    fn confusion_scores_match_hand_counts() {
        // truth 0 predicted 0 twice, truth 0 predicted 1 once, truth 1 predicted 1 once.
        let mut c = Confusion::new(2);
        c.add(&[2.0, 1.0], 0);
        c.add(&[3.0, -1.0], 0);
        c.add(&[0.0, 1.0], 0);
        c.add(&[0.0, 5.0], 1);
        assert_eq!(c.counts(), &[2, 1, 0, 1]);
        assert_eq!(c.accuracy(), 0.75);
        let s = c.per_class();
        assert_eq!((s[0].precision, s[0].recall, s[0].support), (1.0, 2.0 / 3.0, 3));
        assert_eq!((s[1].precision, s[1].recall), (0.5, 1.0));
        assert!((c.macro_f1() - (0.8 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn ties_go_to_the_first_class_and_absent_classes_score_zero() {
        let mut c = Confusion::new(3);
        c.add(&[1.0, 1.0, 0.0], 1);
        assert_eq!(c.counts()[3], 1, "a tie predicts class 0");
        assert_eq!(c.per_class()[2].f1, 0.0);
    }

    #[test]
    fn softmax_is_stable_and_sums_to_one() {
        let mut p = [0.0; 3];
        softmax_into(&[1000.0, 1000.0, -1000.0], &mut p);
        assert!((p[0] - 0.5).abs() < 1e-6 && p[2] == 0.0);
    }

    #[test]
    fn regression_errors_average_over_values() {
        let mut e = RegressionErrors::default();
        e.add(1.0, 0.0);
        e.add(-1.0, 1.0);
        assert_eq!((e.mse(), e.mae()), (2.5, 1.5));
    }
}
