//! A speech model end to end on synthetic "audio": each character of a transcript sounds as a
//! few frames of its own feature pattern (plus noise), with silent frames between characters.
//! Training through `Trainer::fit` (CTC, frame stacking, validation with error rates) must learn
//! to transcribe held-out utterances; greedy and beam decoding, a lexicon, save/load, refusals.

use rnn_core::alphabet::Alphabet;
use rnn_core::batch::{BatchInput, BatchTargets, SequenceSet};
use rnn_core::config::ModelConfig;
use rnn_core::init::{init_params, InitConfig};
use rnn_core::io::{load_model, save_model, SaveOptions};
use rnn_core::model::network::Network;
use rnn_core::model::speech::{evaluate_speech, transcribe, Decoder, TranscribeOptions};
use rnn_core::rng::Rng;
use rnn_core::train::{TrainData, TrainOptions, Trainer, ValidData};
use serde_json::json;
use std::sync::atomic::AtomicBool;

const ALPHABET: &str = "abc ";
const F: usize = 5; // features per frame: one per letter, one for silence, noise everywhere

/// `n` utterances of 1–3 words of 1–2 letters: frames `[T, F]` and the transcript.
fn utterances(n: usize, seed: u64) -> Vec<(Vec<f32>, String)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let words: Vec<String> = (0..1 + rng.below(3))
                .map(|_| (0..1 + rng.below(2)).map(|_| ['a', 'b', 'c'][rng.below(3)]).collect())
                .collect();
            let text = words.join(" ");
            let mut frames = Vec::new();
            let mut push = |class: usize, count: usize, rng: &mut Rng| {
                for _ in 0..count {
                    for k in 0..F {
                        frames.push(if k == class { 1.0 } else { 0.0 } + 0.1 * rng.normal());
                    }
                }
            };
            push(3, 1 + rng.below(2), &mut rng);
            for c in text.chars() {
                // A space is a longer pause (class 4 frames), a letter its own pattern.
                match c {
                    ' ' => push(4, 3, &mut rng),
                    c => push("abc".find(c).unwrap(), 3 + rng.below(2), &mut rng),
                }
                push(3, 1 + rng.below(2), &mut rng);
            }
            (frames, text)
        })
        .collect()
}

fn set(utts: &[(Vec<f32>, String)], alphabet: &Alphabet) -> SequenceSet {
    let steps = utts.iter().map(|(f, _)| f.len() / F).max().unwrap();
    let max_len = utts.iter().map(|(_, t)| t.chars().count()).max().unwrap();
    let mut x = vec![0.0; utts.len() * steps * F];
    let mut labels = vec![0; utts.len() * max_len];
    let mut lengths = Vec::new();
    for (r, (f, t)) in utts.iter().enumerate() {
        x[r * steps * F..r * steps * F + f.len()].copy_from_slice(f);
        let l = alphabet.encode(t, "text").unwrap();
        for (s, &k) in l.iter().enumerate() {
            labels[r * max_len + s] = k as i32;
        }
        lengths.push(l.len());
    }
    SequenceSet {
        input: BatchInput::Dense(x),
        targets: BatchTargets::Transcripts { labels, max_len, lengths },
        rows: utts.len(),
        steps,
        lengths: utts.iter().map(|(f, _)| f.len() / F).collect(),
        features: F,
        outputs: 0,
    }
}

fn speech_net(seed: u64) -> Network {
    let cfg = ModelConfig::from_json(&json!({"task": "speech", "cell": "gru", "input_size": F, "hidden_size": 24,
        "num_layers": 1, "bidirectional": true, "output_size": 5, "alphabet": ["a", "b", "c", " "],
        "frame_stacking": 2}))
    .unwrap();
    let params = init_params(&cfg, &InitConfig::default(), &mut Rng::new(seed)).unwrap();
    Network::from_params(cfg, params).unwrap()
}

