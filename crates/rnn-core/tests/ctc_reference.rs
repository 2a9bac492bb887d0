//! The CTC loss and its gradient against `torch.nn.CTCLoss` (PyTorch 1.13, float64):
//! `fixtures/ctc/ctc_reference.json`, made by `scripts/fixtures/make_ctc_fixtures.py` (several
//! input and target lengths in a batch, repeated labels, an empty target, a non-zero blank, an
//! infeasible row; every reduction with `zero_infinity` false and true). `RNNKIT_CTC_FIXTURE=<file>`
//! checks another set made by the generator.

use rnn_core::ctc::{ctc_loss, CtcOptions, CtcTargets, Reduction};
use serde_json::Value;
use std::path::PathBuf;

const TOL: f64 = 1e-4;

fn fixture() -> Value {
    let path = std::env::var_os("RNNKIT_CTC_FIXTURE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/ctc/ctc_reference.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A fixture number: a JSON number, or "inf"/"-inf"/"nan" for the non-finite ones.
fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        v => v.as_f64().unwrap(),
    }
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a.is_infinite() && a == b) || (a - b).abs() <= TOL * b.abs().max(1.0)
}

#[test]
fn loss_and_gradient_match_pytorch() {
    let f = fixture();
    let mut checked = 0;
    for case in f["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let n = |k: &str| case[k].as_u64().unwrap() as usize;
        let (t, b, c) = (n("steps"), n("batch"), n("classes"));
        let logits: Vec<f32> = case["logits"].as_array().unwrap().iter().map(|v| num(v) as f32).collect();
        let labels: Vec<i32> = case["targets"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i32).collect();
        let (input_lengths, target_lengths) = (usizes(&case["input_lengths"]), usizes(&case["target_lengths"]));
        let targets = CtcTargets { labels: &labels, max_len: n("max_target"), lengths: &target_lengths };
        for run in case["runs"].as_array().unwrap() {
            let reduction = Reduction::parse(run["reduction"].as_str().unwrap()).unwrap();
            let zero_infinity = run["zero_infinity"].as_bool().unwrap();
            let what = format!("{name} {reduction:?} zero_infinity={zero_infinity}");
            let opts = CtcOptions { blank: n("blank"), reduction, zero_infinity };
            let mut grad = vec![0.0f32; t * b * c];
            let loss = ctc_loss(&logits, t, b, c, &input_lengths, targets, &opts, Some(&mut grad)).unwrap();
            let want: Vec<f64> = run["loss"].as_array().unwrap().iter().map(num).collect();
            let got = if reduction == Reduction::None { loss.rows.clone() } else { vec![loss.value] };
            assert_eq!(got.len(), want.len(), "{what}: loss count");
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                assert!(close(g, w), "{what}: loss[{i}] rnnkit {g}, torch {w}");
            }
            for (i, (&g, w)) in grad.iter().zip(run["grad"].as_array().unwrap()).enumerate() {
                let w = num(w);
                // PyTorch's gradient of an infeasible row without zero_infinity is NaN; ours is 0.
                let want = if w.is_nan() { 0.0 } else { w };
                assert!(close(g as f64, want), "{what}: grad[{i}] rnnkit {g}, torch {w}");
                checked += 1;
            }
        }
    }
    assert!(checked > 5000, "only {checked} gradient values checked");
}

/// The comparison discriminates: the same logits against a target with one label changed are
/// refused by the tolerance for every case (so a loss that ignored a label would fail above).
#[test]
fn a_changed_label_leaves_the_tolerance() {
    let f = fixture();
    for case in f["cases"].as_array().unwrap() {
        let n = |k: &str| case[k].as_u64().unwrap() as usize;
        let (t, b, c, blank) = (n("steps"), n("batch"), n("classes"), n("blank"));
        let logits: Vec<f32> = case["logits"].as_array().unwrap().iter().map(|v| num(v) as f32).collect();
        let mut labels: Vec<i32> =
            case["targets"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i32).collect();
        let (input_lengths, target_lengths) = (usizes(&case["input_lengths"]), usizes(&case["target_lengths"]));
        // Change the first label of the first row with a label, to another non-blank class.
        let Some(row) = target_lengths.iter().position(|&l| l > 0) else { continue };
        let at = row * n("max_target");
        let mut other = (labels[at] as usize + 1) % c;
        if other == blank {
            other = (other + 1) % c;
        }
        labels[at] = other as i32;
        let targets = CtcTargets { labels: &labels, max_len: n("max_target"), lengths: &target_lengths };
        let opts = CtcOptions { blank, reduction: Reduction::None, zero_infinity: true };
        let got = ctc_loss(&logits, t, b, c, &input_lengths, targets, &opts, None).unwrap();
        let run = &case["runs"][1]; // none, zero_infinity true
        assert!(!close(got.rows[row], num(&run["loss"][row])), "{}: a changed label kept the loss", case["name"]);
    }
}
