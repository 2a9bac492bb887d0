#!/usr/bin/env node
/**
 * The `rnnkit` command line: `train`, `generate`, `eval`, `info`, `predict`, `serve`, `demo`.
 *
 * Conventions, the same for every command:
 * - `--help` describes the command; `--json` prints the result as one JSON object on stdout and
 *   sends everything else (progress, log lines) to stderr.
 * - A bad argument or a bad file prints one line, `rnnkit: error: <message>`, on stderr and exits
 *   non-zero: 2 for usage errors (unknown option, bad number, bad combination), 1 for failures
 *   while running (missing or corrupt file, a model error). `RNNKIT_DEBUG=1` adds the stack trace.
 * - Ctrl-C during `train` stops training through an `AbortSignal`, saves a checkpoint (to
 *   `--checkpoint`, else `--out`) and exits 130; during `demo` it ends training early, the demo
 *   still samples, evaluates and saves, and exits 130. A second Ctrl-C exits at once.
 */

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { svgChart, terminalChart, lossSeries } from './chart';
import { DEMO_DEFAULTS, runDemo, type DemoResult } from './demo';
import { fitWithProgress, ProgressReporter, type ProgressMode } from './progress';
import { SPECIAL_TOKENS, type SpecialToken, type TokenizerOptions } from './tokenizer';
import { TextCorpus } from './dataset';
import { createServer, SERVER_DEFAULTS, type CompletionModel, type LogEntry } from './server';
import type { Classifier, LanguageModel, Model, FitOptions, Regressor, Tagger } from './index';
import type { GenerateOptions, OptimizerOptions, ScheduleOptions } from './types';
import type { Tokenizer } from './tokenizer';

/** Exit code of a usage error (bad option, bad value, bad combination). */
export const EXIT_USAGE = 2;
/** Exit code of a failure while running (bad file, model error). */
export const EXIT_FAILURE = 1;
/** Exit code after Ctrl-C (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

/** A usage error found after parsing (e.g. options that do not go together): exit code 2. */
export class UsageError extends Error {}

/** A failure the user caused (bad file, wrong kind of model): one line, exit code 1. */
export class CliError extends Error {}

// ---------------------------------------------------------------------------------------------
// Argument parsers (each throws InvalidArgumentError, which commander reports on one line)

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A parser of integers in [min, max] for commander options. */
export function parseInteger(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!INTEGER.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `expected an integer ≥ ${min}.` : `expected an integer in [${min}, ${max}].`);
    }
    return n;
  };
}

/**
 * A parser of finite numbers for commander options, within [min, max]; `open: true` excludes
 * `min` (e.g. a learning rate must be > 0).
 */
export function parseNumber(min: number, max = Infinity, open = false): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    const ok = DECIMAL.test(value.trim()) && Number.isFinite(n) && (open ? n > min : n >= min) && n <= max;
    if (!ok) {
      const lo = `${open ? '>' : '≥'} ${min}`;
      throw new InvalidArgumentError(max === Infinity ? `expected a number ${lo}.` : `expected a number ${lo} and ≤ ${max}.`);
    }
    return n;
  };
}

/** A parser of a comma-separated list of special token names (`<pad>,<unk>`). */
export function parseSpecials(value: string): SpecialToken[] {
  const names = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const n of names) {
    if (!(SPECIAL_TOKENS as readonly string[]).includes(n)) throw new InvalidArgumentError(`expected special token names from ${SPECIAL_TOKENS.join(',')}, got "${n}".`);
  }
  if (new Set(names).size !== names.length) throw new InvalidArgumentError('a special token is listed twice.');
  return names as SpecialToken[];
}

/** Collects a repeatable string option into an array. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

const SEED = parseInteger(0, 0xffffffff);

// ---------------------------------------------------------------------------------------------
// Output

/** Where a command writes: the result to stdout, everything else to stderr. */
interface Io {
  json: boolean;
  /** Prints the result: `human` text normally, `data` as one JSON line with `--json`. */
  result(human: string, data: unknown): void;
  /** A log line on stderr (a JSON object with `--json`). */
  log(message: string): void;
}

/** The output channel of a command. */
function makeIo(json: boolean): Io {
  return {
    json,
    result: (human, data) => process.stdout.write(json ? JSON.stringify(data) + '\n' : human.endsWith('\n') ? human : human + '\n'),
    log: (message) => process.stderr.write(json ? JSON.stringify({ event: 'log', message }) + '\n' : message + '\n'),
  };
}

/** Progress mode for stderr: JSON lines with `--json`, a bar on a TTY, plain lines otherwise. */
function progressMode(json: boolean): ProgressMode {
  return json ? 'json' : process.stderr.isTTY ? 'tty' : 'plain';
}

// ---------------------------------------------------------------------------------------------
// Files and models

/**
 * The model API, loaded on first use: `--help` and argument errors never load the native
 * engine, and a missing engine binary is reported like any other error.
 */
function api(): typeof import('./index') {
  return require('./index') as typeof import('./index');
}

/** Reads a UTF-8 text file, with one-line errors naming `what` and the path. */
function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw fileError(e, file, what);
  }
}

/** Checks that `file` is a readable regular file. */
function checkReadable(file: string, what: string): void {
  try {
    if (!fs.statSync(file).isFile()) throw new CliError(`${what} ${JSON.stringify(file)} is not a file`);
    fs.accessSync(file, fs.constants.R_OK);
  } catch (e) {
    throw fileError(e, file, what);
  }
}

