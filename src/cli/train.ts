/**
 * `rnnkit train`: trains a language model on text files, or with `--task` a classifier, a
 * tagger or a regressor on a JSONL (or, for classify, CSV) file of rows, and writes the model.
 * Ctrl-C stops training through an `AbortSignal` and saves a checkpoint (to `--checkpoint`, else
 * `--out`); `--resume` continues from one with the same windowing of the data.
 */

import { Command, Option } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { svgChart, terminalChart, lossSeries } from '../chart';
import { fitWithProgress, ProgressReporter, type Fittable } from '../progress';
import { createTokenizerFitter, type SpecialToken, type TokenizerOptions } from '../tokenizer';
import { LabelledDataset, LabelSet, parseCSV, readJSONLRecords, splitRowIndices, TextCorpus, type Label, type LabelledOptions } from '../dataset';
import { decodeUtf8 } from '../dataset/text-chunks';
import type {
  Classifier,
  ClassificationEvaluation,
  LanguageModel,
  Model,
  FitOptions,
  Regressor,
  Seq2SeqFitOptions,
  Seq2SeqModel,
  SpeechFitOptions,
  SpeechRecognizer,
  TagExample,
  Tagger,
} from '../index';
import type { History, OptimizerOptions, Pooling, ProgressEvent, ScheduleOptions } from '../types';
import type { Tokenizer } from '../tokenizer';
import { CliError, EXIT_INTERRUPTED, EXIT_TERMINATED, exitingWith, UsageError, type ExitCode } from './exit';
import { checkReadable, checkWritable, ensureParent } from './files';
import { makeIo, progressMode } from './io';
import { api, openLanguageModel, openSeq2Seq, openTaskModel, type ModelTask } from './models';
import { FIT_FLAG_KEYS, flag, flagNaming, naming, rowNaming } from './naming';
import { intOption, jsonOption, numOption } from './options';
import { applyDefaults, applySeq2SeqDefaults, applySpeechDefaults, stepsProfile, textProfile, type DefaultedOptions } from './train-defaults';
import { parseLabels, parseSpecials, SEED } from './parsers';

/** Parsed options of `rnnkit train`. */
interface TrainOptions {
  json?: boolean;
  task: TrainTask;
  textColumn?: string;
  labelColumn?: string;
  sourceColumn?: string;
  targetColumn?: string;
  attention?: 'additive' | 'dot' | 'general';
  sourceTokenizer?: 'char' | 'word';
  targetTokenizer?: 'char' | 'word';
  labels?: Label[];
  pooling?: Pooling;
  bidirectional?: boolean;
  classWeights?: 'balanced';
  maxLength: number;
  perStep?: boolean;
  tokenizer?: 'char' | 'word' | 'byte';
  specials?: SpecialToken[];
  unknown?: 'error' | 'unk';
  lossy?: boolean;
  lowercase: boolean;
  punctuation?: 'split' | 'drop' | 'keep';
  minCount?: number;
  maxVocab?: number;
  cell?: 'rnn' | 'lstm' | 'gru';
  nonlinearity?: 'tanh' | 'relu';
  hidden?: number;
  layers?: number;
  embed?: number;
  dropout: number;
  skip?: boolean;
  seqLen?: number;
  batchSize?: number;
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
  /** seq2seq: scheduled sampling's probability, and the steps of its ramp from 0. */
  scheduledSampling?: number;
  scheduledSamplingRamp?: number;
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
  checkpointBest?: boolean;
  /** Patience of early stopping on the validation loss. */
  earlyStopping?: number;
  /** Set by the defaults: the cosine schedule spans the run (see `cosineTMax`). */
  cosineOverRun?: boolean;
  /** The cosine's period in steps when the defaults chose it: epochs × batches per epoch. */
  cosineTMax?: number;
  /** The metric early stopping follows (the defaults choose validation accuracy for classify and tag). */
  monitor?: 'valLoss' | 'valAccuracy';
  resume?: string;
  seed: number;
  /** speech: log-mel bands of the features, and frames joined into one recurrent step. */
  mels?: number;
  frameStacking?: number;
  specAugment?: boolean;
}

/** What `train` trains: a language model on text files, or a sequence task on a file of rows. */
type TrainTask = 'language-model' | 'classify' | 'tag' | 'regress' | 'seq2seq' | 'speech';
const TRAIN_TASKS: readonly TrainTask[] = ['language-model', 'classify', 'tag', 'regress', 'seq2seq', 'speech'];

/** Options that describe a new model, refused with `--resume` (the checkpoint fixes them). */
const ARCHITECTURE_OPTIONS = [
  'tokenizer',
  'sourceTokenizer',
  'targetTokenizer',
  'specials',
  'unknown',
  'lowercase',
  'punctuation',
  'minCount',
  'maxVocab',
  'cell',
  'nonlinearity',
  'hidden',
  'layers',
  'embed',
  'dropout',
  'skip',
  'labels',
  'pooling',
  'bidirectional',
  'maxLength',
  'perStep',
  'attention',
  'mels',
  'frameStacking',
];

const TOKEN_TASKS: readonly TrainTask[] = ['language-model', 'classify', 'tag'];
const SEQUENCE_TASKS: readonly TrainTask[] = ['classify', 'tag', 'regress'];
/** Options that only some tasks take, with those tasks (every other option goes with every task). */
const TASK_OPTIONS: Record<string, readonly TrainTask[]> = {
  tokenizer: TOKEN_TASKS,
  specials: TOKEN_TASKS,
  unknown: TOKEN_TASKS,
  lowercase: TOKEN_TASKS,
  punctuation: TOKEN_TASKS,
  minCount: TOKEN_TASKS,
  maxVocab: TOKEN_TASKS,
  embed: [...TOKEN_TASKS, 'seq2seq'],
  dropout: ['language-model', ...SEQUENCE_TASKS, 'speech'],
  skip: ['language-model'],
  seqLen: ['language-model'],
  stride: ['language-model'],
  tbptt: ['language-model'],
  textColumn: ['classify'],
  labelColumn: ['classify'],
  labels: ['classify', 'tag'],
  pooling: ['classify', 'regress'],
  classWeights: ['classify', 'tag'],
  bidirectional: [...SEQUENCE_TASKS, 'seq2seq', 'speech'],
  sourceColumn: ['seq2seq'],
  targetColumn: ['seq2seq'],
  attention: ['seq2seq'],
  sourceTokenizer: ['seq2seq'],
  targetTokenizer: ['seq2seq'],
  scheduledSampling: ['seq2seq'],
  scheduledSamplingRamp: ['seq2seq'],
  maxLength: SEQUENCE_TASKS,
  perStep: ['regress'],
  mels: ['speech'],
  frameStacking: ['speech'],
  specAugment: ['speech'],
};
/** Options only a word tokenizer has. */
const WORD_OPTIONS = ['lowercase', 'punctuation', 'minCount', 'maxVocab'];

/**
 * Metadata key under which `train` stores the windowing of a run, so that `--resume` reads the
 * text the same way (the checkpoint's position counts windows of that size).
 */
const WINDOWING_KEY = 'rnnkit_cli_windowing';
/**
 * The options that fix the windowing of a run: of the text for a language model; of the rows
 * (batches and the seeded split) for the sequence tasks.
 */
function windowing(o: TrainOptions): Partial<TrainOptions> {
  if (o.task === 'language-model') return { seqLen: o.seqLen, batchSize: o.batchSize, stride: o.stride, tbptt: !!o.tbptt, validation: o.validation };
  return { batchSize: o.batchSize, validation: o.validation, seed: o.seed };
}

/**
 * On `--resume`: takes the checkpoint's windowing for the options not given, and refuses given
 * ones that differ (the saved position would point elsewhere in the data).
 */