#[test]
fn a_speech_model_learns_to_transcribe_and_round_trips() {
    let alphabet = Alphabet::from_chars(ALPHABET).unwrap();
    let train = set(&utterances(240, 1), &alphabet);
    let held = utterances(40, 2);
    let valid = set(&held, &alphabet);
    let mut net = speech_net(3);
    let before = evaluate_speech(&net, &valid, 16, &TranscribeOptions::default(), None).unwrap();
    let opts = TrainOptions::from_json(&json!({"batch_size": 16, "epochs": 25, "seed": 4, "clip_norm": 1.0,
        "optimizer": {"type": "adam", "lr": 0.02}, "log_every": 1000}))
    .unwrap();
    let mut trainer = Trainer::new(&net, opts).unwrap();
    let history = trainer
        .fit(
            &mut net,
            &TrainData::Sequences(train),
            Some(&ValidData::Sequences(valid.clone())),
            &AtomicBool::new(false),
            &mut |_| {},
            &mut |_, _| unreachable!("no checkpoints requested"),
        )
        .unwrap();
    assert!(history.val_loss.last().unwrap() < &(history.val_loss[0] * 0.5), "{:?}", history.val_loss);
    let after = evaluate_speech(&net, &valid, 16, &TranscribeOptions::default(), None).unwrap();
    let (b, a) = (before.transcripts.unwrap(), after.transcripts.unwrap());
    assert!(b.cer() > 0.5, "untrained CER {}", b.cer());
    assert!(a.cer() < 0.05 && a.wer() < 0.1, "trained CER {}, WER {}", a.cer(), a.wer());

    // transcribe: greedy and beam agree with the evaluation's transcripts on most utterances.
    let frames: Vec<&[f32]> = held.iter().map(|(f, _)| f.as_slice()).collect();
    let greedy = transcribe(&net, &frames, &TranscribeOptions::default(), None).unwrap();
    let right = greedy.iter().zip(&held).filter(|(g, (_, t))| g == &t).count();
    assert!(right as f64 >= 0.9 * held.len() as f64, "{right} of {} right: {greedy:?}", held.len());
    let beam = TranscribeOptions { decoder: Decoder::Beam { width: 8 }, lexicon: None };
    let beamed = transcribe(&net, &frames, &beam, None).unwrap();
    assert!(beamed.iter().zip(&held).filter(|(g, (_, t))| g == &t).count() >= right - 1);
    // A lexicon of the words "a" and "bc" only: every transcript is made of them.
    let lexicon = TranscribeOptions { lexicon: Some(vec!["a".into(), "bc".into()]), ..beam };
    for t in transcribe(&net, &frames, &lexicon, None).unwrap() {
        assert!(t.is_empty() || t.split(' ').all(|w| w == "a" || w == "bc"), "{t:?}");
    }

    // Save and load: the alphabet and frame stacking come back, and so do the transcripts.
    let dir = std::env::temp_dir().join(format!("rnnkit-speech-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("speech.safetensors");
    save_model(&path, &net.config, net.params(), &SaveOptions::default()).unwrap();
    let file = load_model(&path).unwrap();
    assert_eq!(file.config, net.config);
    let loaded = Network::from_params(file.config, file.params).unwrap();
    assert_eq!(transcribe(&loaded, &frames, &TranscribeOptions::default(), None).unwrap(), greedy);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_speech_input_is_refused_with_its_name() {
    let alphabet = Alphabet::from_chars(ALPHABET).unwrap();
    let net = speech_net(5);
    let e = |r: rnn_core::Result<Vec<String>>| r.unwrap_err().to_string();
    let frames = vec![0.0; 3 * F + 1];
    assert!(e(transcribe(&net, &[&frames], &TranscribeOptions::default(), None)).starts_with("frames[0]:"));
    let ok = vec![0.0; 4 * F];
    let greedy_lexicon = TranscribeOptions { lexicon: Some(vec!["a".into()]), ..Default::default() };
    assert!(e(transcribe(&net, &[&ok], &greedy_lexicon, None)).starts_with("lexicon:"));
    let bad_word = TranscribeOptions { decoder: Decoder::Beam { width: 4 }, lexicon: Some(vec!["ax".into()]) };
    assert!(e(transcribe(&net, &[&ok], &bad_word, None)).starts_with("lexicon[0]: character 1 ('x')"));
    let zero = TranscribeOptions { decoder: Decoder::Beam { width: 0 }, lexicon: None };
    assert!(e(transcribe(&net, &[&ok], &zero, None)).starts_with("beamWidth:"));

    // A transcript longer than its audio allows (4 frames stacked by 2 = 2 steps, "abc" needs 3)
    // is refused before training, naming the row.
    let mut utts = utterances(3, 6);
    utts[1] = (vec![0.0; 4 * F], "abc".into());
    let data = set(&utts, &alphabet);
    let mut net = net;
    let mut trainer = Trainer::new(&net, TrainOptions::default()).unwrap();
    let err = trainer
        .fit(
            &mut net,
            &TrainData::Sequences(data),
            None,
            &AtomicBool::new(false),
            &mut |_| {},
            &mut |_, _| unreachable!(),
        )
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("transcripts[1]: the transcript needs 3 output steps"), "{err}");

    // Configs: the alphabet decides the head's width; only speech models have one.
    let bad = json!({"task": "speech", "cell": "gru", "input_size": F, "hidden_size": 4, "num_layers": 1,
        "output_size": 4, "alphabet": ["a", "b", "c", " "]});
    assert!(ModelConfig::from_json(&bad).unwrap_err().to_string().starts_with("output_size:"));
    let no_alphabet = json!({"task": "speech", "cell": "gru", "input_size": F, "hidden_size": 4, "num_layers": 1,
        "output_size": 5});
    assert!(ModelConfig::from_json(&no_alphabet).unwrap_err().to_string().starts_with("alphabet:"));
    let stacking = json!({"task": "speech", "cell": "gru", "input_size": F, "hidden_size": 4, "num_layers": 1,
        "output_size": 5, "alphabet": ["a", "b", "c", " "], "frame_stacking": 0});
    assert!(ModelConfig::from_json(&stacking).unwrap_err().to_string().starts_with("frame_stacking:"));
}
