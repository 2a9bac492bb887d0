//! Train/validation splits of a data set, seeded, so that a seed gives the same split on every
//! machine and in every binding.
//!
//! - Rows ([`split_rows`]): a seeded shuffle, and the first `round(fraction · n)` rows go to
//!   validation; stratified, the same within each class (classes in ascending order), so each
//!   class keeps its share. Both parts come back in ascending row order.
//! - Token streams ([`split_tail`]): the last `floor(fraction · n)` tokens are the validation text,
//!   so the model is validated on text it has not read, and no window straddles the two.

use crate::error::{Error, Result};
use crate::rng::Rng;

/// Row indices of the two parts of a split, each ascending.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowSplit {
    pub train: Vec<usize>,
    pub validation: Vec<usize>,
}

/// Checks a validation fraction in [0, 1).
pub fn check_fraction(name: &str, fraction: f64) -> Result<f64> {
    if !(fraction.is_finite() && (0.0..1.0).contains(&fraction)) {
        return Err(Error::Range(format!("{name}: expected a finite number in [0, 1), got {fraction}")));
    }
    Ok(fraction)
}

/// Splits `n` rows; `strata[i]` (when given) is the class of row `i`.
pub fn split_rows(n: usize, fraction: f64, seed: u64, strata: Option<&[i32]>) -> Result<RowSplit> {
    check_fraction("validation", fraction)?;
    if let Some(s) = strata {
        crate::error::check_len("strata", s.len(), n)?;
    }
    let mut groups: std::collections::BTreeMap<i32, Vec<usize>> = std::collections::BTreeMap::new();
    for i in 0..n {
        groups.entry(strata.map_or(0, |s| s[i])).or_default().push(i);
    }
    // Its own stream, distinct from the epoch shuffles of the same seed.
    let mut rng = Rng::new(seed ^ 0xA511_E9B3_5EED_5EED);
    let mut in_validation = vec![false; n];
    for rows in groups.values_mut() {
        rng.shuffle(rows);
        let k = (fraction * rows.len() as f64).round() as usize;
        for &r in &rows[..k] {
            in_validation[r] = true;
        }
    }
    let (validation, train): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| in_validation[i]);
    Ok(RowSplit { train, validation })
}

/// The number of tokens of a stream of `n` that go to validation: the tail `floor(fraction · n)`.
pub fn split_tail(n: usize, fraction: f64) -> Result<usize> {
    check_fraction("validation", fraction)?;
    Ok((n as f64 * fraction).floor() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_split_by_fraction_reproducibly() {
        let a = split_rows(100, 0.2, 7, None).unwrap();
        assert_eq!(a.validation.len(), 20);
        assert_eq!(a.train.len(), 80);
        assert_eq!(a, split_rows(100, 0.2, 7, None).unwrap());
        assert_ne!(a, split_rows(100, 0.2, 8, None).unwrap());
        assert!(a.train.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn stratified_splits_keep_each_class_share() {
        let strata: Vec<i32> = (0..90).map(|i| if i < 60 { 0 } else { 1 }).collect();
        let s = split_rows(90, 0.1, 3, Some(&strata)).unwrap();
        let ones = s.validation.iter().filter(|&&r| strata[r] == 1).count();
        assert_eq!((s.validation.len(), ones), (9, 3));
    }

    #[test]
    fn bad_fractions_are_refused_by_name() {
        assert!(split_rows(10, 1.0, 0, None).unwrap_err().to_string().starts_with("validation:"));
        assert!(split_tail(10, -0.1).is_err());
        assert_eq!(split_tail(10, 0.25).unwrap(), 2);
    }
}
