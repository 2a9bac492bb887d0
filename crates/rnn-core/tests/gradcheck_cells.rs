//! Finite-difference checks of the hand-derived backward of `RecurrentStack`, for what the
//! PyTorch fixtures do not cover: variable lengths (masking), bidirectional with lengths,
//! dropout with a fixed mask, zero-length rows. Every parameter, every input value and the
//! initial state are perturbed.
//!
//! The engine is f32, so the loss `L = Σ y·Ry + Σ h_n·Rh (+ Σ c_n·Rc)` is summed in f64 and the
//! central difference uses a step of 5e-3: truncation error O(eps²) and f32 rounding of L
//! (~1e-7 relative, divided by 2·eps) both stay near 1e-4, well under the tolerance below, while
//! a wrong formula gives errors of the size of the gradient itself.

use ndarray::Dimension;
use rnn_core::config::{CellKind, InputKind, ModelConfig, Pooling, Task};
use rnn_core::layer::recurrent::{RecurrentStack, SeqBatch, StackCache, StackState};
use rnn_core::params::Params;
use rnn_core::rng::Rng;
use std::sync::Arc;

const EPS: f32 = 5e-3;
/// ReLU is piecewise linear: differences are exact except across the kink, so a smaller step
/// crosses fewer kinks (f32 rounding then costs ~2e-4, still under the tolerance).
const RELU_EPS: f32 = 1e-3;
/// A ReLU perturbation whose one-sided differences disagree by more than this crossed a kink
/// (the loss is not differentiable there at this scale): that value is skipped. One unit near
/// its kink in layer 0 affects every gradient upstream of it, so up to a quarter may be skipped;
/// more fails the test (too little would be checked).
const KINK_GAP: f64 = 1e-2;
/// Pass when `|numeric − analytic| ≤ ABS_TOL + REL_TOL · |analytic|`.
const ABS_TOL: f64 = 1e-3;
const REL_TOL: f64 = 1e-2;

struct Case {
    cell: CellKind,
    layers: usize,
    bidirectional: bool,
    dropout: f32,
    steps: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    lengths: Option<Vec<usize>>,
    seed: u64,
}

/// Everything one loss evaluation needs; `x`, `state` and `params` are the perturbed values.
struct Problem {
    stack: RecurrentStack,
    params: Params,
    x: Vec<f32>,
    state: StackState,
    /// Loss weights on y `[T, B, D·H]` and on the final state.
    ry: Vec<f32>,
    rstate: StackState,
    lengths: Option<Vec<usize>>,
    steps: usize,
    batch: usize,
    /// Seed of the dropout mask: every evaluation redraws the same mask.
    dropout_seed: Option<u64>,
}

impl Problem {
    fn new(case: &Case) -> Problem {
        let cfg = ModelConfig {
            task: Task::Tag,
            cell: case.cell,
            input: InputKind::Dense { input_size: case.input },
            hidden_size: case.hidden,
            num_layers: case.layers,
            bidirectional: case.bidirectional,
            skip: false,
            dropout: case.dropout,
            output_size: 1,
            pooling: Pooling::Last,
            per_step: false,
            speech: None,
        };
        cfg.validate().expect("test config");
        let stack = RecurrentStack::new(&cfg);
        let mut rng = Rng::new(case.seed);
        let mut params = Params::zeros(Arc::new(cfg.layout()));
        params.data.iter_mut().for_each(|v| *v = rng.uniform_range(-0.6, 0.6));
        let mut normal = |n: usize, scale: f32| (0..n).map(|_| scale * rng.normal()).collect::<Vec<f32>>();
        let x = normal(case.steps * case.batch * case.input, 1.0);
        let n_state = case.layers * cfg.directions() * case.batch * case.hidden;
        let has_c = case.cell.has_cell_state();
        let state = StackState { h: normal(n_state, 0.5), c: has_c.then(|| normal(n_state, 0.5)) };
        let ry = normal(case.steps * case.batch * stack.output_size(), 1.0);
        let rstate = StackState { h: normal(n_state, 1.0), c: has_c.then(|| normal(n_state, 1.0)) };
        Problem {
            stack,
            params,
            x,
            state,
            ry,
            rstate,
            lengths: case.lengths.clone(),
            steps: case.steps,
            batch: case.batch,
            dropout_seed: (case.dropout > 0.0).then_some(case.seed ^ 0xD0),
        }
    }

