//! The training loop end to end: determinism, checkpoint resume (bit-identical, through a file),
//! learning, cancellation, stop reasons, non-finite losses, validation events.

use rnn_core::batch::TokenStream;
use rnn_core::checkpoint::{load_checkpoint, save_checkpoint};
use rnn_core::config::ModelConfig;
use rnn_core::error::Error;
use rnn_core::init::{init_params, InitConfig};
use rnn_core::model::evaluate::evaluate_stream;
use rnn_core::model::network::Network;
use rnn_core::rng::Rng;
use rnn_core::token_store::TokenStore;
use rnn_core::train::{stream_mode, History, StopReason, TrainData, TrainEvent, TrainOptions, Trainer, ValidData};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

const V: usize = 5;

fn lm(cell: &str, layers: usize, dropout: f32, seed: u64) -> Network {
    let cfg = ModelConfig::from_json(&json!({"cell": cell, "vocab_size": V, "embed_dim": 6,
        "hidden_size": 12, "num_layers": layers, "dropout": dropout}))
    .unwrap();
    let params = init_params(&cfg, &InitConfig::default(), &mut Rng::new(seed)).unwrap();
    Network::from_params(cfg, params).unwrap()
}

/// "abcabc…" as ids 0, 1, 2 with `noise` of the positions replaced by a uniform id in 0..V.
fn cyclic(n: usize, noise: f32, seed: u64) -> Vec<i32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|i| if rng.uniform() < noise { rng.below(V) as i32 } else { (i % 3) as i32 }).collect()
}

fn options(extra: Value) -> TrainOptions {
    let mut o = json!({"batch_size": 4, "seq_len": 8, "optimizer": {"type": "adam", "lr": 0.01}, "log_every": 1});
    for (k, v) in extra.as_object().unwrap() {
        o[k] = v.clone();
    }
    TrainOptions::from_json(&o).unwrap()
}

fn data(tokens: &[i32], opts: &TrainOptions) -> TrainData {
    TrainData::Stream(TokenStream::new(tokens.to_vec(), V, opts.batch_size, opts.seq_len, stream_mode(opts)).unwrap())
}

fn bits(net: &Network) -> Vec<u32> {
    net.params().data.iter().map(|v| v.to_bits()).collect()
}

fn no_checkpoint(_: &Network, _: &Trainer) -> rnn_core::Result<String> {
    panic!("no checkpoint was requested")
}

/// `fit` with no validation, the given events sink and cancel flag.
fn fit_with(
    net: &mut Network,
    trainer: &mut Trainer,
    data: &TrainData,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(TrainEvent),
) -> rnn_core::Result<History> {
    trainer.fit(net, data, None, cancel, on_event, &mut no_checkpoint)
}

