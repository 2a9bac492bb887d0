//! Sampling and beam search, checked against definitions computed independently here:
//! statistics of many draws, exhaustive search on small Markov chains, and an allocation count.

use rnn_core::beam::{beam_search, BeamConfig, StepModel};
use rnn_core::rng::Rng;
use rnn_core::sample::{sample_next, SampleScratch, SamplerConfig};
use rnn_core::Result;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Counts allocations per thread, so that tests running in parallel do not disturb each other.
struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> usize {
    ALLOCATIONS.with(|c| c.get())
}

const LOGITS: [f32; 8] = [1.5, 0.3, -0.7, 2.2, 0.0, -2.0, 1.1, 0.8];

fn random_logits(rng: &mut Rng, v: usize, scale: f32) -> Vec<f32> {
    (0..v).map(|_| scale * rng.normal()).collect()
}

/// softmax(logits / temperature) in f64, from the definition.
fn tempered(logits: &[f32], temperature: f64) -> Vec<f64> {
    let e: Vec<f64> = logits.iter().map(|&l| (l as f64 / temperature).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|x| x / sum).collect()
}

/// Keeps the ids in `keep` and renormalises.
fn restrict(p: &[f64], keep: &[usize]) -> Vec<f64> {
    let mass: f64 = keep.iter().map(|&i| p[i]).sum();
    let mut q = vec![0.0; p.len()];
    for &i in keep {
        q[i] = p[i] / mass;
    }
    q
}

/// Ids sorted by probability, most likely first (the test vectors have no ties).
fn ranked(p: &[f64]) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..p.len()).collect();
    ids.sort_by(|&a, &b| p[b].partial_cmp(&p[a]).unwrap());
    ids
}

/// Empirical frequencies of `n` draws.
fn frequencies(logits: &[f32], context: &[u32], cfg: &SamplerConfig, seed: u64, n: usize) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    let mut scratch = SampleScratch::new();
    let mut counts = vec![0usize; logits.len()];
    for _ in 0..n {
        counts[sample_next(logits, context, cfg, &mut rng, &mut scratch).unwrap() as usize] += 1;
    }
    counts.iter().map(|&c| c as f64 / n as f64).collect()
}

/// With N = 200 000 the standard error of a frequency is at most sqrt(0.25 / N) ≈ 0.0011, so a
/// 0.005 tolerance is > 4 standard errors; tokens with probability 0 must never be drawn.
fn assert_matches(freq: &[f64], expected: &[f64]) {
    for (i, (f, e)) in freq.iter().zip(expected).enumerate() {
        if *e == 0.0 {
            assert_eq!(*f, 0.0, "token {i} is outside the support but was drawn");
        }
        assert!((f - e).abs() < 0.005, "token {i}: frequency {f}, expected {e}\n{freq:?}\n{expected:?}");
    }
}

const N: usize = 200_000;

#[test]
fn frequencies_match_the_tempered_distribution() {
    for (temperature, seed) in [(1.0f32, 11), (0.7, 12), (2.5, 13)] {
        let cfg = SamplerConfig { temperature, ..Default::default() };
        assert_matches(&frequencies(&LOGITS, &[], &cfg, seed, N), &tempered(&LOGITS, temperature as f64));
    }
}

#[test]
fn frequencies_match_the_renormalised_top_k() {
    let p = tempered(&LOGITS, 0.8);
    for (k, seed) in [(1usize, 21), (3, 22), (5, 23)] {
        let cfg = SamplerConfig { temperature: 0.8, top_k: k, ..Default::default() };
        let expected = restrict(&p, &ranked(&p)[..k]);
        assert_matches(&frequencies(&LOGITS, &[], &cfg, seed, N), &expected);
    }
}