    fn forward(&self, cache: &mut StackCache) -> (Vec<f32>, StackState) {
        let mut rng = self.dropout_seed.map(Rng::new);
        self.stack
            .forward(
                &self.params,
                SeqBatch { x: &self.x, steps: self.steps, batch: self.batch, lengths: self.lengths.as_deref() },
                Some(&self.state),
                rng.as_mut(),
                cache,
            )
            .expect("forward")
    }

    fn loss(&self) -> f64 {
        let (y, fin) = self.forward(&mut StackCache::default());
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| *p as f64 * *q as f64).sum::<f64>();
        let mut l = dot(&y, &self.ry) + dot(&fin.h, &self.rstate.h);
        if let (Some(c), Some(rc)) = (&fin.c, &self.rstate.c) {
            l += dot(c, rc);
        }
        l
    }
}

/// Which buffer a perturbation touches.
#[derive(Clone, Copy, Debug)]
enum Target {
    Param,
    Input,
    InitialH,
    InitialC,
}

fn slot(pb: &mut Problem, target: Target) -> &mut Vec<f32> {
    match target {
        Target::Param => &mut pb.params.data,
        Target::Input => &mut pb.x,
        Target::InitialH => &mut pb.state.h,
        Target::InitialC => pb.state.c.as_mut().expect("LSTM state"),
    }
}