/// A fresh network trained with `opts` on `tokens`.
fn train(net: &Network, opts: &TrainOptions, tokens: &[i32]) -> (Network, Trainer, History) {
    let mut net = net.clone();
    let mut trainer = Trainer::new(&net, opts.clone()).unwrap();
    let h = fit_with(&mut net, &mut trainer, &data(tokens, opts), &AtomicBool::new(false), &mut |_| {}).unwrap();
    (net, trainer, h)
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rnnkit-training-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn same_seed_is_bit_identical_and_another_seed_differs() {
    let net = lm("lstm", 2, 0.2, 1);
    let tokens = cyclic(300, 0.1, 2);
    let opts = options(json!({"max_steps": 15, "seed": 7}));
    let (a, _, ha) = train(&net, &opts, &tokens);
    let (b, _, hb) = train(&net, &opts, &tokens);
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(ha.loss, hb.loss);
    assert_ne!(bits(&a), bits(&net), "training changed the weights");
    let (c, _, _) = train(&net, &TrainOptions { seed: 8, ..opts }, &tokens);
    assert_ne!(bits(&a), bits(&c), "the seed orders batches and draws dropout masks");
}

/// Runs `n` steps straight, and `k` steps + checkpoint file + load + resume + `n − k` steps;
/// both must end bit-identical (weights, optimizer state, position).
fn resume_case(extra: Value, n: u64, k: u64) {
    let net = lm("lstm", 2, 0.25, 3);
    let tokens = cyclic(400, 0.1, 4);
    let mut extra = extra;
    extra["max_steps"] = json!(n);
    extra["seed"] = json!(11);
    let full_opts = options(extra);
    let (full, full_trainer, _) = train(&net, &full_opts, &tokens);

    let first_opts = TrainOptions { max_steps: Some(k), ..full_opts.clone() };
    let (part, part_trainer, _) = train(&net, &first_opts, &tokens);
    let path = temp(&format!("resume-{}-{k}.safetensors", full_opts.tbptt));
    save_checkpoint(&path, &part, Some(&part_trainer.state()), None, &[]).unwrap();
    let loaded = load_checkpoint(&path).unwrap();
    let state = loaded.trainer.expect("a checkpoint");
    assert_eq!(state.position.step, k);
    assert_eq!(state.carried.is_some(), full_opts.tbptt, "lanes carry a state mid-epoch");

    let run_rest = |state: rnn_core::train::TrainerState| {
        let mut net = loaded.network.clone();
        let mut trainer = Trainer::resume(&net, state).unwrap();
        // maxSteps counts per call: the rest of the run is n − k more steps.
        trainer.set_options(&net, TrainOptions { max_steps: Some(n - k), ..full_opts.clone() }).unwrap();
        let h =
            fit_with(&mut net, &mut trainer, &data(&tokens, &full_opts), &AtomicBool::new(false), &mut |_| {}).unwrap();
        assert_eq!(h.steps_done, n - k);
        (net, trainer)
    };
    let (resumed, resumed_trainer) = run_rest(state.clone());
    assert_eq!(bits(&resumed), bits(&full), "tbptt={}", full_opts.tbptt);
    assert_eq!(resumed_trainer.state().optimizer, full_trainer.state().optimizer);
    assert_eq!(resumed_trainer.position, full_trainer.position);
    assert_eq!(resumed_trainer.state().rng, full_trainer.state().rng);

    // Each saved part matters: without the dropout RNG position (or, in lanes mode, without the
    // carried state) the resumed run differs.
    let mut fresh_rng = state.clone();
    fresh_rng.rng.word_pos = 0;
    assert_ne!(bits(&run_rest(fresh_rng).0), bits(&full));
    if full_opts.tbptt {
        let mut no_state = state;
        no_state.carried = None;
        assert_ne!(bits(&run_rest(no_state).0), bits(&full));
    }
}

#[test]
fn checkpoint_resume_is_bit_identical_with_windows() {
    // 49 windows of 8 → 13 batches per epoch: the run crosses an epoch boundary after the resume.
    resume_case(json!({}), 17, 5);
}

#[test]
fn checkpoint_resume_is_bit_identical_with_tbptt_lanes() {
    // Lanes of 100 tokens → 12 batches per epoch; resume mid-epoch with a carried state.
    resume_case(json!({"tbptt": true}), 16, 5);
}

#[test]
fn a_small_language_model_learns_a_repetitive_stream() {
    let net = lm("lstm", 1, 0.0, 5);
    let train_tokens = cyclic(4000, 0.05, 6);
    let held = cyclic(600, 0.05, 7);
    let before = evaluate_stream(&net, &held, Some(1), 64, None).unwrap().loss.mean();
    let uniform = (V as f64).ln();
    assert!((before - uniform).abs() < 0.2, "an untrained model is near ln V: {before} vs {uniform}");
    let opts = options(json!({"batch_size": 8, "seq_len": 16, "max_steps": 300, "seed": 1}));
    let (trained, _, h) = train(&net, &opts, &train_tokens);
    let after = evaluate_stream(&trained, &held, Some(1), 64, None).unwrap().loss.mean();
    // 5 % noise leaves ~0.3 nats of irreducible entropy; a model that learned the cycle is
    // far below ln 5 = 1.61.
    assert!(after < 0.4 * uniform, "held-out loss {after} after 300 steps (from {before})");
    assert!(h.loss.last().unwrap() < &h.loss[0]);
}

#[test]
fn cancellation_before_and_during_fit() {
    let net = lm("gru", 1, 0.0, 8);
    let tokens = cyclic(500, 0.1, 9);
    let opts = options(json!({"epochs": 3}));
    let d = data(&tokens, &opts);

    let cancel = AtomicBool::new(true);
    let mut n = net.clone();
    let mut t = Trainer::new(&n, opts.clone()).unwrap();
    let h = fit_with(&mut n, &mut t, &d, &cancel, &mut |_| {}).unwrap();
    assert_eq!((h.stop_reason, h.steps_done, t.position.step), (StopReason::Aborted, 0, 0));
    assert_eq!(bits(&n), bits(&net));

    let cancel = AtomicBool::new(false);
    let mut n = net.clone();
    let mut t = Trainer::new(&n, opts).unwrap();
    let mut steps_seen = Vec::new();
    let h = fit_with(&mut n, &mut t, &d, &cancel, &mut |e| {
        if let TrainEvent::Step { step, .. } = e {
            steps_seen.push(step);
            if step == 3 {
                cancel.store(true, Ordering::Relaxed);
            }
        }
    })
    .unwrap();
    assert_eq!((h.stop_reason, h.steps_done, t.position.step), (StopReason::Aborted, 3, 3));
    assert_eq!(steps_seen, vec![1, 2, 3]);
}

#[test]
fn stop_reasons_max_steps_time_limit_and_epochs() {
    let net = lm("rnn", 1, 0.0, 10);
    let tokens = cyclic(200, 0.1, 11);
    let per_epoch =
        TokenStream::new(tokens.clone(), V, 4, 8, stream_mode(&options(json!({})))).unwrap().batches_per_epoch() as u64;

    let (_, t, h) = train(&net, &options(json!({"max_steps": 4})), &tokens);
    assert_eq!((h.stop_reason, h.steps_done, t.position.step), (StopReason::MaxSteps, 4, 4));

    let (_, t, h) = train(&net, &options(json!({"epochs": 2})), &tokens);
    assert_eq!((h.stop_reason, h.steps_done), (StopReason::Completed, 2 * per_epoch));
    assert_eq!((t.position.epoch, t.position.batch), (2, 0));

    // Neither epochs, steps nor time: one epoch.
    let (_, _, h) = train(&net, &options(json!({})), &tokens);
    assert_eq!((h.stop_reason, h.steps_done), (StopReason::Completed, per_epoch));

    // Epochs and steps: whichever comes first.
    let (_, _, h) = train(&net, &options(json!({"epochs": 2, "max_steps": per_epoch + 1})), &tokens);
    assert_eq!((h.stop_reason, h.steps_done), (StopReason::MaxSteps, per_epoch + 1));

    let (_, _, h) = train(&net, &options(json!({"time_limit": 0.3})), &tokens);
    assert_eq!(h.stop_reason, StopReason::TimeLimit);
    assert!(h.elapsed >= 0.3 && h.steps_done > per_epoch, "{h:?}");
}

#[test]
fn a_non_finite_loss_stops_naming_the_step() {
    // Poisoned weights: the first step fails, the weights stay as they were.
    let mut net = lm("lstm", 1, 0.0, 12);
    net.params_mut().view_mut("head.bias")[2] = f32::NAN;
    let tokens = cyclic(200, 0.1, 13);
    let opts = options(json!({"epochs": 1}));
    let mut t = Trainer::new(&net, opts.clone()).unwrap();
    let before = bits(&net);
    let e = fit_with(&mut net, &mut t, &data(&tokens, &opts), &AtomicBool::new(false), &mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::LossNotFinite { step: 1, .. }), "{e:?}");
    assert!(e.to_string().contains("at step 1"), "{e}");
    assert_eq!(bits(&net), before);

    // A learning rate that blows a ReLU RNN up: some later step fails, named, before updating.
    let relu = ModelConfig::from_json(&json!({"cell": "rnn", "nonlinearity": "relu", "vocab_size": V,
        "embed_dim": 6, "hidden_size": 12, "num_layers": 1}))
    .unwrap();
    let params = init_params(&relu, &InitConfig::default(), &mut Rng::new(14)).unwrap();
    let mut net = Network::from_params(relu, params).unwrap();
    let opts = options(json!({"optimizer": {"type": "sgd", "lr": 1e6}, "max_steps": 500, "seq_len": 32}));
    let mut t = Trainer::new(&net, opts.clone()).unwrap();
    let mut last_step = 0;
    let e = fit_with(&mut net, &mut t, &data(&cyclic(2000, 0.1, 15), &opts), &AtomicBool::new(false), &mut |e| {
        if let TrainEvent::Step { step, .. } = e {
            last_step = step;
        }
    })
    .unwrap_err();
    let Error::LossNotFinite { step, .. } = e else { panic!("expected LossNotFinite, got {e:?}") };
    assert!(step > 1 && step == last_step + 1 && t.position.step == last_step, "failed at {step} after {last_step}");
}