#[test]
fn frequencies_match_the_nucleus() {
    let p = tempered(&LOGITS, 1.2);
    let order = ranked(&p);
    for (top_p, seed) in [(0.5f32, 31), (0.75, 32), (0.9, 33)] {
        // The nucleus: most likely tokens until their mass reaches top_p.
        let mut mass = 0.0;
        let keep: Vec<usize> = order
            .iter()
            .copied()
            .take_while(|&i| {
                let before = mass;
                mass += p[i];
                before < top_p as f64
            })
            .collect();
        assert!(keep.len() > 1 && keep.len() < LOGITS.len(), "the cut should be non-trivial");
        let cfg = SamplerConfig { temperature: 1.2, top_p, ..Default::default() };
        assert_matches(&frequencies(&LOGITS, &[], &cfg, seed, N), &restrict(&p, &keep));
    }
}

#[test]
fn frequencies_match_the_repetition_penalised_distribution() {
    // Penalty 1.6 on tokens 0 (1.5 → 0.9375), 3 (2.2 → 1.375) and 5 (-2.0 → -3.2).
    let penalised: Vec<f32> = LOGITS
        .iter()
        .enumerate()
        .map(|(i, &l)| match i {
            0 | 3 => l / 1.6,
            5 => l * 1.6,
            _ => l,
        })
        .collect();
    let cfg = SamplerConfig { repetition_penalty: 1.6, ..Default::default() };
    let freq = frequencies(&LOGITS, &[3, 0, 5, 3], &cfg, 41, N);
    assert_matches(&freq, &tempered(&penalised, 1.0));
}