function applyResumedWindowing(o: TrainOptions, cmd: Command, model: { metadata: Record<string, string> }, file: string): void {
  const stored = model.metadata[WINDOWING_KEY];
  if (stored === undefined) return;
  const w = JSON.parse(stored) as Record<string, unknown>;
  for (const key of Object.keys(w) as (keyof TrainOptions)[]) {
    if (cmd.getOptionValueSource(key) === 'cli' && o[key] !== w[key]) {
      throw new UsageError(
        `${flag(key)} ${o[key]} differs from the ${w[key] ?? 'default'} that ${JSON.stringify(file)} was trained with; a resumed run keeps its windowing`,
      );
    }
    (o as unknown as Record<string, unknown>)[key] = w[key];
  }
}

/** Checks combinations commander cannot check alone. */
function checkTrainCombination(o: TrainOptions, cmd: Command, files: string[]): void {
  const given = (key: string) => cmd.getOptionValueSource(key) === 'cli';
  const misplaced = Object.keys(TASK_OPTIONS).find((key) => given(key) && !TASK_OPTIONS[key].includes(o.task));
  if (misplaced) throw new UsageError(`${flag(misplaced)} does not apply to --task ${o.task} (it goes with --task ${TASK_OPTIONS[misplaced].join(', ')})`);
  if (o.task !== 'language-model' && files.length > 1) throw new UsageError(`--task ${o.task} reads one data file, got ${files.length}`);
  if (o.perStep && given('pooling')) throw new UsageError('--pooling does not apply to --per-step (a per-step regressor does not pool)');
  if (o.task === 'classify' && o.specials && !o.specials.includes('<pad>'))
    throw new UsageError('--task classify pads rows to a batch: include <pad> in --specials');
  if (o.resume) {
    const clash = ARCHITECTURE_OPTIONS.find(given);
    if (clash) throw new UsageError(`${flag(clash)} cannot be used with --resume: the checkpoint fixes the tokenizer and the architecture`);
  }
  if (o.tokenizer !== 'word') {
    const clash = WORD_OPTIONS.find(given);
    if (clash) throw new UsageError(`${flag(clash)} is a word tokenizer option; add --tokenizer word`);
  }
  if (o.tokenizer === 'word' && (given('maxVocab') || given('minCount')) && !tokenizerOptions(o).specials?.includes('<unk>')) {
    throw new UsageError(
      `${given('maxVocab') ? '--max-vocab' : '--min-count'} leaves words out of the vocabulary; add --specials "<unk>" so that they map to <unk>`,
    );
  }
  if (o.tokenizer === 'byte' && given('unknown')) throw new UsageError('--unknown does not apply to --tokenizer byte (every byte is known)');
  if (given('nonlinearity') && o.cell !== 'rnn') throw new UsageError('--nonlinearity applies to --cell rnn only');
  if (given('checkpointEvery') && !o.checkpoint) throw new UsageError('--checkpoint-every needs --checkpoint <path>');
  if (given('scheduledSamplingRamp') && !given('scheduledSampling'))
    throw new UsageError('--scheduled-sampling-ramp needs --scheduled-sampling <p> (the probability it rises to)');
  if (o.checkpointBest && !o.checkpoint) throw new UsageError('--checkpoint-best needs --checkpoint <path>');
  if ((o.checkpointBest || o.earlyStopping !== undefined) && o.validation === 0)
    throw new UsageError(`${o.earlyStopping !== undefined ? '--early-stopping' : '--checkpoint-best'} needs validation data: set --validation above 0`);
  if ((given('stepSize') || given('gamma')) && o.schedule !== 'step' && o.schedule !== 'exponential')
    throw new UsageError('--step-size and --gamma go with --schedule step or exponential');
  if (o.schedule === 'step' && !given('stepSize')) throw new UsageError('--schedule step needs --step-size <steps>');
  if (given('minLr') && o.schedule !== 'cosine') throw new UsageError('--min-lr goes with --schedule cosine');
  if (o.schedule === 'cosine' && o.maxSteps === undefined) throw new UsageError('--schedule cosine needs --max-steps (the cosine period)');
  if (given('momentum') && o.optimizer !== 'sgd' && o.optimizer !== 'rmsprop') throw new UsageError('--momentum goes with --optimizer sgd or rmsprop');
}

/**
 * The tokenizer options of a new model. Classifiers and taggers get `<pad>` and `<unk>` unless
 * --specials says otherwise: rows are padded, and held-out words the training rows lack read as
 * `<unk>`.
 */
function tokenizerOptions(o: TrainOptions): TokenizerOptions {
  const specials = o.specials ?? (o.task === 'language-model' ? undefined : (['<pad>', '<unk>'] as SpecialToken[]));
  if (o.tokenizer === 'byte') return { type: 'byte', specials };
  if (o.tokenizer === 'char') return { type: 'char', specials, unknown: o.unknown };
  return { type: 'word', specials, unknown: o.unknown, lowercase: o.lowercase, punctuation: o.punctuation, minCount: o.minCount, maxVocabSize: o.maxVocab };
}

/** Reads the corpus files, naming the command-line flag instead of the API option in errors. */
function loadCorpus(files: string[], o: TrainOptions, tokenizer: LanguageModel['tokenizer']): Promise<TextCorpus> {
  return flagNaming(['seqLen', 'batchSize', 'stride', 'validation', 'seed'], () => readCorpus(files, o, tokenizer));
}

/** Streams the corpus files (several are joined with blank lines between): never read whole. */
async function readCorpus(files: string[], o: TrainOptions, tokenizer: LanguageModel['tokenizer']): Promise<TextCorpus> {
  for (const f of files) checkReadable(f, 'corpus file');
  return TextCorpus.fromFiles(files, {
    seqLen: o.seqLen,
    stride: o.stride,
    batchSize: o.batchSize,
    seed: o.seed,
    validation: o.validation,
    ...(o.tbptt ? { tbptt: true } : {}),
    ...(o.lossy ? { lossy: true } : {}),
    ...(tokenizer ? { tokenizer } : { tokenizerOptions: tokenizerOptions(o) }),
  });
}

/** The `fit` options every task shares (and seq2seq's scheduled sampling), without the signal and the progress callback. */
function fitOptions(o: TrainOptions): Seq2SeqFitOptions & Pick<SpeechFitOptions, 'specAugment'> {
  const optimizer: OptimizerOptions = { type: o.optimizer };
  if (o.lr !== undefined) optimizer.lr = o.lr;
  if (o.momentum !== undefined) optimizer.momentum = o.momentum;
  if (o.weightDecay !== undefined) optimizer.weightDecay = o.weightDecay;
  const schedule: ScheduleOptions = { type: o.schedule };
  if (o.warmup !== undefined) schedule.warmupSteps = o.warmup;
  if (o.stepSize !== undefined) schedule.stepSize = o.stepSize;
  if (o.gamma !== undefined) schedule.gamma = o.gamma;
  if (o.minLr !== undefined) schedule.etaMin = o.minLr;
  if (o.cosineTMax !== undefined) schedule.tMax = o.cosineTMax;
  const f: Seq2SeqFitOptions & Pick<SpeechFitOptions, 'specAugment'> = { optimizer, schedule };
  if (o.specAugment) f.specAugment = {};
  if (o.clipNorm !== undefined) f.clipNorm = o.clipNorm;
  if (o.scheduledSampling !== undefined) f.scheduledSampling = o.scheduledSampling;
  if (o.scheduledSamplingRamp !== undefined) f.scheduledSamplingRamp = o.scheduledSamplingRamp;
  if (o.epochs !== undefined) f.epochs = o.epochs;
  if (o.maxSteps !== undefined) f.maxSteps = o.maxSteps;
  if (o.timeLimit !== undefined) f.timeLimit = o.timeLimit;
  if (o.validateEvery !== undefined) f.validateEvery = o.validateEvery;
  if (o.logEvery !== undefined) f.logEvery = o.logEvery;
  if (o.checkpoint) {
    // With --checkpoint-best alone the file is always the best model so far; periodic writes
    // (--checkpoint-every) would replace it with a later, worse one.
    f.checkpoint = o.checkpointBest
      ? { path: o.checkpoint, best: true, ...(o.checkpointEvery === undefined ? {} : { every: o.checkpointEvery }) }
      : { path: o.checkpoint, every: o.checkpointEvery ?? 1000 };
  }
  if (o.earlyStopping !== undefined) f.earlyStopping = { monitor: o.monitor ?? 'valLoss', patience: o.earlyStopping, restoreBest: true };
  return f;
}