/// An update that overflows the weights is undone: `fit` fails naming the step, and the model
/// keeps its last finite weights (and optimizer state), so it can still be saved, loaded and
/// trained on; with `skip_non_finite` the step is skipped instead.
#[test]
fn a_diverging_update_is_undone_and_the_model_stays_saveable() {
    // Huge but finite biases give a finite loss and gradient; weight decay then pushes them past
    // f32's range: 1e38 - 1 · (g + 10 · 1e38) overflows in the update itself.
    let sgd = json!({"type": "sgd", "lr": 1.0, "momentum": 0.9, "weight_decay": 10.0});
    for skip in [false, true] {
        let mut net = lm("rnn", 1, 0.0, 21);
        net.params_mut().view_mut("head.bias").fill(1e38);
        let optimizer = sgd.clone();
        let opts = options(json!({"optimizer": optimizer, "max_steps": 6, "skip_non_finite": skip}));
        let mut t = Trainer::new(&net, opts.clone()).unwrap();
        let r = fit_with(&mut net, &mut t, &data(&cyclic(400, 0.3, 22), &opts), &AtomicBool::new(false), &mut |_| {});
        assert!(net.params().data.iter().all(|v| v.is_finite()), "non-finite weights left after {r:?}");
        assert_eq!(net.params().view("head.bias")[0], 1e38, "the weights from before the update");
        let state = t.state();
        assert!(state.optimizer.slots.iter().all(|(_, v)| v.iter().all(|x| x.is_finite())));
        match (&r, skip) {
            (Err(e @ Error::UpdateNotFinite { step, .. }), false) => {
                assert_eq!(e.code(), "ERR_RNNKIT_LOSS_NOT_FINITE");
                assert!(e.to_string().contains(&format!("update of step {step}")), "{e}");
                assert_eq!(t.position.step, step - 1, "the undone step is not counted");
                assert_eq!(state.optimizer.step, step - 1);
            }
            (Ok(h), true) => assert!(h.steps_done == 6),
            other => panic!("unexpected outcome {other:?}"),
        }
        let path = temp(&format!("diverged-{skip}.safetensors"));
        save_checkpoint(&path, &net, Some(&state), None, &[]).unwrap();
        let back = load_checkpoint(&path).unwrap();
        assert_eq!(bits(&back.network), bits(&net));
    }
}