#[test]
fn same_seed_same_tokens_different_seeds_differ() {
    let mut gen = Rng::new(5);
    let rows: Vec<Vec<f32>> = (0..64).map(|_| random_logits(&mut gen, 50, 1.0)).collect();
    let cfg = SamplerConfig { temperature: 0.9, top_k: 20, top_p: 0.95, repetition_penalty: 1.2, ..Default::default() };
    let run = |seed| {
        let mut rng = Rng::new(seed);
        let mut scratch = SampleScratch::new();
        let mut context = Vec::new();
        for row in &rows {
            let t = sample_next(row, &context, &cfg, &mut rng, &mut scratch).unwrap();
            context.push(t);
        }
        context
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn small_temperature_behaves_like_greedy() {
    let mut gen = Rng::new(6);
    let mut rng = Rng::new(7);
    let mut scratch = SampleScratch::new();
    let greedy = SamplerConfig { greedy: true, ..Default::default() };
    let cold = SamplerConfig { temperature: 1e-4, ..Default::default() };
    for _ in 0..200 {
        let row = random_logits(&mut gen, 30, 3.0);
        let g = sample_next(&row, &[], &greedy, &mut rng, &mut scratch).unwrap();
        // The maximum of 30 normals is distinct from the runner-up by far more than
        // 1e-4 · ln(1e300), so every other token has weight exp(-gap/T) = 0.
        assert_eq!(g as usize, row.iter().enumerate().fold(0, |b, (i, &l)| if l > row[b] { i } else { b }));
        for _ in 0..5 {
            assert_eq!(sample_next(&row, &[], &cold, &mut rng, &mut scratch).unwrap(), g);
        }
    }
}

#[test]
fn sampling_does_not_allocate_once_warm() {
    let mut gen = Rng::new(8);
    let row = random_logits(&mut gen, 1000, 2.0);
    let context: Vec<u32> = (0..40).map(|i| i * 7).collect();
    let configs = [
        SamplerConfig::default(),
        SamplerConfig { top_k: 40, ..Default::default() },
        SamplerConfig { top_p: 0.9, ..Default::default() },
        SamplerConfig { top_k: 100, top_p: 0.8, temperature: 0.7, repetition_penalty: 1.3, ..Default::default() },
        SamplerConfig { greedy: true, repetition_penalty: 1.3, ..Default::default() },
    ];
    let mut rng = Rng::new(9);
    let mut scratch = SampleScratch::new();
    for cfg in &configs {
        sample_next(&row, &context, cfg, &mut rng, &mut scratch).unwrap();
    }
    let before = allocations();
    for cfg in configs.iter().cycle().take(200) {
        sample_next(&row, &context, cfg, &mut rng, &mut scratch).unwrap();
    }
    assert_eq!(allocations() - before, 0);
}

/// A Markov chain whose next-token logits depend on the last token and on the position: the
/// state is (last token, tokens so far), and the logits are row `last` of the table for that
/// position (the last table repeats). Position-dependent tables keep paths that use the same
/// transitions in another order from tying, so rankings are unambiguous. Counts calls to check
/// that beams are stepped in one batch.
#[derive(Clone)]
struct Markov {
    v: usize,
    /// [positions, V, V]
    table: Vec<f32>,
    calls: usize,
    widest: usize,
}

impl Markov {
    fn random(rng: &mut Rng, v: usize) -> Self {
        Markov { v, table: random_logits(rng, 8 * v * v, 1.5), calls: 0, widest: 0 }
    }
    /// Logits after `len` tokens, the last being `last`.
    fn row(&self, len: usize, last: u32) -> &[f32] {
        let positions = self.table.len() / (self.v * self.v);
        let start = (len.min(positions) - 1) * self.v * self.v + last as usize * self.v;
        &self.table[start..start + self.v]
    }
}

impl StepModel for Markov {
    type State = (u32, usize);
    fn step(&mut self, states: &mut [(u32, usize)], tokens: &[u32], logits_out: &mut [f32]) -> Result<()> {
        assert_eq!(states.len(), tokens.len());
        assert_eq!(logits_out.len(), states.len() * self.v);
        self.calls += 1;
        self.widest = self.widest.max(states.len());
        for (b, (s, &t)) in states.iter_mut().zip(tokens).enumerate() {
            *s = (t, s.1 + 1);
            logits_out[b * self.v..(b + 1) * self.v].copy_from_slice(self.row(s.1, t));
        }
        Ok(())
    }
    fn vocab_size(&self) -> usize {
        self.v
    }
}

/// ln softmax(row)[t], straight from the definition.
fn log_prob(row: &[f32], t: u32) -> f64 {
    let sum: f64 = row.iter().map(|&l| (l as f64).exp()).sum();
    row[t as usize] as f64 - sum.ln()
}

/// Greedy decoding through `sample_next`, independent of the beam-search code path.
fn greedy_decode(model: &Markov, first: &[f32], max_tokens: usize, stops: &[u32]) -> (Vec<u32>, f64) {
    let cfg = SamplerConfig { greedy: true, ..Default::default() };
    let (mut rng, mut scratch) = (Rng::new(0), SampleScratch::new());
    let (mut tokens, mut lp, mut row) = (Vec::new(), 0.0, first.to_vec());
    while tokens.len() < max_tokens {
        let t = sample_next(&row, &[], &cfg, &mut rng, &mut scratch).unwrap();
        lp += log_prob(&row, t);
        tokens.push(t);
        if stops.contains(&t) {
            break;
        }
        row = model.row(tokens.len(), t).to_vec();
    }
    (tokens, lp)
}

/// GNMT score, from the definition.
fn gnmt(lp: f64, len: usize, alpha: f64) -> f64 {
    lp / ((5.0 + len as f64) / 6.0).powf(alpha)
}

/// Every hypothesis beam search can return: sequences ending at their first stop token, or
/// reaching `max_tokens`, with their log-probabilities.
fn all_hypotheses(model: &Markov, first: &[f32], max_tokens: usize, stops: &[u32]) -> Vec<(Vec<u32>, f64)> {
    let mut out = Vec::new();
    let mut frontier = vec![(Vec::new(), 0.0f64, first.to_vec())];
    while let Some((seq, lp, row)) = frontier.pop() {
        for t in 0..model.v as u32 {
            let mut s = seq.clone();
            s.push(t);
            let l = lp + log_prob(&row, t);
            if stops.contains(&t) || s.len() == max_tokens {
                out.push((s, l));
            } else {
                let row = model.row(s.len(), t).to_vec();
                frontier.push((s, l, row));
            }
        }
    }
    out
}

/// Checks a beam-search result against an expected ranking, and every returned hypothesis
/// against its own tokens (log-probability, score, where it ends).
fn assert_same_ranking(
    model: &Markov,
    first: &[f32],
    cfg: &BeamConfig,
    got: &[(Vec<u32>, f64, f64)],
    want: &[(Vec<u32>, f64, f64)],
    case: usize,
) {
    let ctx = || format!("case {case}: {got:?} vs {want:?}");
    assert_eq!(got.len(), want.len(), "{}", ctx());
    for (g, w) in got.iter().zip(want) {
        assert!((g.1 - w.1).abs() < 1e-9 && (g.2 - w.2).abs() < 1e-9, "{}", ctx());
        assert_eq!(g.0, w.0, "{}", ctx());
        let mut lp = log_prob(first, g.0[0]);
        for i in 1..g.0.len() {
            lp += log_prob(model.row(i, g.0[i - 1]), g.0[i]);
        }
        assert!((lp - g.2).abs() < 1e-9, "{}", ctx());
        assert!((gnmt(lp, g.0.len(), cfg.length_penalty) - g.1).abs() < 1e-9, "{}", ctx());
        let ends_ok = g.0.len() == cfg.max_tokens || cfg.stop_tokens.contains(g.0.last().unwrap());
        let no_inner_stop = g.0[..g.0.len() - 1].iter().all(|t| !cfg.stop_tokens.contains(t));
        assert!(ends_ok && no_inner_stop, "{}", ctx());
    }
}

#[test]
fn beam_search_beats_greedy_when_greedy_is_myopic() {
    // Token 0 is the likeliest first token (0.5), but every continuation of it is flat, while
    // token 1 (0.4) is followed by itself with 0.9: greedy gets 0.5·0.34 = 0.17, the best
    // two-token sequence is [1, 1] with 0.36.
    let ln = |p: f64| p.ln() as f32;
    let model = Markov {
        v: 3,
        table: vec![ln(0.34), ln(0.33), ln(0.33), ln(0.05), ln(0.9), ln(0.05), ln(0.4), ln(0.3), ln(0.3)],
        calls: 0,
        widest: 0,
    };
    let first = [ln(0.5), ln(0.4), ln(0.1)];
    let (g, glp) = greedy_decode(&model, &first, 2, &[]);
    assert_eq!(g, vec![0, 0]);
    let cfg = BeamConfig { beams: 1, max_tokens: 2, length_penalty: 0.0, stop_tokens: vec![] };
    let one = beam_search(&mut model.clone(), (0, 0), &first, &cfg, &AtomicBool::new(false)).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].0, g);
    assert!((one[0].2 - glp).abs() < 1e-9);

    let mut m = model.clone();
    let two = beam_search(&mut m, (0, 0), &first, &BeamConfig { beams: 2, ..cfg }, &AtomicBool::new(false)).unwrap();
    assert_eq!(two[0].0, vec![1, 1]);
    assert!((two[0].2 - 0.36f64.ln()).abs() < 1e-6, "{}", two[0].2);
    assert!(two[0].2 > glp);
    // Both beams are stepped in one call.
    assert_eq!((m.calls, m.widest), (1, 2));
}