/**
 * The training loss a run ends with: that of its last progress event (the mean since the event
 * before it), as the final progress line shows it, rather than the last step's alone, which one
 * batch makes noisy; else the history's last finite loss.
 */
function finalLoss(history: History, lastStep: ProgressEvent | undefined): number | undefined {
  return lastStep !== undefined && Number.isFinite(lastStep.loss) ? lastStep.loss : lastFinite(history.loss);
}

/** The last finite value of an array, or undefined. */
function lastFinite(values: readonly number[]): number | undefined {
  for (let i = values.length - 1; i >= 0; i--) if (Number.isFinite(values[i])) return values[i];
  return undefined;
}

/**
 * Why an early-stopped run stopped and which weights it kept, and where the best checkpoint is:
 * `[]` when neither --early-stopping nor --checkpoint-best is on.
 */
function bestLines(history: History, o: TrainOptions, interrupted: boolean): string[] {
  if (history.bestStep === undefined || history.bestValLoss === undefined) return [];
  const accuracy = o.monitor === 'valAccuracy' && history.bestValAccuracy !== undefined;
  const metric = accuracy ? 'validation accuracy' : 'validation loss';
  const best = `${metric} ${(accuracy ? history.bestValAccuracy! : history.bestValLoss).toFixed(4)} at step ${history.bestStep}`;
  const lines: string[] = [];
  if (history.stopReason === 'early_stopping')
    lines.push(
      `early stopping: the ${metric} did not improve in ${o.earlyStopping} validations after the best, ${best}; the model has the weights of that step`,
    );
  else if (o.earlyStopping !== undefined && !interrupted) lines.push(`best ${best}; the model has the weights of that step`);
  if (o.checkpointBest && !interrupted) lines.push(`best checkpoint (${best}) in ${o.checkpoint}`);
  return lines;
}

/** The recurrent part of a new model, the same for every task. */
function recurrentOptions(o: TrainOptions) {
  return { cell: o.cell, nonlinearity: o.nonlinearity, hiddenSize: o.hidden, numLayers: o.layers, dropout: o.dropout, seed: o.seed };
}

/** A training run ready to start: the model, what it fits on, and how the result is told. */
interface TrainingRun {
  model: Model | Seq2SeqModel;
  /** Fits the model on `data` (task options such as held-out rows already bound). */
  fittable: Fittable<unknown>;
  data: unknown;
  options: FitOptions & { batchSize?: number; seed?: number };
  /** The log line before training. */
  intro: string;
  /** What `history.tokens` counts: the positions the loss counts (`tokens`, `rows`, `time steps`). */
  unit: string;
  /** The y-axis of the loss chart. */
  lossLabel: string;
  /** Result fields and lines after training (`loss`: the final training loss): metrics for the sequence tasks. */
  summary(history: History, loss: number | undefined): Promise<{ data: Record<string, unknown>; lines: string[] }>;
}

/** `rnnkit train`: a language model, or a classify/tag/regress model with --task. */
async function train(files: string[], o: TrainOptions, cmd: Command): Promise<number> {
  checkTrainCombination(o, cmd, files);
  // Before any compute: a run must not train for hours and then find it cannot save.
  checkWritable(o.out, '--out');
  if (o.checkpoint) checkWritable(o.checkpoint, '--checkpoint');
  if (o.chart) checkWritable(o.chart, '--chart');
  // The engine's thread pool reads this when it starts (the engine is not loaded yet).
  if (o.threads !== undefined) process.env.RNNKIT_THREADS = String(o.threads);
  const io = makeIo(!!o.json);
  const run =
    o.task === 'language-model'
      ? await languageModelRun(files, o, cmd)
      : o.task === 'seq2seq'
        ? await seq2seqRun(files[0], o, cmd)
        : o.task === 'speech'
          ? await speechRun(files[0], o, cmd)
          : await sequenceRun(files[0], o, cmd);
  const m = run.model;
  m.setMetadata(WINDOWING_KEY, JSON.stringify(windowing(o)));
  io.log(run.intro);
  const reporter = new ProgressReporter({ mode: progressMode(io.json), stream: process.stderr, unit: run.unit });
  const { history, interrupted, signal, lastStep } = await flagNaming([...FIT_FLAG_KEYS, 'batchSize'], () =>
    fitWithProgress(run.fittable, run.data, run.options, reporter),
  );

  const target = interrupted ? (o.checkpoint ?? o.out) : o.out;
  ensureParent(target);
  await m.save(target, { checkpoint: interrupted });
  if (o.chart) {
    ensureParent(o.chart);
    fs.writeFileSync(
      o.chart,
      svgChart(lossSeries(history), { title: `rnnkit train: ${files.map((c) => path.basename(c)).join(', ')}`, yLabel: run.lossLabel }),
    );
  }
  const loss = finalLoss(history, lastStep);
  const summary = await run.summary(history, loss);
  const data = {
    task: o.task,
    model: target,
    checkpoint: interrupted,
    chart: o.chart ?? null,
    stopReason: history.stopReason,
    steps: history.stepsDone,
    tokens: history.tokens,
    elapsed: history.elapsed,
    loss: loss ?? null,
    valLoss: lastFinite(history.valLoss) ?? null,
    ...summary.data,
    numParams: m.numParams,
    history,
  };
  const human = [
    io.json ? '' : terminalChart(lossSeries(history), { width: 60, height: 10 }),
    `stopped: ${history.stopReason} after ${history.stepsDone} steps, ${history.tokens.toLocaleString('en-US')} ${run.unit}, ${history.elapsed.toFixed(1)} s`,
    ...bestLines(history, o, interrupted),
    ...summary.lines,
    (interrupted ? `checkpoint written to ${target}; continue with --resume ${target}` : `model written to ${target}`) +
      (o.chart ? `; loss curves in ${o.chart}` : ''),
  ].join('\n');
  io.result(human, data);
  return interrupted ? (signal === 'SIGTERM' ? EXIT_TERMINATED : EXIT_INTERRUPTED) : 0;
}