/// With `skip_non_finite`, exactly the batches that touch a poisoned embedding row are skipped
/// (in lanes mode too: the poisoned state is not carried into the next batch) and the rest train.
#[test]
fn skip_non_finite_skips_exactly_the_bad_batches() {
    for tbptt in [false, true] {
        let mut net = lm("gru", 1, 0.0, 16);
        let poisoned = 4; // a noise-only id of `cyclic`'s stream
        net.params_mut().view_mut("embed.weight")[poisoned * 6] = f32::NAN;
        let mut tokens = cyclic(400, 0.0, 17);
        for at in [37, 150, 151, 290] {
            tokens[at] = poisoned as i32;
        }
        let opts = options(json!({"epochs": 1, "skip_non_finite": true, "tbptt": tbptt, "shuffle": false}));
        let d = data(&tokens, &opts);
        let TrainData::Stream(stream) = &d else { unreachable!() };
        // Without shuffling, fit reads windows in stream order (lanes need no order).
        let mut order = stream.epoch_order(opts.seed, 0);
        order.sort_unstable();
        let expected: Vec<u64> = (0..stream.batches_per_epoch())
            .filter(|&i| match &stream.batch(&order, i).input {
                rnn_core::batch::BatchInput::Tokens(ids) => ids.contains(&(poisoned as i32)),
                _ => unreachable!(),
            })
            .map(|i| i as u64 + 1)
            .collect();
        assert!(!expected.is_empty() && expected.len() < stream.batches_per_epoch() / 2, "{expected:?}");
        let before = net.clone();
        let mut t = Trainer::new(&net, opts).unwrap();
        let mut skipped = Vec::new();
        let h = fit_with(&mut net, &mut t, &d, &AtomicBool::new(false), &mut |e| {
            if let TrainEvent::Step { step, grad_norm, .. } = e {
                if !grad_norm.is_finite() {
                    skipped.push(step);
                }
            }
        })
        .unwrap();
        assert_eq!(h.stop_reason, StopReason::Completed);
        assert_eq!(skipped, expected, "tbptt={tbptt}");
        // Only the poisoned embedding row [6] may be non-finite.
        let row = net.params().layout.require("embed.weight").unwrap().offset + poisoned * 6;
        for (i, v) in net.params().data.iter().enumerate() {
            assert!(v.is_finite() || (row..row + 6).contains(&i), "tbptt={tbptt}: param {i} is {v}");
        }
        assert_ne!(bits(&net), bits(&before), "the good batches trained");
    }
}