/** Turns a Node file-system error into a one-line CliError. */
function fileError(e: unknown, file: string, what: string): Error {
  if (e instanceof CliError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new CliError(`${what} ${JSON.stringify(file)} does not exist`);
  if (code === 'EISDIR') return new CliError(`${what} ${JSON.stringify(file)} is a directory, not a file`);
  if (code === 'EACCES') return new CliError(`${what} ${JSON.stringify(file)} cannot be read (permission denied)`);
  return e as Error;
}

/** Loads a model file (any task) after checking the file exists. */
async function openModel(file: string): Promise<Model> {
  checkReadable(file, 'model file');
  return api().loadModel(file);
}

/** Loads a model file that must hold a language model (`generate`, `eval`). */
async function openLanguageModel(file: string, command: string): Promise<LanguageModel> {
  const model = await openModel(file);
  if (!(model instanceof api().LanguageModel)) throw new CliError(`${command} needs a language model; ${JSON.stringify(file)} holds a ${model.config.task} model`);
  return model;
}

/**
 * Runs `fn`, renaming the subject of an API error message for the command line: an error
 * `text: unknown character …` about the argument the API calls `text` becomes
 * `"story.txt": unknown character …`.
 */
async function naming<T>(apiName: string, cliName: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const err = e as Error;
    if (typeof err?.message === 'string' && err.message.startsWith(`${apiName}: `)) err.message = `${cliName}: ${err.message.slice(apiName.length + 2)}`;
    throw err;
  }
}

/** Creates the parent directory of `file` when it is missing. */
function ensureParent(file: string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
}

// ---------------------------------------------------------------------------------------------
// train

/** Parsed options of `rnnkit train`. */
interface TrainOptions {
  json?: boolean;
  tokenizer: 'char' | 'word' | 'byte';
  specials?: SpecialToken[];
  unknown?: 'error' | 'unk';
  lowercase: boolean;
  punctuation?: 'split' | 'drop' | 'keep';
  minCount?: number;
  maxVocab?: number;
  cell: 'rnn' | 'lstm' | 'gru';
  nonlinearity?: 'tanh' | 'relu';
  hidden: number;
  layers: number;
  embed: number;
  dropout: number;
  skip?: boolean;
  seqLen: number;
  batchSize: number;
  stride?: number;
  tbptt?: boolean;
  optimizer: NonNullable<OptimizerOptions['type']>;
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  schedule: NonNullable<ScheduleOptions['type']>;
  warmup?: number;
  stepSize?: number;
  gamma?: number;
  minLr?: number;
  clipNorm?: number;
  epochs?: number;
  maxSteps?: number;
  timeLimit?: number;
  validation: number;
  validateEvery?: number;
  logEvery?: number;
  threads?: number;
  out: string;
  chart?: string;
  checkpoint?: string;
  checkpointEvery?: number;
  resume?: string;
  seed: number;
}

/** Options that describe a new model, refused with `--resume` (the checkpoint fixes them). */
const ARCHITECTURE_OPTIONS = ['tokenizer', 'specials', 'unknown', 'lowercase', 'punctuation', 'minCount', 'maxVocab', 'cell', 'nonlinearity', 'hidden', 'layers', 'embed', 'dropout', 'skip'];
/** Options only a word tokenizer has. */
const WORD_OPTIONS = ['lowercase', 'punctuation', 'minCount', 'maxVocab'];

/**
 * Metadata key under which `train` stores the windowing of a run, so that `--resume` reads the
 * text the same way (the checkpoint's position counts windows of that size).
 */
const WINDOWING_KEY = 'rnnkit_cli_windowing';
/** The options that fix the windowing of a run. */
const WINDOWING_OPTIONS = ['seqLen', 'batchSize', 'stride', 'tbptt', 'validation'] as const;
type Windowing = Pick<TrainOptions, (typeof WINDOWING_OPTIONS)[number]>;

/**
 * On `--resume`: takes the checkpoint's windowing for the options not given, and refuses given
 * ones that differ (the saved position would point elsewhere in the text).
 */
function applyResumedWindowing(o: TrainOptions, cmd: Command, model: LanguageModel, file: string): void {
  const stored = model.metadata[WINDOWING_KEY];
  if (stored === undefined) return;
  const w = JSON.parse(stored) as Windowing;
  for (const key of WINDOWING_OPTIONS) {
    if (cmd.getOptionValueSource(key) === 'cli' && o[key] !== w[key]) {
      throw new UsageError(`${flag(key)} ${o[key]} differs from the ${w[key] ?? 'default'} that ${JSON.stringify(file)} was trained with; a resumed run keeps its windowing`);
    }
    (o as unknown as Record<string, unknown>)[key] = w[key];
  }
}

/** `--camelCase` key → `--kebab-case` flag, for messages. */
function flag(key: string): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()).replace(/^lowercase$/, 'no-lowercase');
}

