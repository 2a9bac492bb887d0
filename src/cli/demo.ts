/**
 * `rnnkit demo`: the main job of rnnkit on the bundled default, in one command.
 *
 * Trains a character-level LSTM on Jane Austen's *Pride and Prejudice* (`data/`, found relative
 * to the package, not the working directory) for a bounded time with the last 10 % of the text
 * held out; then samples at temperatures 0.5, 0.8 and 1.0 (seeded), measures the held-out bits
 * per character under the stateful protocol, and writes the model and an SVG of the loss curves.
 * Ctrl-C ends training early; the demo then samples, evaluates and saves as usual.
 */

import { Command, Option } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lossSeries, svgChart, terminalChart } from '../chart';
import { TextCorpus } from '../dataset';
import { fitWithProgress, ProgressReporter } from '../progress';
import type { History } from '../types';
import { EXIT_INTERRUPTED, exitingWith, type ExitCode } from './exit';
import { makeIo, progressMode } from './io';
import { api } from './models';
import { jsonOption, numOption } from './options';
import { SEED } from './parsers';

/**
 * The demo's settings: what learnt the most in two minutes on two (shared) cores. Measured with
 * this engine, 120 s each, held-out bits per character: 1-layer LSTM H=128, lr 4e-3: 2.27
 * (582 steps); 1-layer H=256, lr 3e-3: 2.35 (280 steps); 2-layer H=256 managed under 300 steps.
 * A small fast model sees more text in the time than a large slow one.
 */
export const DEMO_DEFAULTS = Object.freeze({
  /** Training time in seconds. */
  timeLimit: 120,
  /** Output directory (model.safetensors, loss.svg). */
  outDir: path.join('runs', 'demo'),
  /** Seed of initialisation, window order and the samples. */
  seed: 0,
  hiddenSize: 128,
  numLayers: 1,
  embedDim: 64,
  seqLen: 100,
  batchSize: 32,
  lr: 4e-3,
  clipNorm: 1,
  /** Fraction of the text (its tail) held out for validation and the bits-per-character figure. */
  validation: 0.1,
  /** Steps between validation passes. */
  validateEvery: 150,
  /** Sampling temperatures. */
  temperatures: [0.5, 0.8, 1.0] as readonly number[],
  /** Characters per sample. */
  sampleLength: 300,
  /** What each sample continues. */
  prompt: 'Elizabeth ',
});

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Training time in seconds. Default {@link DEMO_DEFAULTS}.timeLimit. */
  timeLimit?: number;
  /** Output directory. Default `runs/demo`. */
  outDir?: string;
  /** Seed. Default 0. */
  seed?: number;
}

/** Where {@link runDemo} reports. */
export interface DemoHooks {
  /** Shows training progress (and is finished when training ends). */
  reporter: ProgressReporter;
  /** Writes a log line (stderr). */
  log: (message: string) => void;
}

/** One sample of the demo. */
export interface DemoSample {
  temperature: number;
  seed: number;
  prompt: string;
  /** The generated continuation (prompt not included). */
  text: string;
}

/** What the demo produced. */
export interface DemoResult {
  /** Held-out cross-entropy in bits per character (stateful evaluation). */
  bitsPerChar: number;
  /** Held-out loss in nats per character. */
  heldOutLoss: number;
  /** Characters of the held-out tail that were predicted. */
  heldOutChars: number;
  samples: DemoSample[];
  history: History;
  /** True when Ctrl-C ended training early. */
  interrupted: boolean;
  modelPath: string;
  chartPath: string;
  numParams: number;
  /** The settings used. */
  settings: Record<string, unknown>;
}

/** The bundled corpus, resolved from this file's location (src/cli/ or dist/cli/), not the cwd. */
export function demoCorpusPath(): string {
  return path.join(__dirname, '..', '..', 'data', 'pride-and-prejudice.txt');
}