#[test]
fn validation_events_report_evaluate_stream_at_their_step() {
    let mut net = lm("lstm", 2, 0.1, 18);
    let tokens = cyclic(300, 0.1, 19);
    let held = cyclic(120, 0.1, 20);
    let opts = options(json!({"max_steps": 10, "validate_every": 4, "checkpoint_every": 4}));
    let valid = ValidData::Stream { tokens: TokenStore::from_ids(&held, V).unwrap().into_shared(), lanes: 1 };
    let mut t = Trainer::new(&net, opts.clone()).unwrap();
    let mut events = Vec::new();
    // The checkpoint hook runs right after validation at the same step and sees the same
    // weights: it records what evaluate_stream says there.
    let mut expected = Vec::new();
    let mut hook = |n: &Network, tr: &Trainer| {
        let e = evaluate_stream(n, &held, Some(1), opts.seq_len, None).unwrap();
        expected.push((tr.position.step, e.loss.mean()));
        Ok(format!("ckpt-{}", tr.position.step))
    };
    let h = t
        .fit(&mut net, &data(&tokens, &opts), Some(&valid), &AtomicBool::new(false), &mut |e| events.push(e), &mut hook)
        .unwrap();
    expected.push((10, evaluate_stream(&net, &held, Some(1), opts.seq_len, None).unwrap().loss.mean()));
    let got: Vec<(u64, f64)> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Validation { step, val_loss, val_count, .. } => {
                assert_eq!(*val_count, held.len() - 1);
                Some((*step, *val_loss))
            }
            _ => None,
        })
        .collect();
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![4, 8, 10]);
    for ((s, a), (es, b)) in got.iter().zip(&expected) {
        assert_eq!((s, a.to_bits()), (es, b.to_bits()), "step {s}: {a} vs {b}");
    }
    assert_eq!(h.val_steps, vec![4, 8, 10]);
    let checkpoints: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Checkpoint { step, path } => Some(format!("{step}:{path}")),
            _ => None,
        })
        .collect();
    assert_eq!(checkpoints, vec!["4:ckpt-4", "8:ckpt-8"]);
}

/// A new `fit` with another seed (through `set_options`) keeps the running dropout generator; a
/// checkpoint taken then must restore that generator, not one named by the new seed.
#[test]
fn checkpoint_after_a_seed_change_resumes_the_same_dropout_stream() {
    let net = lm("lstm", 2, 0.3, 21);
    let tokens = cyclic(300, 0.1, 22);
    let first = options(json!({"max_steps": 3, "seed": 1}));
    let second = options(json!({"max_steps": 8, "seed": 2}));
    let (mut a, mut ta, _) = train(&net, &first, &tokens);
    ta.set_options(&a, second.clone()).unwrap();
    let path = temp("seed-change.safetensors");
    save_checkpoint(&path, &a, Some(&ta.state()), None, &[]).unwrap();
    fit_with(&mut a, &mut ta, &data(&tokens, &second), &AtomicBool::new(false), &mut |_| {}).unwrap();

    let loaded = load_checkpoint(&path).unwrap();
    let mut b = loaded.network;
    let mut tb = Trainer::resume(&b, loaded.trainer.unwrap()).unwrap();
    fit_with(&mut b, &mut tb, &data(&tokens, &second), &AtomicBool::new(false), &mut |_| {}).unwrap();
    assert_eq!(bits(&a), bits(&b));
}

/// A trainer resumed mid-epoch on data with fewer batches per epoch is refused, not a panic.
#[test]
fn resuming_mid_epoch_on_shorter_data_is_an_error() {
    let mut net = lm("gru", 1, 0.0, 1);
    let opts = options(json!({"max_steps": 30}));
    let mut trainer = Trainer::new(&net, opts.clone()).unwrap();
    let cancel = AtomicBool::new(false);
    // 4000 tokens: 125 windows of 8 → 32 batches per epoch; stop at batch 30.
    fit_with(&mut net, &mut trainer, &data(&cyclic(4000, 0.0, 1), &opts), &cancel, &mut |_| {}).unwrap();
    assert_eq!(trainer.position.batch, 30);
    trainer.set_options(&net, options(json!({"max_steps": 40}))).unwrap();
    let err = fit_with(&mut net, &mut trainer, &data(&cyclic(200, 0.0, 1), &opts), &cancel, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("batches per epoch"), "{err}");
}