#[test]
fn one_beam_is_exactly_greedy_on_random_chains() {
    let mut gen = Rng::new(100);
    for case in 0..200 {
        let v = 2 + gen.below(6);
        let mut model = Markov::random(&mut gen, v);
        let first = random_logits(&mut gen, v, 1.5);
        let stops: Vec<u32> = if case % 2 == 0 { vec![gen.below(v) as u32] } else { vec![] };
        let max_tokens = 1 + gen.below(8);
        // A length penalty must not change greedy decoding: the single beam stops at its stop
        // token as greedy does.
        let alpha = [0.0, 0.6, 1.5][case % 3];
        let (g, glp) = greedy_decode(&model, &first, max_tokens, &stops);
        let cfg = BeamConfig { beams: 1, max_tokens, length_penalty: alpha, stop_tokens: stops };
        let got = beam_search(&mut model, (0, 0), &first, &cfg, &AtomicBool::new(false)).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, g, "case {case}");
        assert!((got[0].2 - glp).abs() < 1e-9);
        assert!((got[0].1 - gnmt(glp, g.len(), alpha)).abs() < 1e-9);
    }
}

#[test]
fn wide_beams_find_the_exhaustive_optimum() {
    let mut gen = Rng::new(200);
    let mut greedy_suboptimal = 0;
    for case in 0..60 {
        let v = 2 + gen.below(3);
        let depth = 2 + gen.below(3);
        let model = Markov::random(&mut gen, v);
        let first = random_logits(&mut gen, v, 1.5);
        let stops: Vec<u32> = if case % 3 == 0 { vec![] } else { vec![gen.below(v) as u32] };
        let alpha = [0.0, 0.7, -0.5][case % 3];

        let mut all: Vec<(Vec<u32>, f64, f64)> = all_hypotheses(&model, &first, depth, &stops)
            .into_iter()
            .map(|(s, lp)| {
                let score = gnmt(lp, s.len(), alpha);
                (s, score, lp)
            })
            .collect();
        all.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
        let beams = v.pow(depth as u32);
        let cfg = BeamConfig { beams, max_tokens: depth, length_penalty: alpha, stop_tokens: stops.clone() };
        let got = beam_search(&mut model.clone(), (0, 0), &first, &cfg, &AtomicBool::new(false)).unwrap();
        // Beams ≥ V^depth keep every hypothesis: the whole ranking equals the exhaustive one.
        assert_same_ranking(&model, &first, &cfg, &got, &all, case);

        // A narrower beam never does worse than greedy under a plain log-probability ranking.
        if alpha == 0.0 {
            let (g, glp) = greedy_decode(&model, &first, depth, &stops);
            let narrow = beam_search(
                &mut model.clone(),
                (0, 0),
                &first,
                &BeamConfig { beams: 2, ..cfg },
                &AtomicBool::new(false),
            )
            .unwrap();
            assert!(narrow[0].2 >= glp - 1e-12);
            if all[0].0 != g {
                greedy_suboptimal += 1;
            }
        }
    }
    // The chains must actually exercise the case where search matters.
    assert!(greedy_suboptimal > 0);
}