/** Runs the demo (see the module documentation). */
export async function runDemo(options: DemoOptions, hooks: DemoHooks): Promise<DemoResult> {
  const d = DEMO_DEFAULTS;
  const timeLimit = options.timeLimit ?? d.timeLimit;
  const outDir = options.outDir ?? d.outDir;
  const seed = options.seed ?? d.seed;
  const { createLanguageModel } = api();
  const corpusPath = demoCorpusPath();
  const corpus = await TextCorpus.fromFile(corpusPath, {
    tokenizerOptions: { type: 'char' },
    seqLen: d.seqLen,
    batchSize: d.batchSize,
    validation: d.validation,
    seed,
  });
  const model = createLanguageModel({
    tokenizer: corpus.tokenizer,
    cell: 'lstm',
    hiddenSize: d.hiddenSize,
    numLayers: d.numLayers,
    embedDim: d.embedDim,
    seed,
  });
  const settings = {
    corpus: path.basename(corpusPath),
    cell: 'lstm',
    hiddenSize: d.hiddenSize,
    numLayers: d.numLayers,
    embedDim: d.embedDim,
    seqLen: d.seqLen,
    batchSize: d.batchSize,
    optimizer: 'adam',
    lr: d.lr,
    clipNorm: d.clipNorm,
    timeLimit,
    seed,
  };
  hooks.log(
    `demo: character LSTM (${d.numLayers} layer${d.numLayers === 1 ? '' : 's'}, hidden ${d.hiddenSize}, embedding ${d.embedDim}, ${model.numParams.toLocaleString('en-US')} parameters) ` +
      `on Pride and Prejudice: ${corpus.numTokens('train').toLocaleString('en-US')} training characters, ${corpus.numTokens('validation').toLocaleString('en-US')} held out, ` +
      `vocabulary ${corpus.tokenizer.vocabSize}; training for ${timeLimit} s (Ctrl-C to stop early)`,
  );
  const { history, interrupted } = await fitWithProgress(
    model,
    corpus,
    {
      timeLimit,
      optimizer: { type: 'adam', lr: d.lr },
      clipNorm: d.clipNorm,
      validateEvery: d.validateEvery,
      seed,
    },
    hooks.reporter,
  );

  const samples: DemoSample[] = [];
  for (const [i, temperature] of d.temperatures.entries()) {
    const text = await model.generate(d.prompt, { temperature, seed: seed + i, maxTokens: d.sampleLength });
    samples.push({ temperature, seed: seed + i, prompt: d.prompt, text });
  }
  const heldOut = await model.evaluate(corpus.validationTokens());

  fs.mkdirSync(outDir, { recursive: true });
  const modelPath = path.join(outDir, 'model.safetensors');
  const chartPath = path.join(outDir, 'loss.svg');
  await model.save(modelPath, { metadata: { demo_bits_per_char: heldOut.bitsPerToken.toFixed(4) } });
  fs.writeFileSync(
    chartPath,
    svgChart(lossSeries(history), {
      title: `rnnkit demo: character LSTM on Pride and Prejudice (held-out ${heldOut.bitsPerToken.toFixed(3)} bits/char)`,
      yLabel: 'cross-entropy (nats/char)',
    }),
  );
  return {
    bitsPerChar: heldOut.bitsPerToken,
    heldOutLoss: heldOut.loss,
    heldOutChars: heldOut.tokens,
    samples,
    history,
    interrupted,
    modelPath,
    chartPath,
    numParams: model.numParams,
    settings,
  };
}

/** `rnnkit demo`. */
async function demo(o: { json?: boolean; timeLimit: number; outDir: string; seed: number }): Promise<number> {
  const io = makeIo(!!o.json);
  const reporter = new ProgressReporter({ mode: progressMode(io.json), stream: process.stderr });
  const result: DemoResult = await runDemo({ timeLimit: o.timeLimit, outDir: o.outDir, seed: o.seed }, { reporter, log: io.log });
  const human = [
    '',
    ...result.samples.flatMap((s) => [`── sample at temperature ${s.temperature} ──`, s.prompt + s.text, '']),
    terminalChart(lossSeries(result.history), { width: 60, height: 12 }),
    `held-out bits per character: ${result.bitsPerChar.toFixed(3)} (stateful evaluation of ${result.heldOutChars.toLocaleString('en-US')} characters)`,
    `trained ${result.history.stepsDone} steps in ${result.history.elapsed.toFixed(0)} s (${result.history.stopReason})`,
    `model written to ${result.modelPath}`,
    `loss curves written to ${result.chartPath}`,
  ].join('\n');
  io.result(human, result);
  return result.interrupted ? EXIT_INTERRUPTED : 0;
}

/** Declares `rnnkit demo` on `program`. */
export function addDemoCommand(program: Command, exit: ExitCode): void {
  program
    .command('demo')
    .summary('train a character LSTM on Pride and Prejudice, then sample')
    .description(
      'Train a character-level LSTM on the bundled Pride and Prejudice for a bounded time, print samples at temperatures 0.5, 0.8 and 1.0 and the held-out bits per character, and write the model and the loss curves.',
    )
    .addOption(numOption('--time-limit <seconds>', 'training time', 0, Infinity, true).default(DEMO_DEFAULTS.timeLimit))
    .addOption(new Option('--out-dir <dir>', 'where the model and loss.svg go').default(DEMO_DEFAULTS.outDir))
    .addOption(new Option('--seed <n>', 'seed of initialisation, shuffling and samples').argParser(SEED).default(DEMO_DEFAULTS.seed))
    .addOption(jsonOption())
    .action(exitingWith(exit, demo));
}