/// Training on "012012…" while validating on the reversed cycle "021021…": the better the model
/// learns the training text, the worse its validation loss, so early stopping must stop
/// `patience` validations after the best and put back the weights of that validation.
#[test]
fn early_stopping_stops_within_patience_and_restores_the_best_weights() {
    let mut net = lm("gru", 1, 0.0, 3);
    let opts = options(json!({"max_steps": 200, "validate_every": 1,
        "optimizer": {"type": "adam", "lr": 0.05},
        "early_stopping": {"patience": 3}}));
    let es = opts.early_stopping.unwrap();
    assert_eq!((es.patience, es.min_delta, es.restore_best), (3, 0.0, true));
    let tokens = cyclic(600, 0.0, 1);
    let held: Vec<i32> = (0..200).map(|i| [0, 2, 1][i % 3]).collect();
    let valid = ValidData::Stream { tokens: TokenStore::from_ids(&held, V).unwrap().into_shared(), lanes: 1 };
    let mut trainer = Trainer::new(&net, opts.clone()).unwrap();
    let mut checkpoints = 0;
    let h = trainer
        .fit(&mut net, &data(&tokens, &opts), Some(&valid), &AtomicBool::new(false), &mut |_| {}, &mut |_, _| {
            checkpoints += 1;
            Ok(String::new())
        })
        .unwrap();
    assert_eq!(checkpoints, 0, "no best checkpoint was asked for");
    assert_eq!(h.stop_reason, StopReason::EarlyStopping);
    assert!(h.steps_done < 200);
    let best_step = h.best_step.expect("a best validation");
    let best_index = h.val_steps.iter().position(|&s| s == best_step).unwrap();
    assert_eq!(h.val_steps.len() - 1 - best_index, 3, "stops after exactly `patience` validations without improvement");
    let best_loss = h.val_loss[best_index];
    assert_eq!(h.best_val_loss, Some(best_loss));
    assert!(h.val_loss.iter().all(|&l| l >= best_loss));
    assert!(*h.val_loss.last().unwrap() > best_loss);
    let after = evaluate_stream(&net, &held, Some(1), opts.seq_len, None).unwrap().loss.mean();
    assert!(((after - best_loss) / best_loss).abs() < 1e-9, "restored {after}, best {best_loss}");
}

/// `restore_best: false` keeps the last weights; `checkpoint_best` writes at each improvement.
#[test]
fn best_checkpoints_follow_improvements_and_restore_best_can_be_off() {
    let mut net = lm("gru", 1, 0.0, 3);
    let opts = options(json!({"max_steps": 200, "validate_every": 1, "checkpoint_best": true,
        "optimizer": {"type": "adam", "lr": 0.05},
        "early_stopping": {"patience": 2, "restore_best": false}}));
    let tokens = cyclic(600, 0.0, 1);
    let held: Vec<i32> = (0..200).map(|i| [0, 2, 1][i % 3]).collect();
    let valid = ValidData::Stream { tokens: TokenStore::from_ids(&held, V).unwrap().into_shared(), lanes: 1 };
    let mut trainer = Trainer::new(&net, opts.clone()).unwrap();
    let mut written = Vec::new();
    let h = trainer
        .fit(&mut net, &data(&tokens, &opts), Some(&valid), &AtomicBool::new(false), &mut |_| {}, &mut |_, t| {
            written.push(t.position.step);
            Ok(String::new())
        })
        .unwrap();
    assert_eq!(h.stop_reason, StopReason::EarlyStopping);
    // Each write is at a validation lower than every one before it; the last is the best.
    let improving: Vec<u64> = h
        .val_steps
        .iter()
        .zip(&h.val_loss)
        .enumerate()
        .filter(|(i, (_, l))| h.val_loss[..*i].iter().all(|p| **l < *p))
        .map(|(_, (s, _))| *s)
        .collect();
    assert_eq!(written, improving);
    assert_eq!(written.last().copied(), h.best_step);
    let after = evaluate_stream(&net, &held, Some(1), opts.seq_len, None).unwrap().loss.mean();
    assert_eq!(after, *h.val_loss.last().unwrap(), "restore_best: false keeps the last weights");
}