/// The documented beam procedure written plainly: rank every continuation of every live
/// hypothesis, keep the best `beams`, finish those ending in a stop token or at `max_tokens`,
/// and never stop early. Used to check the batched, pre-filtered and early-stopping version.
fn reference_beam(model: &Markov, first: &[f32], cfg: &BeamConfig) -> Vec<(Vec<u32>, f64, f64)> {
    let mut live = vec![(Vec::<u32>::new(), 0.0f64, first.to_vec())];
    let mut finished = Vec::new();
    for step in 0..cfg.max_tokens {
        let mut cands = Vec::new();
        for (b, (_, lp, row)) in live.iter().enumerate() {
            for t in 0..model.v as u32 {
                cands.push((lp + log_prob(row, t), b, t));
            }
        }
        cands.sort_by(|x, y| y.0.partial_cmp(&x.0).unwrap().then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
        let mut next = Vec::new();
        for &(lp, b, t) in cands.iter().take(cfg.beams) {
            let mut s = live[b].0.clone();
            s.push(t);
            if cfg.stop_tokens.contains(&t) || step + 1 == cfg.max_tokens {
                let score = gnmt(lp, s.len(), cfg.length_penalty);
                finished.push((s, score, lp));
            } else {
                let row = model.row(s.len(), t).to_vec();
                next.push((s, lp, row));
            }
        }
        live = next;
    }
    finished.sort_by(|x, y| y.1.partial_cmp(&x.1).unwrap());
    finished.truncate(cfg.beams);
    finished
}

#[test]
fn narrow_beams_match_the_reference_procedure() {
    let mut gen = Rng::new(400);
    for case in 0..300 {
        let v = 2 + gen.below(5);
        let mut model = Markov::random(&mut gen, v);
        let first = random_logits(&mut gen, v, 1.5);
        let stops: Vec<u32> = (0..gen.below(3)).map(|_| gen.below(v) as u32).collect();
        let cfg = BeamConfig {
            beams: 2 + gen.below(4),
            max_tokens: 1 + gen.below(7),
            // Positive α rewards length, so live hypotheses can overtake finished ones: the
            // early stop has to use the length-aware bound to be exact.
            length_penalty: [0.0, 0.6, 2.0, -0.4][case % 4],
            stop_tokens: stops,
        };
        let got = beam_search(&mut model, (0, 0), &first, &cfg, &AtomicBool::new(false)).unwrap();
        let want = reference_beam(&model, &first, &cfg);
        assert_same_ranking(&model, &first, &cfg, &got, &want, case);
        assert!(model.calls < cfg.max_tokens && model.widest <= cfg.beams);
    }
}

#[test]
fn beam_search_rejects_bad_input() {
    let mut gen = Rng::new(300);
    let mut model = Markov::random(&mut gen, 4);
    let cfg = BeamConfig { beams: 2, max_tokens: 3, length_penalty: 0.0, stop_tokens: vec![] };
    let err = beam_search(&mut model, (0, 0), &[0.0; 3], &cfg, &AtomicBool::new(false)).unwrap_err();
    assert!(err.to_string().starts_with("first_logits:"), "{err}");
    let err = beam_search(&mut model, (0, 0), &[0.0, f32::NAN, 0.0, 0.0], &cfg, &AtomicBool::new(false)).unwrap_err();
    assert_eq!(err.code(), "ERR_RNNKIT_NON_FINITE");
    let bad_stop = BeamConfig { stop_tokens: vec![4], ..cfg.clone() };
    let err = beam_search(&mut model, (0, 0), &[0.0; 4], &bad_stop, &AtomicBool::new(false)).unwrap_err();
    assert!(err.to_string().starts_with("stop_tokens:"), "{err}");
    model.table[5] = f32::INFINITY;
    let err = beam_search(&mut model, (0, 0), &[0.0, 1.0, 0.0, 0.0], &cfg, &AtomicBool::new(false)).unwrap_err();
    assert!(err.to_string().contains("StepModel::step"), "{err}");
}

/// A model whose logits never end a hypothesis, and which sets `cancel` at its `at`-th step.
struct CancelAt<'a> {
    cancel: &'a AtomicBool,
    at: usize,
    calls: usize,
}