/// Compares the analytic gradient with central differences for every value of every target;
/// returns how many values were checked.
fn gradcheck(case: Case) -> usize {
    let mut pb = Problem::new(&case);
    let mut cache = StackCache::default();
    pb.forward(&mut cache);
    let mut grads = Params::zeros(pb.params.layout.clone());
    let (dx, d_initial) =
        pb.stack.backward(&pb.params, &mut cache, &pb.ry, Some(&pb.rstate), &mut grads).expect("backward");

    let mut targets = vec![(Target::Param, grads.data), (Target::Input, dx), (Target::InitialH, d_initial.h)];
    if let Some(dc0) = d_initial.c {
        targets.push((Target::InitialC, dc0));
    }
    let relu = case.cell == CellKind::RnnRelu;
    let eps = if relu { RELU_EPS } else { EPS };
    let centre = pb.loss();
    let mut failures = Vec::new();
    let (mut checked, mut kinks) = (0, 0);
    for (target, analytic) in targets {
        for (i, &ana) in analytic.iter().enumerate() {
            let original = slot(&mut pb, target)[i];
            slot(&mut pb, target)[i] = original + eps;
            let up = pb.loss();
            slot(&mut pb, target)[i] = original - eps;
            let down = pb.loss();
            slot(&mut pb, target)[i] = original;
            let numeric = (up - down) / (2.0 * eps as f64);
            if relu && ((up - centre) - (centre - down)).abs() / eps as f64 > KINK_GAP {
                kinks += 1;
                continue;
            }
            let ana = ana as f64;
            if (numeric - ana).abs() > ABS_TOL + REL_TOL * ana.abs() {
                let name = match target {
                    Target::Param => pb
                        .params
                        .layout
                        .specs()
                        .iter()
                        .find(|s| (s.offset..s.offset + s.len).contains(&i))
                        // Named by the tensor's own index ([row, col] of [G·H, in]: row / H is
                        // the gate), as PyTorch would print it.
                        .and_then(|s| {
                            pb.params
                                .array(&s.name)
                                .indexed_iter()
                                .nth(i - s.offset)
                                .map(|(at, _)| format!("{}{:?}", s.name, at.slice()))
                        })
                        .unwrap_or_default(),
                    other => format!("{other:?}[{i}]"),
                };
                failures.push(format!("{name}: analytic {ana:.6}, numeric {numeric:.6}"));
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{:?}: {} of {checked} gradients differ:\n{}",
        case.cell,
        failures.len(),
        failures.join("\n")
    );
    assert!(kinks * 3 <= checked, "{:?}: {kinks} perturbations crossed a ReLU kink, {checked} checked", case.cell);
    checked
}

const CELLS: [CellKind; 4] = [CellKind::RnnTanh, CellKind::RnnRelu, CellKind::Lstm, CellKind::Gru];

#[test]
fn every_cell_two_layers_with_variable_lengths() {
    for cell in CELLS {
        let checked = gradcheck(Case {
            cell,
            layers: 2,
            bidirectional: false,
            dropout: 0.0,
            steps: 5,
            batch: 3,
            input: 3,
            hidden: 4,
            lengths: Some(vec![5, 2, 4]),
            seed: 11,
        });
        assert!(checked > 100);
    }
}

#[test]
fn every_cell_bidirectional_with_variable_lengths() {
    for cell in CELLS {
        gradcheck(Case {
            cell,
            layers: 2,
            bidirectional: true,
            dropout: 0.0,
            steps: 4,
            batch: 3,
            input: 2,
            hidden: 3,
            lengths: Some(vec![2, 4, 1]),
            seed: 23,
        });
    }
}

#[test]
fn dropout_between_layers_with_a_fixed_mask() {
    for cell in CELLS {
        gradcheck(Case {
            cell,
            layers: 3,
            bidirectional: true,
            dropout: 0.4,
            steps: 3,
            batch: 2,
            input: 3,
            hidden: 3,
            lengths: Some(vec![3, 2]),
            seed: 37,
        });
    }
}

#[test]
fn zero_length_rows_pass_the_state_gradient_through() {
    for cell in CELLS {
        gradcheck(Case {
            cell,
            layers: 1,
            bidirectional: true,
            dropout: 0.0,
            steps: 3,
            batch: 3,
            input: 2,
            hidden: 3,
            lengths: Some(vec![0, 3, 1]),
            seed: 41,
        });
    }
}

#[test]
fn full_length_single_layer_through_the_initial_state() {
    for cell in CELLS {
        gradcheck(Case {
            cell,
            layers: 1,
            bidirectional: false,
            dropout: 0.0,
            steps: 6,
            batch: 2,
            input: 3,
            hidden: 5,
            lengths: None,
            seed: 53,
        });
    }
}

/// The check itself must be able to fail: a gradient buffer with one wrong value is caught.
#[test]
fn a_wrong_gradient_is_detected() {
    let case = Case {
        cell: CellKind::Lstm,
        layers: 1,
        bidirectional: false,
        dropout: 0.0,
        steps: 3,
        batch: 2,
        input: 2,
        hidden: 2,
        lengths: None,
        seed: 5,
    };
    let mut pb = Problem::new(&case);
    let mut cache = StackCache::default();
    pb.forward(&mut cache);
    let mut grads = Params::zeros(pb.params.layout.clone());
    pb.stack.backward(&pb.params, &mut cache, &pb.ry, Some(&pb.rstate), &mut grads).expect("backward");
    let i = pb.params.layout.require("rnn.weight_hh_l0").unwrap().offset;
    let original = pb.params.data[i];
    pb.params.data[i] = original + EPS;
    let up = pb.loss();
    pb.params.data[i] = original - EPS;
    let down = pb.loss();
    let numeric = (up - down) / (2.0 * EPS as f64);
    let ana = grads.data[i] as f64;
    assert!((numeric - ana).abs() <= ABS_TOL + REL_TOL * ana.abs());
    let wrong = ana * 1.1 + 0.01;
    assert!((numeric - wrong).abs() > ABS_TOL + REL_TOL * wrong.abs(), "a 10% error must not pass");
}