/** `train` of a language model on text files (new, or resumed from a checkpoint). */
async function languageModelRun(corpora: string[], o: TrainOptions, cmd: Command): Promise<TrainingRun> {
  let resumed: LanguageModel | null = null;
  if (o.resume) {
    resumed = await openLanguageModel(o.resume, 'train --resume');
    if (!resumed.tokenizer) throw new CliError(`checkpoint ${JSON.stringify(o.resume)} has no tokenizer, so text cannot be encoded for it`);
    applyResumedWindowing(o, cmd, resumed, o.resume);
  }
  for (const f of corpora) checkReadable(f, 'corpus file');
  const chosen = applyDefaults(o as DefaultedOptions, cmd, textProfile(corpora, o.validation));
  const corpus = await loadCorpus(corpora, o, resumed ? resumed.tokenizer : null);
  if (o.cosineOverRun) o.cosineTMax = o.epochs! * corpus.numBatches('train');
  const model = resumed ?? api().createLanguageModel({ tokenizer: corpus.tokenizer, ...recurrentOptions(o), embedDim: o.embed, skip: !!o.skip });
  const options = fitOptions(o);
  return {
    model,
    fittable: model,
    data: corpus,
    options,
    intro: [
      `${resumed ? 'resuming' : 'training'} a ${model.config.cell ?? o.cell} model with ${model.numParams.toLocaleString('en-US')} parameters on ${corpus.numTokens('train').toLocaleString('en-US')} tokens (${corpus.tokenizer.type} tokenizer, vocabulary ${corpus.tokenizer.vocabSize}); validation ${corpus.numTokens('validation').toLocaleString('en-US')} tokens`,
      ...chosen,
    ].join('\n'),
    unit: 'tokens',
    lossLabel: 'loss (nats/token)',
    summary: async (history, loss) => {
      const valLoss = lastFinite(history.valLoss);
      const valBitsPerToken = valLoss === undefined ? null : valLoss / Math.LN2;
      const line =
        `training loss ${loss?.toFixed(4) ?? '--'}` +
        (valLoss === undefined ? '' : `, validation loss ${valLoss.toFixed(4)} (${valBitsPerToken!.toFixed(3)} bits/token)`);
      return { data: { valBitsPerToken }, lines: [line] };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// train --task seq2seq

/**
 * A seq2seq side's tokenizer options: characters, or words with every digit and ideograph a token
 * of its own (case and punctuation kept in their words: `thirty-seven` is one token). Sources get
 * `<unk>` for tokens the training pairs lack; targets `<bos>` and `<eos>` (what a decoder starts
 * and ends with).
 */
function pairTokenizerOptions(kind: 'char' | 'word', side: 'source' | 'target'): TokenizerOptions {
  const specials: SpecialToken[] = side === 'source' ? ['<unk>'] : ['<bos>', '<eos>'];
  const unknown = side === 'source' ? 'unk' : 'error';
  if (kind === 'char') return { type: 'char', specials, unknown };
  return { type: 'word', specials, unknown, lowercase: false, punctuation: 'keep', splitDigits: true, splitCjk: true };
}

/**
 * `train --task seq2seq`: source/target pairs from JSONL or CSV (`--source-column`,
 * `--target-column`); tokenizers, sizes and training chosen by the engine's defaults for the
 * pairs (`recommendSeq2SeqOptions`) where no flag gives them. With `--resume`, the checkpoint's
 * model and tokenizers, and its batches and split.
 */
async function seq2seqRun(file: string, o: TrainOptions, cmd: Command): Promise<TrainingRun> {
  let resumed: Seq2SeqModel | null = null;
  if (o.resume) {
    resumed = await openSeq2Seq(o.resume, 'train --task seq2seq --resume');
    applyResumedWindowing(o, cmd, resumed, o.resume);
  }
  checkReadable(file, 'data file');
  const rows = await naming('rows', `data file ${JSON.stringify(file)}`, () =>
    flagNaming(['sourceColumn', 'targetColumn'], () => api().readPairs(file, { sourceColumn: o.sourceColumn, targetColumn: o.targetColumn })),
  );
  const sources = rows.map((r) => r.source);
  const targets = rows.map((r) => r.target);
  const chosen = resumed ? [] : applySeq2SeqDefaults(o, cmd, api().profileTexts(sources), api().profileTexts(targets));
  // The fitter reads its pieces as one text: for words, each pair's text ends a line, so that its
  // last word does not run on into the next pair's first (characters need no separator).
  const fit = (texts: string[], kind: 'char' | 'word', side: 'source' | 'target') =>
    api().fitTokenizer(kind === 'word' ? texts.map((t) => `${t}\n`) : texts, pairTokenizerOptions(kind, side));
  const sourceTokenizer = resumed?.sourceTokenizer ?? fit(sources, o.sourceTokenizer!, 'source');
  const targetTokenizer = resumed?.targetTokenizer ?? fit(targets, o.targetTokenizer!, 'target');
  const data = await flagNaming(['batchSize', 'validation', 'seed'], async () =>
    api().PairDataset.fromArray(rows, { sourceTokenizer, targetTokenizer, batchSize: o.batchSize, seed: o.seed, validation: o.validation }),
  );
  const names = { hiddenSize: '--hidden', layers: '--layers', embedDim: '--embed', attentionSize: '--hidden' };
  const model =
    resumed ??
    (await flagNaming(
      ['hiddenSize', 'layers', 'embedDim', 'attention'],
      async () =>
        api().createSeq2Seq({
          sourceTokenizer,
          targetTokenizer,
          cell: o.cell,
          nonlinearity: o.nonlinearity,
          hiddenSize: o.hidden,
          layers: o.layers,
          bidirectional: o.bidirectional,
          embedDim: o.embed,
          attention: o.attention,
          seed: o.seed,
        }),
      names,
    ));
  const c = model.config;
  if (o.cosineOverRun) o.cosineTMax = o.epochs! * data.batches('train', 0).length;
  const kind = (t: typeof sourceTokenizer) => (t.type === 'word' ? 'words and digits' : 'characters');
  return {
    model,
    fittable: { fit: (d, options) => model.fit(d as typeof data, options) },
    data,
    options: fitOptions(o),
    intro: [
      `${resumed ? 'resuming' : 'training'} a seq2seq ${c.cell} model (${c.attention} attention${c.bidirectional ? ', bidirectional encoder' : ''}) with ${model.numParams.toLocaleString('en-US')} parameters on ${data.size('train').toLocaleString('en-US')} pairs (source: ${kind(sourceTokenizer)}, ${sourceTokenizer.vocabSize} ids; target: ${kind(targetTokenizer)}, ${targetTokenizer.vocabSize} ids); validation ${data.size('validation').toLocaleString('en-US')} pairs`,
      ...chosen,
    ].join('\n'),
    unit: 'target tokens',
    lossLabel: 'loss (nats/target token)',
    summary: async () => {
      const split = data.size('validation') > 0 ? 'validation' : 'train';
      const m = await model.evaluate(data, { split });
      return {
        data: { evaluatedOn: split, metrics: m },
        lines: [
          `${split === 'validation' ? 'validation' : 'training'} exact match ${(100 * m.exactMatch).toFixed(2)} % (greedy), token accuracy ${(100 * m.tokenAccuracy).toFixed(2)} %, loss ${m.loss.toFixed(4)} (${m.pairs.toLocaleString('en-US')} pairs)`,
        ],
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// train --task speech

/**
 * `train --task speech`: a JSONL manifest of `{"audio": "a.wav", "text": "..."}` (or a folder of
 * `a.wav` + `a.txt`), read and featurised by the engine (log-mel, `--mels` bands); the alphabet is
 * every character of the transcripts, the model and its training the engine's defaults for the
 * utterances (`recommendSpeechOptions`) where no flag gives them. Reports the word and character
 * error rates of greedy transcripts of the held-out utterances.
 */
async function speechRun(source: string, o: TrainOptions, cmd: Command): Promise<TrainingRun> {
  const resumed = await resumedTaskModel<SpeechRecognizer>(o, cmd);
  if (resumed && !resumed.features) throw new CliError(`checkpoint ${JSON.stringify(o.resume)} reads feature frames, not audio`);
  checkReadable(source, 'manifest');
  const features =
    resumed?.features ?? (await flagNaming(['nMels'], async () => api().featureConfig(o.mels === undefined ? {} : { nMels: o.mels }), { nMels: '--mels' }));
  const data = await naming('source', `manifest ${JSON.stringify(source)}`, () =>
    flagNaming(['batchSize', 'validation', 'seed'], () =>
      api().AudioDataset.load(source, {
        features,
        ...(o.batchSize === undefined ? {} : { batchSize: o.batchSize }),
        validation: o.validation,
        seed: o.seed,
        ...(resumed ? { alphabet: resumed.alphabet } : {}),
      }),
    ),
  );
  const chosen = resumed ? [] : applySpeechDefaults(o, cmd, data.size('train'), data.frames('train'));
  const model =
    resumed ??
    (await flagNaming(
      ['hiddenSize', 'numLayers', 'frameStacking', 'dropout'],
      async () =>
        api().createSpeechRecognizer({
          features: { nMels: features.n_mels as number },
          alphabet: data.alphabet,
          ...recurrentOptions(o),
          bidirectional: o.bidirectional,
          frameStacking: o.frameStacking,
        }),
      { hiddenSize: '--hidden', numLayers: '--layers', frameStacking: '--frame-stacking', dropout: '--dropout' },
    ));
  if (o.cosineOverRun) o.cosineTMax = o.epochs! * data.numBatches('train');
  const c = model.config;
  const minutes = (frames: number) => ((frames * (features.hop_ms as number)) / 60_000).toFixed(1);
  return {
    model,
    fittable: { fit: (d, options) => model.fit(d as typeof data, options) },
    data,
    options: fitOptions(o),
    intro: [
      `${resumed ? 'resuming' : 'training'} a speech recognizer (${c.bidirectional ? 'bidirectional ' : ''}${c.cell} ${c.hidden_size} × ${c.num_layers}, ${model.frameStacking} frames a step, ${model.featureSize} mel bands, CTC over ${JSON.stringify(model.alphabet)}) with ${model.numParams.toLocaleString('en-US')} parameters on ${data.size('train').toLocaleString('en-US')} utterances (${minutes(data.frames('train'))} min of audio); validation ${data.size('validation').toLocaleString('en-US')} utterances`,
      ...chosen,
    ].join('\n'),
    unit: 'utterances',
    lossLabel: 'CTC loss (nats/character)',
    summary: async () => {
      const split = data.size('validation') > 0 ? 'validation' : 'training';
      const m = await model.evaluate(data);
      return {
        data: { evaluatedOn: split, metrics: m },
        lines: [
          `${split} word error rate ${(100 * m.wer).toFixed(2)} %, character error rate ${(100 * m.cer).toFixed(2)} % (greedy), CTC loss ${m.loss.toFixed(4)} (${m.count.toLocaleString('en-US')} utterances)`,
        ],
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// train --task classify | tag | regress

/** Whether a data file is read as CSV (by its extension) rather than JSONL. */
function isCSV(file: string): boolean {
  return path.extname(file).toLowerCase() === '.csv';
}

/** A row of a JSONL data file, with `where` (`"<file>" line L`) to name it in errors. */
interface FileRow {
  where: string;
}

/** How the data files of --task are read: invalid UTF-8 refused (naming the byte and line) unless --lossy. */
function dataReading(o: TrainOptions): { name: string; lossy: boolean } {
  return { name: 'data file', lossy: !!o.lossy };
}

/** Reads the rows of a JSONL data file with `parse`; CSV is for --task classify only. */
async function readRows<R extends FileRow>(file: string, o: TrainOptions, parse: (record: Record<string, unknown>, where: string) => R): Promise<R[]> {
  checkReadable(file, 'data file');
  if (isCSV(file)) throw new CliError(`--task ${o.task} reads JSONL (one JSON object a line), not CSV: ${JSON.stringify(file)}`);
  const rows: R[] = [];
  for await (const { record, where } of readJSONLRecords(file, dataReading(o))) rows.push(parse(record, where));
  if (rows.length === 0) throw new CliError(`data file ${JSON.stringify(file)} has no rows`);
  return rows;
}

/** The seeded train/validation split of file rows (the same split as the datasets'). */
function splitFileRows<R>(rows: R[], o: TrainOptions): { train: R[]; validation: R[] } {
  const [train, validation] = splitRowIndices(rows.length, o.validation, o.seed);
  const parts = { train, validation };
  if (parts.train.length === 0) throw new UsageError(`--validation ${o.validation} leaves no training rows out of ${rows.length}`);
  return { train: Array.from(parts.train, (i) => rows[i]), validation: Array.from(parts.validation, (i) => rows[i]) };
}

/** The `--resume` checkpoint of a sequence task, which must hold a model of that task. */
async function resumedTaskModel<M extends Model>(o: TrainOptions, cmd: Command): Promise<M | null> {
  if (!o.resume) return null;
  const model = await openTaskModel<M>(o.resume, o.task as ModelTask, `train --task ${o.task} --resume`);
  applyResumedWindowing(o, cmd, model, o.resume);
  return model;
}

/** A per-class (or per-tag) table of precision, recall, F1 and support. */
function classTable(m: ClassificationEvaluation, heading: string): string[] {
  const names = m.perClass.map((c) => String(c.label));
  const w = Math.max(heading.length, ...names.map((n) => n.length)) + 2;
  const row = (cells: string[]) =>
    cells[0].padEnd(w) +
    cells
      .slice(1, -1)
      .map((c) => c.padEnd(11))
      .join('') +
    cells[cells.length - 1];
  return [
    row([heading, 'precision', 'recall', 'F1', 'support']),
    ...m.perClass.map((c, i) => row([names[i], c.precision.toFixed(3), c.recall.toFixed(3), c.f1.toFixed(3), String(c.support)])),
  ];
}

/** Result of a classifier or tagger: accuracy, macro F1 and the per-class table. */
function classificationSummary(m: ClassificationEvaluation, evaluatedOn: string, what: { accuracy: string; unit: string; heading: string }) {
  return {
    data: { evaluatedOn, metrics: m },
    lines: [
      `${evaluatedOn} ${what.accuracy} ${m.accuracy.toFixed(4)}, macro F1 ${m.macroF1.toFixed(4)}, loss ${m.loss.toFixed(4)} (${m.count.toLocaleString('en-US')} ${what.unit})`,
      ...classTable(m, what.heading),
    ],
  };
}

/** The intro line of a sequence task run. */
function sequenceIntro(model: Model, resumed: boolean, task: TrainTask, train: number, validation: number, input: string, chosen: string[]): string {
  return [
    `${resumed ? 'resuming' : 'training'} a ${task} ${model.config.cell} model with ${model.numParams.toLocaleString('en-US')} parameters on ${train.toLocaleString('en-US')} rows (${input}); validation ${validation.toLocaleString('en-US')} rows`,
    ...chosen,
  ].join('\n');
}

/**
 * The texts of a classify file's rows, for the defaults to look at (all rows: the choice of a
 * tokenizer and a size does not learn from the labels). Rows without a string text are left to
 * the dataset to refuse, with their line.
 */
async function rowTexts(file: string, o: TrainOptions): Promise<string[]> {
  const field = o.textColumn ?? 'text';
  const texts: unknown[] = [];
  if (isCSV(file)) {
    const records = parseCSV(decodeUtf8(fs.readFileSync(file), file, dataReading(o)));
    const column = records.length === 0 ? -1 : records[0].fields.indexOf(field);
    if (column >= 0) for (const r of records.slice(1)) texts.push(r.fields[column]);
  } else {
    for await (const { record } of readJSONLRecords(file, dataReading(o))) texts.push(record[field]);
  }
  return texts.filter((t): t is string => typeof t === 'string');
}

/** `train --task classify|tag|regress` on one data file. */
function sequenceRun(file: string, o: TrainOptions, cmd: Command): Promise<TrainingRun> {
  if (o.task === 'classify') return classifyRun(file, o, cmd);
  if (o.task === 'tag') return tagRun(file, o, cmd);
  return regressRun(file, o, cmd);
}

/** `train --task classify`: texts with one label each, from JSONL or CSV. */
async function classifyRun(file: string, o: TrainOptions, cmd: Command): Promise<TrainingRun> {
  const resumed = await resumedTaskModel<Classifier>(o, cmd);
  checkReadable(file, 'data file');
  const chosen = applyDefaults(o as DefaultedOptions, cmd, api().profileTexts(await rowTexts(file, o)));
  const common: LabelledOptions = {
    batchSize: o.batchSize,
    validation: o.validation,
    seed: o.seed,
    labels: resumed ? [...resumed.labels] : o.labels,
    maxLength: resumed ? resumed.maxLength : o.maxLength,
    ...(resumed ? { tokenizer: resumed.tokenizer! } : { tokenizerOptions: tokenizerOptions(o) }),
  };
  const lossy = o.lossy ? { lossy: true } : {};
  const names: Record<string, string> = resumed ? { labels: "the model's labels", maxLength: "the model's maxLength" } : {};
  const data = await naming('rows', `data file ${JSON.stringify(file)}`, () =>
    flagNaming(
      ['labels', 'maxLength', 'validation', 'textColumn', 'labelColumn'],
      () =>
        isCSV(file)
          ? LabelledDataset.fromCSV(file, { ...common, ...lossy, textColumn: o.textColumn, labelColumn: o.labelColumn })
          : LabelledDataset.fromJSONL(file, { ...common, ...lossy, textField: o.textColumn, labelField: o.labelColumn }),
      names,
    ),
  );
  const model =
    resumed ??
    api().createClassifier({
      tokenizer: data.tokenizer,
      labels: [...data.labels],
      ...recurrentOptions(o),
      embedDim: o.embed,
      maxLength: o.maxLength,
      bidirectional: o.bidirectional,
      pooling: o.pooling,
    });
  const extra: Parameters<typeof model.fit>[1] = o.classWeights ? { classWeights: o.classWeights } : {};
  return {
    model,
    fittable: { fit: (d, options) => model.fit(d as Parameters<typeof model.fit>[0], { ...options, ...extra }) },
    data,
    options: fitOptions(o),
    intro: sequenceIntro(
      model,
      !!resumed,
      o.task,
      data.size('train'),
      data.size('validation'),
      `${data.tokenizer.type} tokenizer, vocabulary ${data.tokenizer.vocabSize}; labels ${data.labels.map((l) => JSON.stringify(l)).join(', ')}`,
      chosen,
    ),
    unit: 'rows',
    lossLabel: 'loss (nats/row)',
    summary: async () =>
      classificationSummary(await model.evaluate(data), data.size('validation') > 0 ? 'validation' : 'training', {
        accuracy: 'accuracy',
        unit: 'rows',
        heading: 'label',
      }),
  };
}

/** A row of a tagging file: a text, or its tokens, and one tag per token. */
interface TagRow extends FileRow {
  text?: string;
  tokens?: string[];
  tags: unknown[];
}

/** Reads one JSONL record of `--task tag`. */
function parseTagRow(record: Record<string, unknown>, where: string): TagRow {
  const { text, tokens, tags } = record;
  if (!Array.isArray(tags)) throw new CliError(`${where}: "tags" must be an array (one tag per token)`);
  if ((text === undefined) === (tokens === undefined)) throw new CliError(`${where}: give "text" (a string) or "tokens" (an array of strings), one of them`);
  if (text !== undefined) {
    if (typeof text !== 'string' || text.length === 0) throw new CliError(`${where}: "text" must be a non-empty string`);
    return { where, text, tags };
  }
  if (!Array.isArray(tokens) || tokens.length === 0 || tokens.some((t) => typeof t !== 'string' || t.length === 0))
    throw new CliError(`${where}: "tokens" must be a non-empty array of non-empty strings`);
  return { where, tokens: tokens as string[], tags };
}

/** The token ids of a `tokens` row: each entry must be exactly one token of the tokenizer. */
function tokenIds(row: TagRow, tokenizer: Tokenizer): Int32Array {
  return Int32Array.from(row.tokens!, (token, k) => {
    let ids: Int32Array;
    try {
      ids = tokenizer.encode(token);
    } catch (e) {
      throw new CliError(`${row.where}: tokens[${k}]: ${(e as Error).message}`);
    }
    if (ids.length !== 1)
      throw new CliError(
        `${row.where}: tokens[${k}] ${JSON.stringify(token)} is ${ids.length} tokens of the ${tokenizer.type} tokenizer; each entry of "tokens" must be one`,
      );
    return ids[0];
  });
}

/** The token ids of a `text` row. */
function encodeText(row: TagRow, tokenizer: Tokenizer): Int32Array {
  try {
    return tokenizer.encode(row.text!);
  } catch (e) {
    throw new CliError(`${row.where}: text: ${(e as Error).message}`);
  }
}

/** The sum of `values`. */
function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** Refuses a row longer than the model's longest (--max-length). */
function checkRowLength(row: FileRow, steps: number, unit: 'tokens' | 'steps', maxLength: number, resumed: boolean): void {
  if (steps > maxLength) throw new CliError(`${row.where}: ${steps} ${unit}, more than ${resumed ? "the model's maximum" : '--max-length'} ${maxLength}`);
}

/** `train --task tag`: one tag per token, from JSONL. */
async function tagRun(file: string, o: TrainOptions, cmd: Command): Promise<TrainingRun> {
  const resumed = await resumedTaskModel<Tagger>(o, cmd);
  const rows = await readRows(file, o, parseTagRow);
  const split = splitFileRows(rows, o);
  const chosen = applyDefaults(o as DefaultedOptions, cmd, api().profileTexts(split.train.map((r) => r.text ?? r.tokens!.join(' '))));
  let tokenizer = resumed?.tokenizer ?? null;
  if (!tokenizer) {
    const fitter = createTokenizerFitter(tokenizerOptions(o));
    for (const r of split.train) for (const piece of r.text === undefined ? r.tokens! : [r.text]) fitter.push(piece + '\n');
    tokenizer = fitter.finish();
  }
  const found = rows.flatMap((r) => r.tags.map((label, k) => ({ label, where: `${r.where}: tags[${k}]` })));
  const tags = new LabelSet(resumed ? [...resumed.tags] : o.labels, found, resumed ? "the model's tags" : '--labels').labels;
  const tok = tokenizer;
  const maxLength = resumed?.maxLength ?? o.maxLength;
  // Checked here, before training starts, so that the error names the line and the tokenizer.
  const examples = (part: TagRow[]) =>
    part.map((r) => {
      const ids = r.text === undefined ? tokenIds(r, tok) : encodeText(r, tok);
      if (ids.length !== r.tags.length)
        throw new CliError(`${r.where}: ${r.tags.length} tags for ${ids.length} tokens of the ${tok.type} tokenizer (one tag a token)`);
      checkRowLength(r, ids.length, 'tokens', maxLength, resumed !== null);
      return { ids, tags: r.tags };
    });
  const train = examples(split.train);
  const validation = examples(split.validation);
  const model =
    resumed ??
    api().createTagger({ tokenizer, tags: [...tags], ...recurrentOptions(o), embedDim: o.embed, maxLength: o.maxLength, bidirectional: o.bidirectional });
  const extra: Parameters<typeof model.fit>[1] = {
    validation: validation.length > 0 ? (validation as TagExample[]) : undefined,
    ...(o.classWeights ? { classWeights: o.classWeights } : {}),
  };
  const evalRows = validation.length > 0 ? split.validation : split.train;
  return {
    model,
    fittable: {
      fit: (d, options) => rowNaming(split.train, split.validation, () => model.fit(d as Parameters<typeof model.fit>[0], { ...options, ...extra })),
    },
    data: train,
    options: { ...fitOptions(o), batchSize: o.batchSize, seed: o.seed },
    intro: sequenceIntro(
      model,
      !!resumed,
      o.task,
      train.length,
      validation.length,
      `${tokenizer.type} tokenizer, vocabulary ${tokenizer.vocabSize}; tags ${tags.map((l) => JSON.stringify(l)).join(', ')}`,
      chosen,
    ),
    unit: 'tokens',
    lossLabel: 'loss (nats/token)',
    summary: async () =>
      classificationSummary(
        await rowNaming(evalRows, [], () => model.evaluate((validation.length > 0 ? validation : train) as TagExample[])),
        validation.length > 0 ? 'validation' : 'training',
        {
          accuracy: 'token accuracy',
          unit: 'tokens',
          heading: 'tag',
        },
      ),
  };
}

/** A row of a regression file: steps × features, and the target. */
interface RegressRow extends FileRow {
  values: Float32Array;
  /** Features per step. */
  width: number;
  target: number[];
  /** Values per target step (per-step targets), else the target's length. */
  targetWidth: number;
}

/** A JSON array of numbers, or of equal-length arrays of numbers (steps × width), flattened. */
function numberGrid(where: string, value: unknown): { flat: number[]; width: number } {
  if (!Array.isArray(value) || value.length === 0) throw new CliError(`${where}: expected a non-empty array of numbers, or of arrays of numbers (one a step)`);
  const nested = Array.isArray(value[0]);
  const width = nested ? (value[0] as unknown[]).length : 1;
  const flat: number[] = [];
  value.forEach((step: unknown, t) => {
    const cells = nested ? step : [step];
    if (!Array.isArray(cells) || cells.length !== width || width === 0)
      throw new CliError(`${where}[${t}]: expected ${nested ? `an array of ${width} numbers (as the first step)` : 'a number'}`);
    cells.forEach((v: unknown, k) => {
      if (typeof v !== 'number') throw new CliError(`${where}[${t}]${nested ? `[${k}]` : ''}: ${JSON.stringify(v)} is not a number`);
      flat.push(v);
    });
  });
  return { flat, width };
}

/** Reads one JSONL record of `--task regress`. */
function parseRegressRow(record: Record<string, unknown>, where: string): RegressRow {
  if (record.values === undefined) throw new CliError(`${where}: no "values" field (steps × features, e.g. [[0.1, 2], [0.3, 4]])`);
  if (record.target === undefined) throw new CliError(`${where}: no "target" field (a number or an array of numbers)`);
  const values = numberGrid(`${where}: values`, record.values);
  const target = typeof record.target === 'number' ? { flat: [record.target], width: 1 } : numberGrid(`${where}: target`, record.target);
  return { where, values: Float32Array.from(values.flat), width: values.width, target: target.flat, targetWidth: target.width };
}

/** `train --task regress`: dense sequences with a number (or vector) target, from JSONL. */
async function regressRun(file: string, o: TrainOptions, cmd: Command): Promise<TrainingRun> {
  const resumed = await resumedTaskModel<Regressor>(o, cmd);
  const rows = await readRows(file, o, parseRegressRow);
  const inputSize = resumed?.inputSize ?? rows[0].width;
  const odd = rows.find((r) => r.width !== inputSize);
  if (odd) throw new CliError(`${odd.where}: values: steps of ${odd.width} features, but ${resumed ? 'the model takes' : `${rows[0].where} has`} ${inputSize}`);
  const perStep = resumed ? resumed.config.per_step === true : !!o.perStep;
  const outputSize = resumed?.outputSize ?? (perStep ? rows[0].targetWidth : rows[0].target.length);
  const maxLength = resumed?.maxLength ?? o.maxLength;
  for (const r of rows) {
    const steps = r.values.length / inputSize;
    checkRowLength(r, steps, 'steps', maxLength, resumed !== null);
    const want = perStep ? steps * outputSize : outputSize;
    if (r.target.length !== want || (perStep && r.targetWidth !== outputSize)) {
      throw new CliError(
        `${r.where}: target: ${r.target.length} values, expected ${perStep ? `${steps} steps × ${outputSize}` : outputSize}${resumed ? " (the model's output size)" : rows[0] === r ? '' : ` as ${rows[0].where}`}`,
      );
    }
  }
  const split = splitFileRows(rows, o);
  const chosen = applyDefaults(o as DefaultedOptions, cmd, stepsProfile(split.train.length, sum(split.train.map((r) => r.values.length / inputSize))));
  const examples = (part: RegressRow[]) => part.map((r) => ({ values: r.values, target: r.target }));
  const train = examples(split.train);
  const validation = examples(split.validation);
  const model =
    resumed ??
    api().createRegressor({
      inputSize,
      outputSize,
      perStep,
      ...recurrentOptions(o),
      maxLength: o.maxLength,
      bidirectional: o.bidirectional,
      pooling: o.pooling,
    });
  const extra: Parameters<typeof model.fit>[1] = validation.length > 0 ? { validation } : {};
  const evalRows = validation.length > 0 ? split.validation : split.train;
  const evaluatedOn = validation.length > 0 ? 'validation' : 'training';
  return {
    model,
    fittable: {
      fit: (d, options) => rowNaming(split.train, split.validation, () => model.fit(d as Parameters<typeof model.fit>[0], { ...options, ...extra })),
    },
    data: train,
    options: { ...fitOptions(o), batchSize: o.batchSize, seed: o.seed },
    intro: sequenceIntro(
      model,
      !!resumed,
      o.task,
      train.length,
      validation.length,
      `${inputSize} features a step, ${outputSize} output${outputSize === 1 ? '' : 's'}${perStep ? ' a step' : ''}`,
      chosen,
    ),
    unit: perStep ? 'time steps' : 'rows',
    lossLabel: 'loss (mean squared error)',
    summary: async () => {
      const m = await rowNaming(evalRows, [], () => model.evaluate(validation.length > 0 ? validation : train));
      return {
        data: { evaluatedOn, metrics: m },
        lines: [`${evaluatedOn} MSE ${m.mse.toPrecision(4)}, MAE ${m.mae.toPrecision(4)} (${m.count.toLocaleString('en-US')} values)`],
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The command

/** Declares `rnnkit train` on `program`. */
export function addTrainCommand(program: Command, exit: ExitCode): void {
  program
    .command('train')
    .summary('train a language model on text files, or a classify/tag/regress/seq2seq/speech model')
    .description(
      [
        'Train a model and write it to --out.',
        '--task language-model (default): on one or more UTF-8 text files (joined with blank lines).',
        '--task classify: on one JSONL file of {"text": "...", "label": ...} (field names: --text-column, --label-column) or a CSV file (*.csv) with a header row and columns --text-column, --label-column.',
        '--task tag: on one JSONL file of {"text": "...", "tags": [...]} with one tag per token of the chosen --tokenizer (char: one per character; word: one per word or punctuation mark), or {"tokens": [...], "tags": [...]} where each token is one token of the tokenizer.',
        '--task seq2seq: on one JSONL file of {"source": "...", "target": "..."} (field names: --source-column, --target-column) or a CSV file (*.csv, *.tsv) with a header row; the tokens of each side (characters, or words with every digit and ideograph a token) and the model are chosen from the data unless flags give them; reports the exact match of greedy decoding and the token accuracy on the held-out pairs.',
        '--task speech: on a JSONL manifest of {"audio": "a.wav", "text": "..."} (paths relative to the manifest) or a folder of a.wav + a.txt pairs; log-mel features (--mels bands), CTC over every character of the transcripts; the model is chosen from the amount of audio unless flags give it; reports word and character error rates of greedy transcripts of the held-out utterances.',
        '--task regress: on one JSONL file of {"values": [[...], ...] (steps × features), "target": number or [...]} (with --per-step: one number, or one array, per step).',
        'The sequence tasks hold out --validation of the rows (a seeded split) and report accuracy, macro F1 and per-class F1 (classify, tag) or MSE and MAE (regress) on them.',
        '--early-stopping [patience] stops once the validation loss has not improved in that many validations (default 3; validations run at epoch ends or every --validate-every steps) and ends with the weights of the best one; --checkpoint F --checkpoint-best keeps the best model so far in F.',
      ].join('\n'),
    )
    .argument('<data...>', 'UTF-8 text files (language model), or one JSONL/CSV file of rows (--task), or a manifest or folder of WAV files (--task speech)')
    .addOption(new Option('--task <task>', 'what to train').choices(TRAIN_TASKS).default('language-model'))
    .optionsGroup('Tokenizer:')
    .addOption(
      new Option('--tokenizer <type>', 'tokenizer kind (default: chosen from the data; char for language models and tagging)').choices([
        'char',
        'word',
        'byte',
      ]),
    )
    .addOption(new Option('--specials <list>', 'special tokens to add, comma-separated (<pad>,<unk>,<bos>,<eos>)').argParser(parseSpecials))
    .addOption(new Option('--unknown <policy>', 'unknown text at encode time: error, or map to <unk>').choices(['error', 'unk']))
    .addOption(new Option('--lossy', 'read invalid UTF-8 in the corpus or data file as U+FFFD instead of refusing the file'))
    .addOption(new Option('--no-lowercase', 'word tokenizer: keep case'))
    .addOption(new Option('--punctuation <mode>', 'word tokenizer: punctuation as tokens, dropped, or kept on words').choices(['split', 'drop', 'keep']))
    .addOption(intOption('--min-count <n>', 'word tokenizer: keep words seen at least n times', 1))
    .addOption(intOption('--max-vocab <n>', 'word tokenizer: largest vocabulary (specials included)', 1))
    .optionsGroup('Model:')
    .addOption(new Option('--cell <type>', 'recurrent cell (default: lstm for language models, gru otherwise)').choices(['rnn', 'lstm', 'gru']))
    .addOption(new Option('--nonlinearity <f>', 'RNN cell nonlinearity').choices(['tanh', 'relu']))
    .addOption(intOption('--hidden <n>', 'hidden units per layer (default: chosen from the size of the data)', 1))
    .addOption(intOption('--layers <n>', 'stacked recurrent layers (default: chosen from the size of the data)', 1))
    .addOption(intOption('--embed <n>', 'embedding width (default 64)', 1))
    .addOption(numOption('--dropout <p>', 'dropout between recurrent layers', 0, 0.99).default(0))
    .addOption(new Option('--skip', 'add the input-to-output skip term to the logits'))
    .optionsGroup('Sequence tasks (--task classify, tag, regress):')
    .addOption(new Option('--text-column <name>', 'classify: CSV column (or JSONL field) of the text (default "text")'))
    .addOption(new Option('--label-column <name>', 'classify: CSV column (or JSONL field) of the label (default "label")'))
    .addOption(new Option('--source-column <name>', 'seq2seq: CSV column (or JSONL field) of the source text (default "source")'))
    .addOption(new Option('--target-column <name>', 'seq2seq: CSV column (or JSONL field) of the target text (default "target")'))
    .addOption(new Option('--attention <score>', 'seq2seq: attention score (default general)').choices(['additive', 'dot', 'general']))
    .addOption(
      new Option(
        '--source-tokenizer <type>',
        'seq2seq: tokens of the sources: char, or word (every digit and CJK ideograph a token; default: chosen from the data)',
      ).choices(['char', 'word']),
    )
    .addOption(
      new Option('--target-tokenizer <type>', 'seq2seq: tokens of the targets, as --source-tokenizer (default: chosen from the data)').choices([
        'char',
        'word',
      ]),
    )
    .addOption(
      new Option(
        '--labels <list>',
        'classify, tag: the declared labels (tags), comma-separated, in class-id order; numbers match numeric labels; other labels are errors (default: those found, sorted)',
      ).argParser(parseLabels),
    )
    .addOption(
      new Option('--pooling <how>', 'classify (default max), regress (default last): how the steps of a row become one vector').choices([
        'last',
        'mean',
        'max',
      ]),
    )
    .addOption(new Option('--bidirectional', 'read each row in both directions (default for classify and tag)'))
    .addOption(new Option('--no-bidirectional', 'read each row forwards only (default for regress)'))
    .addOption(new Option('--class-weights <how>', 'classify, tag: weigh the loss of each class by n / (classes · count)').choices(['balanced']))
    .addOption(intOption('--max-length <n>', 'longest row in tokens or steps; longer rows are errors', 1).default(1024))
    .addOption(new Option('--per-step', 'regress: one target per step (many-to-many) instead of one per row'))
    .addOption(intOption('--mels <n>', 'speech: log-mel bands per 10 ms frame (default 40)', 1))
    .addOption(
      new Option(
        '--spec-augment',
        'speech: SpecAugment masks (2 × up to 8 mel bands, 2 × up to 20 frames) over each training utterance, drawn anew every step (default)',
      ),
    )
    .addOption(new Option('--no-spec-augment', 'speech: train on the features unmasked'))
    .addOption(
      intOption('--frame-stacking <k>', 'speech: frames joined into one recurrent step, shortening the recurrence k-fold (default: chosen from the data)', 1),
    )
    .optionsGroup('Training:')
    .addOption(intOption('--seq-len <n>', 'tokens per training window (default 100)', 1))
    .addOption(intOption('--batch-size <n>', 'windows (language model) or rows (--task) per batch (default 32)', 1))
    .addOption(intOption('--stride <n>', 'tokens between window starts (default: --seq-len)', 1))
    .addOption(new Option('--tbptt', 'truncated BPTT: carry the state across consecutive windows'))
    .addOption(new Option('--optimizer <type>', 'optimizer').choices(['sgd', 'adam', 'adamw', 'rmsprop', 'adagrad']).default('adam'))
    .addOption(numOption('--lr <rate>', 'learning rate (default: 2e-3 for adam/adamw/rmsprop, 0.1 sgd, 0.01 adagrad)', 0, Infinity, true))
    .addOption(numOption('--momentum <m>', 'SGD/RMSprop momentum', 0, 1))
    .addOption(numOption('--weight-decay <w>', 'L2 penalty (decoupled for adamw)', 0))
    .addOption(new Option('--schedule <type>', 'learning-rate schedule').choices(['constant', 'step', 'exponential', 'cosine']).default('constant'))
    .addOption(intOption('--warmup <steps>', 'linear warm-up steps', 0))
    .addOption(intOption('--step-size <steps>', 'step schedule: steps between decays', 1))
    .addOption(numOption('--gamma <g>', 'step/exponential schedule: decay factor', 0, 1, true))
    .addOption(numOption('--min-lr <rate>', 'cosine schedule: final learning rate', 0))
    .addOption(numOption('--clip-norm <n>', 'clip the global gradient norm to n (default 1)', 0, Infinity, true))
    .addOption(
      numOption(
        '--scheduled-sampling <p>',
        'seq2seq: with probability p per target step the decoder reads its own previous prediction instead of the target (default 0)',
        0,
        1,
      ),
    )
    .addOption(intOption('--scheduled-sampling-ramp <steps>', 'seq2seq: raise the --scheduled-sampling probability linearly from 0 over this many steps', 1))
    .addOption(intOption('--epochs <n>', 'passes over the training data (default: chosen from the size of the data, with early stopping)', 1))
    .addOption(intOption('--max-steps <n>', 'stop after n optimizer steps (of this run)', 1))
    .addOption(numOption('--time-limit <seconds>', 'stop after this many seconds', 0, Infinity, true))
    .addOption(
      numOption(
        '--validation <fraction>',
        'hold out this fraction for validation: the tail of the tokens (language model), seeded rows (--task)',
        0,
        0.9,
      ).default(0.1),
    )
    .addOption(intOption('--validate-every <steps>', 'steps between validation passes', 1))
    .addOption(
      intOption(
        '--early-stopping [patience]',
        'stop when the validation loss has not improved in this many validations (default 3), keeping the best weights',
        1,
      ).preset('3'),
    )
    .addOption(intOption('--log-every <steps>', 'steps between progress events', 1))
    .addOption(intOption('--threads <n>', 'compute threads, 1 to 1024 (default: one per core; sets RNNKIT_THREADS)', 1, 1024))
    .optionsGroup('Output:')
    .addOption(new Option('--out <model>', 'model file to write').default('model.safetensors'))
    .addOption(new Option('--chart <svg>', 'write the loss curves to this SVG file'))
    .addOption(new Option('--checkpoint <path>', 'checkpoint file, written every --checkpoint-every steps and on Ctrl-C'))
    .addOption(intOption('--checkpoint-every <steps>', 'steps between checkpoints (default 1000; with --checkpoint-best, none unless given)', 1))
    .addOption(new Option('--checkpoint-best', 'write --checkpoint at every validation that improves the validation loss: the best model so far'))
    .addOption(new Option('--resume <checkpoint>', 'continue training from a checkpoint (its tokenizer and architecture)'))
    .addOption(jsonOption())
    .optionsGroup('Training:')
    .addOption(new Option('--seed <n>', 'seed of initialisation, shuffling and dropout').argParser(SEED).default(0))
    .optionsGroup('Options:')
    .action(exitingWith(exit, train));
}