#[test]
fn early_stopping_options_are_validated_and_need_validation_data() {
    for (extra, name) in
        [(json!({"patience": 0}), "earlyStopping.patience"), (json!({"min_delta": -1.0}), "earlyStopping.minDelta")]
    {
        let mut o = json!({"early_stopping": extra});
        o["batch_size"] = json!(4);
        let err = TrainOptions::from_json(&o).unwrap_err();
        assert!(err.to_string().starts_with(name), "{err}");
    }
    assert!(TrainOptions::from_json(&json!({"early_stopping": {"patients": 2}})).is_err());
    // Off, the options' JSON form (in checkpoints) is what it was without these fields.
    let plain = options(json!({}));
    let v = plain.to_json();
    assert!(v.get("early_stopping").is_none() && v.get("checkpoint_best").is_none());
    assert_eq!(TrainOptions::from_json(&v).unwrap(), plain);

    let mut net = lm("gru", 1, 0.0, 3);
    let opts = options(json!({"max_steps": 2, "early_stopping": {}}));
    let mut trainer = Trainer::new(&net, opts.clone()).unwrap();
    let tokens = cyclic(200, 0.0, 1);
    let err = trainer
        .fit(&mut net, &data(&tokens, &opts), None, &AtomicBool::new(false), &mut |_| {}, &mut no_checkpoint)
        .unwrap_err();
    assert!(err.to_string().starts_with("earlyStopping: needs validation data"), "{err}");
}

/// A checkpoint that cannot be written (a full disk, a removed directory) is reported as an
/// event and training goes on to its limit: the run is not thrown away with the checkpoint.
#[test]
fn a_failed_checkpoint_write_is_reported_and_training_goes_on() {
    let mut net = lm("gru", 1, 0.0, 4);
    let tokens = cyclic(300, 0.1, 5);
    let opts = options(json!({"max_steps": 6, "checkpoint_every": 2}));
    let mut trainer = Trainer::new(&net, opts.clone()).unwrap();
    let mut events = Vec::new();
    let mut calls = 0;
    let h = trainer
        .fit(&mut net, &data(&tokens, &opts), None, &AtomicBool::new(false), &mut |e| events.push(e), &mut |_, t| {
            calls += 1;
            if t.position.step == 4 {
                Err(Error::io("writing \"ck\"", std::io::Error::other("No space left on device")))
            } else {
                Ok(format!("ck@{}", t.position.step))
            }
        })
        .unwrap();
    assert_eq!((h.steps_done, h.stop_reason, calls), (6, StopReason::MaxSteps, 3));
    let written: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Checkpoint { step, path } => Some(format!("{step}:{path}")),
            TrainEvent::CheckpointError { step, message } => Some(format!("{step}! {message}")),
            _ => None,
        })
        .collect();
    assert_eq!(written, vec!["2:ck@2", "4! writing \"ck\": No space left on device", "6:ck@6"]);
}

#[test]
fn an_abort_stops_a_long_validation_pass_and_skips_the_closing_one() {
    let net = lm("gru", 1, 0.0, 3);
    let opts = options(json!({"max_steps": 3, "validate_every": 1}));
    let tokens = cyclic(300, 0.1, 21);
    // 20 M held-out tokens at one lane: far longer than the 100 ms before the abort.
    let held = cyclic(20_000_000, 0.1, 22);
    let valid = ValidData::Stream { tokens: TokenStore::from_ids(&held, V).unwrap().into_shared(), lanes: 1 };
    let mut trainer = Trainer::new(&net, opts.clone()).unwrap();
    let mut net = net.clone();
    let cancel = AtomicBool::new(false);
    let h = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            cancel.store(true, Ordering::Relaxed);
        });
        trainer.fit(&mut net, &data(&tokens, &opts), Some(&valid), &cancel, &mut |_| {}, &mut no_checkpoint).unwrap()
    });
    assert_eq!(h.stop_reason, StopReason::Aborted);
    assert_eq!(h.steps_done, 1, "stopped during the first step's validation");
    assert!(h.val_loss.is_empty(), "no validation completed: {:?}", h.val_loss);
    assert!(net.params().data.iter().all(|v| v.is_finite()));
}