/** Checks combinations commander cannot check alone. */
function checkTrainCombination(o: TrainOptions, cmd: Command): void {
  const given = (key: string) => cmd.getOptionValueSource(key) === 'cli';
  if (o.resume) {
    const clash = ARCHITECTURE_OPTIONS.find(given);
    if (clash) throw new UsageError(`${flag(clash)} cannot be used with --resume: the checkpoint fixes the tokenizer and the architecture`);
  }
  if (o.tokenizer !== 'word') {
    const clash = WORD_OPTIONS.find(given);
    if (clash) throw new UsageError(`${flag(clash)} is a word tokenizer option; add --tokenizer word`);
  }
  if (o.tokenizer === 'word' && (given('maxVocab') || given('minCount')) && !o.specials?.includes('<unk>')) {
    throw new UsageError(`${given('maxVocab') ? '--max-vocab' : '--min-count'} leaves words out of the vocabulary; add --specials "<unk>" so that they map to <unk>`);
  }
  if (o.tokenizer === 'byte' && given('unknown')) throw new UsageError('--unknown does not apply to --tokenizer byte (every byte is known)');
  if (given('nonlinearity') && o.cell !== 'rnn') throw new UsageError('--nonlinearity applies to --cell rnn only');
  if (given('checkpointEvery') && !o.checkpoint) throw new UsageError('--checkpoint-every needs --checkpoint <path>');
  if ((given('stepSize') || given('gamma')) && o.schedule !== 'step' && o.schedule !== 'exponential') throw new UsageError('--step-size and --gamma go with --schedule step or exponential');
  if (o.schedule === 'step' && !given('stepSize')) throw new UsageError('--schedule step needs --step-size <steps>');
  if (given('minLr') && o.schedule !== 'cosine') throw new UsageError('--min-lr goes with --schedule cosine');
  if (o.schedule === 'cosine' && o.maxSteps === undefined) throw new UsageError('--schedule cosine needs --max-steps (the cosine period)');
  if (given('momentum') && o.optimizer !== 'sgd' && o.optimizer !== 'rmsprop') throw new UsageError('--momentum goes with --optimizer sgd or rmsprop');
}

/** The tokenizer options of a new model. */
function tokenizerOptions(o: TrainOptions): TokenizerOptions {
  if (o.tokenizer === 'byte') return { type: 'byte', specials: o.specials };
  if (o.tokenizer === 'char') return { type: 'char', specials: o.specials, unknown: o.unknown };
  return { type: 'word', specials: o.specials, unknown: o.unknown, lowercase: o.lowercase, punctuation: o.punctuation, minCount: o.minCount, maxVocabSize: o.maxVocab };
}

/**
 * Reads the corpus files, naming the command-line flag instead of the API option in errors
 * (`options.seqLen: …` becomes `--seq-len: …`).
 */
async function loadCorpus(files: string[], o: TrainOptions, tokenizer: LanguageModel['tokenizer']): Promise<TextCorpus> {
  try {
    return await readCorpus(files, o, tokenizer);
  } catch (e) {
    const err = e as Error;
    const m = /^options\.(seqLen|batchSize|stride|validation|seed)\b/.exec(err.message);
    if (m) err.message = flag(m[1]) + err.message.slice(m[0].length);
    throw err;
  }
}

/** Reads the corpus files: one file is streamed; several are joined with blank lines between. */
async function readCorpus(files: string[], o: TrainOptions, tokenizer: LanguageModel['tokenizer']): Promise<TextCorpus> {
  for (const f of files) checkReadable(f, 'corpus file');
  const common = {
    seqLen: o.seqLen,
    stride: o.stride,
    batchSize: o.batchSize,
    seed: o.seed,
    ...(tokenizer ? { tokenizer } : { tokenizerOptions: tokenizerOptions(o) }),
  };
  if (files.length === 1) return TextCorpus.fromFile(files[0], { ...common, validation: o.validation });
  const text = files.map((f) => readText(f, 'corpus file')).join('\n\n');
  return TextCorpus.fromString(text, { ...common, validation: o.validation });
}

/** The `fit` options of a run, without the signal and the progress callback. */
function fitOptions(o: TrainOptions): FitOptions {
  const optimizer: OptimizerOptions = { type: o.optimizer };
  if (o.lr !== undefined) optimizer.lr = o.lr;
  if (o.momentum !== undefined) optimizer.momentum = o.momentum;
  if (o.weightDecay !== undefined) optimizer.weightDecay = o.weightDecay;
  const schedule: ScheduleOptions = { type: o.schedule };
  if (o.warmup !== undefined) schedule.warmupSteps = o.warmup;
  if (o.stepSize !== undefined) schedule.stepSize = o.stepSize;
  if (o.gamma !== undefined) schedule.gamma = o.gamma;
  if (o.minLr !== undefined) schedule.etaMin = o.minLr;
  const f: FitOptions = { batchSize: o.batchSize, seqLen: o.seqLen, optimizer, schedule, seed: o.seed };
  if (o.stride !== undefined) f.stride = o.stride;
  if (o.tbptt) f.tbptt = true;
  if (o.clipNorm !== undefined) f.clipNorm = o.clipNorm;
  if (o.epochs !== undefined) f.epochs = o.epochs;
  if (o.maxSteps !== undefined) f.maxSteps = o.maxSteps;
  if (o.timeLimit !== undefined) f.timeLimit = o.timeLimit;
  if (o.validateEvery !== undefined) f.validateEvery = o.validateEvery;
  if (o.logEvery !== undefined) f.logEvery = o.logEvery;
  if (o.checkpoint) f.checkpoint = { path: o.checkpoint, every: o.checkpointEvery ?? 1000 };
  return f;
}

/** The last finite value of an array, or undefined. */
function lastFinite(values: readonly number[]): number | undefined {
  for (let i = values.length - 1; i >= 0; i--) if (Number.isFinite(values[i])) return values[i];
  return undefined;
}