impl StepModel for CancelAt<'_> {
    type State = ();
    fn step(&mut self, _: &mut [()], _: &[u32], logits_out: &mut [f32]) -> Result<()> {
        self.calls += 1;
        if self.calls == self.at {
            self.cancel.store(true, Ordering::Relaxed);
        }
        logits_out.iter_mut().enumerate().for_each(|(i, l)| *l = (i % 3) as f32);
        Ok(())
    }
    fn vocab_size(&self) -> usize {
        3
    }
}

#[test]
fn beam_search_stops_at_the_step_after_cancel() {
    let cancel = AtomicBool::new(false);
    let mut model = CancelAt { cancel: &cancel, at: 50, calls: 0 };
    let cfg = BeamConfig { beams: 8, max_tokens: 1_000_000, length_penalty: 1.0, stop_tokens: vec![] };
    let err = beam_search(&mut model, (), &[0.0, 1.0, 2.0], &cfg, &cancel).unwrap_err();
    assert_eq!(err.code(), "ABORT_ERR");
    assert_eq!(model.calls, 50, "no step after the one that saw the cancel");
    // Cancelled before it starts: no step at all.
    let mut model = CancelAt { cancel: &cancel, at: 0, calls: 0 };
    assert!(matches!(beam_search(&mut model, (), &[0.0; 3], &cfg, &cancel), Err(rnn_core::Error::Aborted)));
    assert_eq!(model.calls, 0);
}