/** `rnnkit train`. */
async function train(corpora: string[], o: TrainOptions, cmd: Command): Promise<number> {
  checkTrainCombination(o, cmd);
  // The engine's thread pool reads this when it starts (the engine is not loaded yet).
  if (o.threads !== undefined) process.env.RAYON_NUM_THREADS = String(o.threads);
  const io = makeIo(!!o.json);
  let model: LanguageModel;
  if (o.resume) {
    model = await openLanguageModel(o.resume, 'train --resume');
    if (!model.tokenizer) throw new CliError(`checkpoint ${JSON.stringify(o.resume)} has no tokenizer, so text cannot be encoded for it`);
    applyResumedWindowing(o, cmd, model, o.resume);
  }
  const corpus = await loadCorpus(corpora, o, o.resume ? model!.tokenizer : null);
  if (!o.resume) {
    model = api().createLanguageModel({
      tokenizer: corpus.tokenizer,
      cell: o.cell,
      nonlinearity: o.nonlinearity,
      hiddenSize: o.hidden,
      numLayers: o.layers,
      embedDim: o.embed,
      dropout: o.dropout,
      skip: !!o.skip,
      seed: o.seed,
    });
  }
  const m = model!;
  const windowing: Windowing = { seqLen: o.seqLen, batchSize: o.batchSize, stride: o.stride, tbptt: !!o.tbptt, validation: o.validation };
  m.setMetadata(WINDOWING_KEY, JSON.stringify(windowing));
  io.log(`${o.resume ? 'resuming' : 'training'} a ${m.config.cell ?? o.cell} model with ${m.numParams.toLocaleString('en-US')} parameters on ${corpus.trainTokens().length.toLocaleString('en-US')} tokens (${corpus.tokenizer.type} tokenizer, vocabulary ${corpus.tokenizer.vocabSize}); validation ${corpus.validationTokens().length.toLocaleString('en-US')} tokens`);
  const reporter = new ProgressReporter({ mode: progressMode(io.json), stream: process.stderr });
  const { history, interrupted } = await fitWithProgress(m, corpus, fitOptions(o), reporter);

  const target = interrupted ? (o.checkpoint ?? o.out) : o.out;
  ensureParent(target);
  await m.save(target, { checkpoint: interrupted });
  if (interrupted) io.log(`checkpoint saved to ${target}; continue with --resume ${target}`);
  if (o.chart) {
    ensureParent(o.chart);
    fs.writeFileSync(o.chart, svgChart(lossSeries(history), { title: `rnnkit train: ${corpora.map((c) => path.basename(c)).join(', ')}`, yLabel: 'loss (nats/token)' }));
  }
  const data = {
    model: target,
    checkpoint: interrupted,
    chart: o.chart ?? null,
    stopReason: history.stopReason,
    steps: history.stepsDone,
    tokens: history.tokens,
    elapsed: history.elapsed,
    loss: lastFinite(history.loss) ?? null,
    valLoss: lastFinite(history.valLoss) ?? null,
    valBitsPerToken: lastFinite(history.valLoss) === undefined ? null : lastFinite(history.valLoss)! / Math.LN2,
    numParams: m.numParams,
    history,
  };
  const human = [
    io.json ? '' : terminalChart(lossSeries(history), { width: 60, height: 10 }),
    `stopped: ${history.stopReason} after ${history.stepsDone} steps, ${history.tokens.toLocaleString('en-US')} tokens, ${history.elapsed.toFixed(1)} s`,
    `training loss ${data.loss?.toFixed(4) ?? '--'}` + (data.valLoss === null ? '' : `, validation loss ${data.valLoss.toFixed(4)} (${data.valBitsPerToken!.toFixed(3)} bits/token)`),
    `${interrupted ? 'checkpoint' : 'model'} written to ${target}` + (o.chart ? `; loss curves in ${o.chart}` : ''),
  ].join('\n');
  io.result(human, data);
  return interrupted ? EXIT_INTERRUPTED : 0;
}

// ---------------------------------------------------------------------------------------------
// generate

/** Parsed options of `rnnkit generate`. */
interface GenerateCliOptions {
  json?: boolean;
  prompt: string;
  maxTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  stop?: string[];
  seed?: number;
  greedy?: boolean;
  beams?: number;
  lengthPenalty?: number;
  stream?: boolean;
  echo: boolean;
}

/** `rnnkit generate`. */
async function generate(file: string, o: GenerateCliOptions): Promise<number> {
  if (o.stream && o.beams !== undefined && o.beams > 1) throw new UsageError('--beams cannot be used with --stream (beam search returns whole sequences)');
  if (o.greedy && (o.temperature !== undefined || o.topK !== undefined || o.topP !== undefined)) throw new UsageError('--greedy ignores --temperature, --top-k and --top-p; give one or the other');
  const io = makeIo(!!o.json);
  const model = await openLanguageModel(file, 'generate');
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  const options: GenerateOptions = { maxTokens: o.maxTokens, signal: controller.signal };
  if (o.temperature !== undefined) options.temperature = o.temperature;
  if (o.topK !== undefined) options.topK = o.topK;
  if (o.topP !== undefined) options.topP = o.topP;
  if (o.repetitionPenalty !== undefined) options.repetitionPenalty = o.repetitionPenalty;
  if (o.stop) options.stop = o.stop;
  if (o.seed !== undefined) options.seed = o.seed;
  if (o.greedy) options.greedy = true;
  if (o.beams !== undefined) options.beams = o.beams;
  if (o.lengthPenalty !== undefined) options.lengthPenalty = o.lengthPenalty;
  try {
    return await naming('text', '--prompt', async () => {
      if (o.stream) {
        const s = model.stream(o.prompt, options);
        if (!io.json && o.echo) process.stdout.write(o.prompt);
        for await (const piece of s) process.stdout.write(io.json ? JSON.stringify({ text: piece }) + '\n' : piece);
        const c = await s.completion;
        if (io.json) process.stdout.write(JSON.stringify({ done: true, ...c }) + '\n');
        else process.stdout.write('\n');
        return c.finishReason === 'abort' ? EXIT_INTERRUPTED : 0;
      }
      const c = await model.complete(o.prompt, options);
      io.result((o.echo ? o.prompt : '') + c.text, { prompt: o.prompt, ...c });
      return 0;
    });
  } catch (e) {
    if ((e as { code?: string }).code === 'ABORT_ERR' && controller.signal.aborted) return EXIT_INTERRUPTED;
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

// ---------------------------------------------------------------------------------------------
// eval, info

/** `rnnkit eval`. */
async function evaluate(file: string, textFile: string, o: { json?: boolean; chunk?: number }): Promise<number> {
  const io = makeIo(!!o.json);
  const model = await openLanguageModel(file, 'eval');
  const text = readText(textFile, 'text file');
  if (text.length === 0) throw new CliError(`text file ${JSON.stringify(textFile)} is empty`);
  const r = await naming('text', `text file ${JSON.stringify(textFile)}`, () => model.evaluate(text, o.chunk === undefined ? {} : { chunk: o.chunk }));
  const human = [
    `tokens      ${r.tokens.toLocaleString('en-US')}`,
    `loss        ${r.loss.toFixed(4)} nats/token`,
    `perplexity  ${r.perplexity.toFixed(3)}`,
    `bits/token  ${r.bitsPerToken.toFixed(4)}`,
  ].join('\n');
  io.result(human, { model: file, text: textFile, ...r });
  return 0;
}

/** A byte count for people. */
function formatBytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** `rnnkit info`. */
async function info(file: string, o: { json?: boolean }): Promise<number> {
  const io = makeIo(!!o.json);
  const model = await openModel(file);
  const engine = api().engineInfo();
  const size = fs.statSync(file).size;
  const task = model.config.task;
  const tok = (model as Model & { tokenizer?: Tokenizer | null }).tokenizer ?? null;
  const tokenizer = tok ? { type: tok.type, vocabSize: tok.vocabSize, specials: { ...tok.specials } } : null;
  const data = { file, bytes: size, task, numParams: model.numParams, config: model.config, tokenizer, metadata: model.metadata, engine };
  const meta = Object.entries(model.metadata);
  const width = Math.max(12, ...[...Object.keys(model.config), ...meta.map(([k]) => k)].map((k) => k.length + 2)) + 2;
  const pad = (k: string) => k.padEnd(width);
  const lines = [`${pad('file')}${file} (${formatBytes(size)})`, `${pad('task')}${task}`, `${pad('parameters')}${model.numParams.toLocaleString('en-US')}`, 'config'];
  for (const [k, v] of Object.entries(model.config)) lines.push(`${pad('  ' + k)}${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  lines.push(`${pad('tokenizer')}${tokenizer ? `${tokenizer.type}, vocabulary ${tokenizer.vocabSize}${Object.keys(tokenizer.specials).length ? `, specials ${Object.keys(tokenizer.specials).join(' ')}` : ''}` : 'none (token ids only)'}`);
  if (meta.length) {
    lines.push('metadata');
    for (const [k, v] of meta) lines.push(`${pad('  ' + k)}${v.length > 200 ? v.slice(0, 200) + '…' : v}`);
  }
  lines.push(`${pad('engine')}rnnkit native ${engine.version}, SIMD ${engine.simd.length ? engine.simd.join(' ') : 'none'}, ${engine.threads} threads`);
  io.result(lines.join('\n'), data);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// predict

/**
 * Reads one dense input for a regression (or dense) model: a JSON array of numbers, flat or as
 * rows of `inputSize`; its length must be a multiple of `inputSize`.
 */
export function parseDenseInput(text: string, inputSize: number, where: string): Float32Array {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliError(`${where}: a dense model takes a JSON array of numbers, e.g. [[0.1, 0.2], [0.3, 0.4]]`);
  }
  const flat = Array.isArray(value) ? (value as unknown[]).flat() : [value];
  if (flat.length === 0 || flat.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
    throw new CliError(`${where}: expected a non-empty JSON array of finite numbers`);
  }
  if (flat.length % inputSize !== 0) throw new CliError(`${where}: ${flat.length} numbers are not whole steps of ${inputSize} features`);
  return Float32Array.from(flat as number[]);
}

/** `rnnkit predict`: classifies, tags or regresses each input. */
async function predict(file: string, inputs: string[], o: { json?: boolean; file?: string }): Promise<number> {
  const io = makeIo(!!o.json);
  if (o.file) inputs = [...inputs, ...readText(o.file, 'input file').split(/\r?\n/).filter((l) => l.trim().length > 0)];
  if (inputs.length === 0) throw new UsageError('give inputs as arguments or --file <path> (one input a line)');
  const model = await openModel(file);
  const task = model.config.task;
  if (task === 'language_model') throw new CliError(`predict needs a classify, tag or regress model; ${JSON.stringify(file)} holds a language model (use generate or eval)`);
  const where = (i: number) => (inputs.length === 1 ? 'input' : `input ${i + 1}`);
  if (task === 'regress') {
    const m = model as Regressor;
    const rows = inputs.map((t, i) => parseDenseInput(t, m.inputSize!, where(i)));
    const out = (await m.predict(rows)).map((v) => Array.from(v));
    io.result(out.map((v) => v.map((x) => x.toPrecision(6)).join(' ')).join('\n'), { task, predictions: out });
    return 0;
  }
  const dense = (model as Classifier | Tagger).inputSize !== null;
  const rows = dense ? inputs.map((t, i) => parseDenseInput(t, (model as Classifier).inputSize!, where(i))) : inputs;
  if (task === 'classify') {
    const out = await (model as Classifier).predict(rows);
    io.result(out.map((p, i) => `${String(p.label)}\t${p.probability.toFixed(3)}\t${dense ? where(i) : inputs[i]}`).join('\n'), { task, predictions: out });
    return 0;
  }
  const out = await (model as Tagger).predict(rows);
  io.result(out.map((p) => p.tags.map((t, k) => (dense ? String(t) : `${p.tokens[k]}/${String(t)}`)).join(' ')).join('\n'), { task, predictions: out });
  return 0;
}

// ---------------------------------------------------------------------------------------------
// serve

/** Parsed options of `rnnkit serve`. */
interface ServeOptions {
  json?: boolean;
  host: string;
  port: number;
  modelId?: string;
  maxPromptTokens: number;
  maxTokens: number;
  defaultMaxTokens: number;
  maxConcurrent: number;
  maxQueue: number;
  bodyLimit: number;
  requestTimeout: number;
  shutdownTimeout: number;
  quiet?: boolean;
}

/** The server's view of a language model: its id and token counting added. */
function completionModel(model: LanguageModel, id: string): CompletionModel {
  if (!model.tokenizer) throw new CliError('serve needs a model with a tokenizer (this one has token ids only)');
  return {
    id,
    countTokens: (text) => model.countTokens(text),
    complete: (prompt, options) => model.complete(prompt, options),
    stream: (prompt, options) => model.stream(prompt, options),
  };
}

/** One log record of the server as a line for people. */
function formatLogEntry(e: LogEntry): string {
  return `${new Date().toISOString()} ${e.level.padEnd(5)} ${e.message}`;
}

/** One log record of the server as a JSON line (errors in `data` become their messages). */
function logEntryJSON(e: LogEntry): string {
  const data = e.data && Object.fromEntries(Object.entries(e.data).map(([k, v]) => [k, v instanceof Error ? v.message : v]));
  return JSON.stringify({ ...e, data });
}

/** `rnnkit serve`: runs until SIGINT/SIGTERM, then shuts down gracefully. */
async function serve(file: string, o: ServeOptions): Promise<number> {
  if (o.defaultMaxTokens > o.maxTokens) throw new UsageError(`--default-max-tokens (${o.defaultMaxTokens}) must be ≤ --max-tokens (${o.maxTokens})`);
  const io = makeIo(!!o.json);
  const model = await openLanguageModel(file, 'serve');
  const id = o.modelId ?? path.basename(file).replace(/\.safetensors$/, '');
  const server = createServer(completionModel(model, id), {
    host: o.host,
    port: o.port,
    maxPromptTokens: o.maxPromptTokens,
    maxTokens: o.maxTokens,
    defaultMaxTokens: o.defaultMaxTokens,
    maxConcurrent: o.maxConcurrent,
    maxQueue: o.maxQueue,
    bodyLimit: o.bodyLimit,
    requestTimeout: o.requestTimeout,
    shutdownTimeout: o.shutdownTimeout,
    onLog: (e) => {
      if (o.quiet && (e.level === 'debug' || e.level === 'info')) return;
      process.stderr.write((io.json ? logEntryJSON(e) : formatLogEntry(e)) + '\n');
    },
  });
  const { url } = await server.listen();
  io.result(`serving ${id} at ${url}/v1 (OpenAI-compatible: POST /v1/completions, GET /v1/models, GET /healthz); Ctrl-C to stop`, { url, baseURL: `${url}/v1`, model: id });
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  io.log(`${signal}: shutting down (live generations get up to ${o.shutdownTimeout} ms; ${signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'} again to quit at once)`);
  const force = () => process.exit(EXIT_INTERRUPTED);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  await server.close({ graceful: true });
  process.off('SIGINT', force);
  process.off('SIGTERM', force);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// demo

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

// ---------------------------------------------------------------------------------------------
// The program

/** Reads the package version for `--version`. */
function packageVersion(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version as string;
  } catch {
    return 'unknown';
  }
}

/**
 * Builds the `rnnkit` program. Actions store their exit code in `exit.code`; commander's own
 * usage errors surface as a `CommanderError` (with `exitOverride`).
 */
export function buildProgram(exit: { code: number }): Command {
  const program = new Command();
  program
    .name('rnnkit')
    .description('Recurrent neural networks (RNN, LSTM, GRU) for Node.js with a Rust core.')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ outputError: (str, write) => write(`rnnkit: ${str.trim().replace(/\s*\n\s*/g, ' ')}\n`) });

  const run = <A extends unknown[]>(fn: (...args: A) => Promise<number>) => async (...args: A) => {
    exit.code = await fn(...args);
  };
  const json = () => new Option('--json', 'print the result as JSON on stdout (logs and progress on stderr)');
  const int = (flags: string, description: string, min: number, max?: number) => new Option(flags, description).argParser(parseInteger(min, max));
  const num = (flags: string, description: string, min: number, max?: number, open?: boolean) => new Option(flags, description).argParser(parseNumber(min, max, open));

  program
    .command('train')
    .summary('train a language model on text files')
    .description('Train a language model on one or more UTF-8 text files (joined with blank lines). Writes the model to --out.')
    .argument('<corpus...>', 'UTF-8 text files')
    .optionsGroup('Tokenizer:')
    .addOption(new Option('--tokenizer <type>', 'tokenizer kind').choices(['char', 'word', 'byte']).default('char'))
    .addOption(new Option('--specials <list>', 'special tokens to add, comma-separated (<pad>,<unk>,<bos>,<eos>)').argParser(parseSpecials))
    .addOption(new Option('--unknown <policy>', 'unknown text at encode time: error, or map to <unk>').choices(['error', 'unk']))
    .addOption(new Option('--no-lowercase', 'word tokenizer: keep case'))
    .addOption(new Option('--punctuation <mode>', 'word tokenizer: punctuation as tokens, dropped, or kept on words').choices(['split', 'drop', 'keep']))
    .addOption(int('--min-count <n>', 'word tokenizer: keep words seen at least n times', 1))
    .addOption(int('--max-vocab <n>', 'word tokenizer: largest vocabulary (specials included)', 1))
    .optionsGroup('Model:')
    .addOption(new Option('--cell <type>', 'recurrent cell').choices(['rnn', 'lstm', 'gru']).default('lstm'))
    .addOption(new Option('--nonlinearity <f>', 'RNN cell nonlinearity').choices(['tanh', 'relu']))
    .addOption(int('--hidden <n>', 'hidden units per layer', 1).default(256))
    .addOption(int('--layers <n>', 'stacked recurrent layers', 1).default(2))
    .addOption(int('--embed <n>', 'embedding width', 1).default(64))
    .addOption(num('--dropout <p>', 'dropout between recurrent layers', 0, 0.99).default(0))
    .addOption(new Option('--skip', 'add the input-to-output skip term to the logits'))
    .optionsGroup('Training:')
    .addOption(int('--seq-len <n>', 'tokens per training window', 1).default(100))
    .addOption(int('--batch-size <n>', 'windows per batch', 1).default(32))
    .addOption(int('--stride <n>', 'tokens between window starts (default: --seq-len)', 1))
    .addOption(new Option('--tbptt', 'truncated BPTT: carry the state across consecutive windows'))
    .addOption(new Option('--optimizer <type>', 'optimizer').choices(['sgd', 'adam', 'adamw', 'rmsprop', 'adagrad']).default('adam'))
    .addOption(num('--lr <rate>', 'learning rate (default: 2e-3 for adam/adamw/rmsprop, 0.1 sgd, 0.01 adagrad)', 0, Infinity, true))
    .addOption(num('--momentum <m>', 'SGD/RMSprop momentum', 0, 1))
    .addOption(num('--weight-decay <w>', 'L2 penalty (decoupled for adamw)', 0))
    .addOption(new Option('--schedule <type>', 'learning-rate schedule').choices(['constant', 'step', 'exponential', 'cosine']).default('constant'))
    .addOption(int('--warmup <steps>', 'linear warm-up steps', 0))
    .addOption(int('--step-size <steps>', 'step schedule: steps between decays', 1))
    .addOption(num('--gamma <g>', 'step/exponential schedule: decay factor', 0, 1, true))
    .addOption(num('--min-lr <rate>', 'cosine schedule: final learning rate', 0))
    .addOption(num('--clip-norm <n>', 'clip the global gradient norm to n', 0, Infinity, true).default(1))
    .addOption(int('--epochs <n>', 'passes over the training windows', 1))
    .addOption(int('--max-steps <n>', 'stop after n optimizer steps (of this run)', 1))
    .addOption(num('--time-limit <seconds>', 'stop after this many seconds', 0, Infinity, true))
    .addOption(num('--validation <fraction>', 'hold out this fraction of the tokens (the tail) for validation', 0, 0.9).default(0.1))
    .addOption(int('--validate-every <steps>', 'steps between validation passes', 1))
    .addOption(int('--log-every <steps>', 'steps between progress events', 1))
    .addOption(int('--threads <n>', 'compute threads (default: one per core; sets RAYON_NUM_THREADS)', 1))
    .optionsGroup('Output:')
    .addOption(new Option('--out <model>', 'model file to write').default('model.safetensors'))
    .addOption(new Option('--chart <svg>', 'write the loss curves to this SVG file'))
    .addOption(new Option('--checkpoint <path>', 'checkpoint file, written every --checkpoint-every steps and on Ctrl-C'))
    .addOption(int('--checkpoint-every <steps>', 'steps between checkpoints (default 1000)', 1))
    .addOption(new Option('--resume <checkpoint>', 'continue training from a checkpoint (its tokenizer and architecture)'))
    .addOption(json())
    .optionsGroup('Training:')
    .addOption(new Option('--seed <n>', 'seed of initialisation, shuffling and dropout').argParser(SEED).default(0))
    .optionsGroup('Options:')
    .action(run((corpora: string[], o: TrainOptions, cmd: Command) => train(corpora, o, cmd)));

  program
    .command('generate')
    .summary('generate text from a language model')
    .description('Generate text from a language model file, after a prompt.')
    .argument('<model>', 'model file (.safetensors)')
    .addOption(new Option('--prompt <text>', 'text to continue').default(''))
    .addOption(int('--max-tokens <n>', 'tokens to generate', 1).default(200))
    .addOption(num('--temperature <t>', 'softmax temperature (default 1)', 0, Infinity, true))
    .addOption(int('--top-k <k>', 'sample from the k most likely tokens (0: off)', 0))
    .addOption(num('--top-p <p>', 'nucleus sampling: smallest set with probability ≥ p', 0, 1, true))
    .addOption(num('--repetition-penalty <r>', 'penalise tokens already in the context (1: off)', 0, Infinity, true))
    .addOption(new Option('--stop <text>', 'stop before this text (repeatable)').argParser(collect))
    .addOption(new Option('--seed <n>', 'sampler seed (same seed, same text)').argParser(SEED))
    .addOption(new Option('--greedy', 'argmax decoding'))
    .addOption(int('--beams <n>', 'beam search with n beams', 1))
    .addOption(num('--length-penalty <a>', 'beam search length normalisation exponent (default 1)', 0))
    .addOption(new Option('--stream', 'print text as it is produced (--json: one JSON line per piece)'))
    .addOption(new Option('--no-echo', 'do not print the prompt before the generated text'))
    .addOption(json())
    .action(run((file: string, o: GenerateCliOptions) => generate(file, o)));

  program
    .command('eval')
    .summary('loss, perplexity and bits per token of a text')
    .description('Evaluate a language model on a text file under the stateful protocol (one stream, state carried): mean cross-entropy, perplexity, bits per token.')
    .argument('<model>', 'model file (.safetensors)')
    .argument('<text-file>', 'UTF-8 text file')
    .addOption(int('--chunk <n>', 'tokens per native call (the state is carried between chunks)', 1))
    .addOption(json())
    .action(run((file: string, textFile: string, o: { json?: boolean; chunk?: number }) => evaluate(file, textFile, o)));

  program
    .command('info')
    .summary('architecture, parameters, tokenizer, training metadata')
    .description('Describe a model file (architecture, parameter count, tokenizer, training metadata) and the native engine (SIMD, threads).')
    .argument('<model>', 'model file (.safetensors)')
    .addOption(json())
    .action(run((file: string, o: { json?: boolean }) => info(file, o)));

  program
    .command('predict')
    .summary('classify, tag or regress inputs with a sequence model')
    .description('Run a classify, tag or regress model on inputs: texts (token models) or JSON arrays of numbers (dense models, e.g. "[[0.1,0.2],[0.3,0.4]]"). Prints label and probability (classify), token/tag pairs (tag) or values (regress), one line per input.')
    .argument('<model>', 'model file (.safetensors)')
    .argument('[input...]', 'inputs (texts or JSON arrays)')
    .addOption(new Option('--file <path>', 'read inputs from a file, one a line'))
    .addOption(json())
    .action(run((file: string, inputs: string[], o: { json?: boolean; file?: string }) => predict(file, inputs, o)));

  program
    .command('serve')
    .summary('serve a language model over an OpenAI-compatible HTTP API')
    .description('Serve a language model over HTTP: POST /v1/completions (OpenAI-compatible, with server-sent events for "stream": true), GET /v1/models, GET /healthz. Loopback only unless --host says otherwise. SIGINT/SIGTERM shut down gracefully.')
    .argument('<model>', 'model file (.safetensors)')
    .addOption(new Option('--host <host>', 'interface to listen on').default(SERVER_DEFAULTS.host))
    .addOption(int('--port <n>', 'TCP port (0: any free port)', 0, 65535).default(SERVER_DEFAULTS.port))
    .addOption(new Option('--model-id <id>', 'model id in /v1/models and responses (default: the file name)'))
    .addOption(int('--max-prompt-tokens <n>', 'longest accepted prompt in tokens', 1).default(SERVER_DEFAULTS.maxPromptTokens))
    .addOption(int('--max-tokens <n>', 'largest accepted max_tokens', 1).default(SERVER_DEFAULTS.maxTokens))
    .addOption(int('--default-max-tokens <n>', 'max_tokens when a request omits it', 1).default(SERVER_DEFAULTS.defaultMaxTokens))
    .addOption(int('--max-concurrent <n>', 'generations run at once (batched together)', 1).default(SERVER_DEFAULTS.maxConcurrent))
    .addOption(int('--max-queue <n>', 'requests waiting beyond that; more get 429', 0).default(SERVER_DEFAULTS.maxQueue))
    .addOption(int('--body-limit <bytes>', 'largest request body', 1).default(SERVER_DEFAULTS.bodyLimit))
    .addOption(int('--request-timeout <ms>', 'per-request time limit (0: none)', 0).default(SERVER_DEFAULTS.requestTimeout))
    .addOption(int('--shutdown-timeout <ms>', 'how long shutdown waits for live generations', 0).default(SERVER_DEFAULTS.shutdownTimeout))
    .addOption(new Option('--quiet', 'log only warnings and errors'))
    .addOption(json())
    .action(run((file: string, o: ServeOptions) => serve(file, o)));

  program
    .command('demo')
    .summary('train a character LSTM on Pride and Prejudice, then sample')
    .description('Train a character-level LSTM on the bundled Pride and Prejudice for a bounded time, print samples at temperatures 0.5, 0.8 and 1.0 and the held-out bits per character, and write the model and the loss curves.')
    .addOption(num('--time-limit <seconds>', 'training time', 0, Infinity, true).default(DEMO_DEFAULTS.timeLimit))
    .addOption(new Option('--out-dir <dir>', 'where the model and loss.svg go').default(DEMO_DEFAULTS.outDir))
    .addOption(new Option('--seed <n>', 'seed of initialisation, shuffling and samples').argParser(SEED).default(DEMO_DEFAULTS.seed))
    .addOption(json())
    .action(run((o: { json?: boolean; timeLimit: number; outDir: string; seed: number }) => demo(o)));

  return program;
}

/** Prints an error as one line (plus the stack with RNNKIT_DEBUG=1). */
function reportError(e: unknown): void {
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`rnnkit: error: ${err.message.split('\n')[0]}\n`);
  if (process.env.RNNKIT_DEBUG) process.stderr.write(`${err.stack ?? err.message}\n`);
}

/** Runs the CLI on `argv` (as `process.argv`) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const exit = { code: 0 };
  const program = buildProgram(exit);
  try {
    await program.parseAsync(argv);
    return exit.code;
  } catch (e) {
    // Commander has already printed its message (help, version, or a one-line usage error).
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT_USAGE;
    reportError(e);
    return e instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
  }
}

if (require.main === module) {
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      reportError(e);
      process.exitCode = EXIT_FAILURE;
    },
  );
}
