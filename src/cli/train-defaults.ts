/**
 * What `rnnkit train` does for the flags not given: the engine's defaults for the task on the
 * data (`recommendOptions`, the table the API shares), filled into the parsed options, with one
 * line a choice for the log. A flag given on the command line always wins.
 */
import type { Command } from 'commander';
import * as fs from 'node:fs';
import type { DataProfile, Recommendation } from '../defaults';
import type { Pooling } from '../types';
import { api } from './models';

/** The options the defaults fill (a subset of `train`'s parsed options). */
export interface DefaultedOptions {
  task: 'language-model' | 'classify' | 'tag' | 'regress';
  tokenizer?: 'char' | 'word' | 'byte';
  lowercase: boolean;
  minCount?: number;
  cell?: 'rnn' | 'lstm' | 'gru';
  hidden?: number;
  layers?: number;
  embed?: number;
  bidirectional?: boolean;
  pooling?: Pooling;
  perStep?: boolean;
  seqLen?: number;
  stride?: number;
  tbptt?: boolean;
  batchSize?: number;
  clipNorm?: number;
  lr?: number;
  schedule: 'constant' | 'step' | 'exponential' | 'cosine';
  /** Set by the defaults: the cosine's period is the run (epochs × batches per epoch), known once the data is read. */
  cosineOverRun?: boolean;
  epochs?: number;
  maxSteps?: number;
  timeLimit?: number;
  validation: number;
  earlyStopping?: number;
  monitor?: 'valLoss' | 'valAccuracy';
  resume?: string;
}

/** The engine's name of a CLI task. */
function engineTask(task: DefaultedOptions['task']): 'language_model' | 'classify' | 'tag' | 'regress' {
  return task === 'language-model' ? 'language_model' : task;
}

/** The characters of the text files (code points: UTF-8 bytes that do not continue a character), read in bounded chunks. */
export function countCharacters(files: readonly string[]): number {
  let chars = 0;
  const buffer = Buffer.allocUnsafe(1 << 20);
  for (const file of files) {
    const fd = fs.openSync(file, 'r');
    try {
      for (let n; (n = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0;) {
        for (let i = 0; i < n; i++) if ((buffer[i] & 0xc0) !== 0x80) chars++;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return chars;
}

/** The profile of a language model's training text: its characters, less the validation tail. */
export function textProfile(files: readonly string[], validation: number): DataProfile {
  const chars = Math.round(countCharacters(files) * (1 - validation));
  return { rows: 1, chars, distinctChars: 0, words: 0, distinctWords: 0, repeatedWordOccurrences: 0 };
}

/** The profile of dense rows: their steps stand for characters. */
export function stepsProfile(rows: number, steps: number): DataProfile {
  return { rows, chars: steps, distinctChars: 0, words: 0, distinctWords: 0, repeatedWordOccurrences: 0 };
}

/**
 * Fills the options of `o` that `cmd` did not get from the command line with the engine's
 * defaults for `profile`, and returns the lines that say what was chosen (none when nothing
 * was). With `--resume` only the data order is filled: the checkpoint fixes the rest.
 */
export function applyDefaults(o: DefaultedOptions, cmd: Command, profile: DataProfile): string[] {
  const given = (key: keyof DefaultedOptions) => cmd.getOptionValueSource(key) === 'cli' || o[key] !== undefined;
  const rec: Recommendation = api().recommendOptions(engineTask(o.task), profile);
  const chosen: string[] = [];
  const fill = <K extends keyof DefaultedOptions>(key: K, value: DefaultedOptions[K]) => {
    if (given(key)) return false;
    o[key] = value;
    return true;
  };
  fill('batchSize', rec.batchSize);
  if (o.task === 'language-model') {
    fill('seqLen', rec.seqLen);
    // Carrying the state reads the windows in order: it replaces a given --stride's windows.
    if (!given('stride')) fill('tbptt', rec.tbptt);
  }
  fill('clipNorm', rec.clipNorm);
  if (o.resume) return [];
  // The recommended rate (and its schedule) is Adam's; another --optimizer keeps its own default.
  const ownRate = cmd.getOptionValueSource('optimizer') === 'cli' || given('lr');
  if (!ownRate) o.lr = rec.learningRate;
  if (o.task === 'language-model' || o.task === 'classify' || o.task === 'tag') {
    if (rec.tokenizer && fill('tokenizer', rec.tokenizer)) {
      if (rec.tokenizer === 'word' && cmd.getOptionValueSource('lowercase') !== 'cli') o.lowercase = rec.lowercase;
      fill('minCount', rec.tokenizer === 'word' ? rec.minCount : undefined);
      chosen.push(rec.reasons[0]);
    } else fill('tokenizer', 'char');
  }
  const sized = [fill('cell', rec.cell), fill('hidden', rec.hiddenSize), fill('layers', rec.numLayers), fill('embed', rec.embedDim)].some(Boolean);
  if (o.task !== 'language-model') {
    fill('bidirectional', rec.bidirectional);
    if (o.task !== 'tag' && !o.perStep) fill('pooling', rec.pooling);
  }
  if (sized) chosen.push(rec.reasons[rec.reasons.length - 2]);
  const limited = given('epochs') || given('maxSteps') || given('timeLimit');
  if (!limited) {
    o.epochs = rec.epochs;
    if (rec.schedule === 'cosine' && !ownRate && cmd.getOptionValueSource('schedule') !== 'cli') {
      o.schedule = 'cosine';
      o.cosineOverRun = true;
    }
    if (o.validation > 0 && !given('earlyStopping')) {
      o.earlyStopping = rec.patience;
      o.monitor = rec.monitor;
      chosen.push(rec.reasons[rec.reasons.length - 1]);
    } else chosen.push(`${rec.epochs} epochs`);
  }
  return chosenLines(chosen);
}

/** The training options the seq2seq and speech defaults fill (a subset of `train`'s parsed options). */
interface TrainingDefaultedOptions {
  batchSize?: number;
  clipNorm?: number;
  lr?: number;
  schedule: 'constant' | 'step' | 'exponential' | 'cosine';
  cosineOverRun?: boolean;
  epochs?: number;
  maxSteps?: number;
  timeLimit?: number;
  validation: number;
  earlyStopping?: number;
  monitor?: 'valLoss' | 'valAccuracy';
}

/** The training part of a seq2seq or speech recommendation. */
interface TrainingRecommendation {
  clipNorm: number;
  learningRate: number;
  schedule: 'constant' | 'cosine';
  epochs: number;
  patience: number;
  monitor: 'valLoss' | 'valAccuracy';
}

/**
 * Fills the training options not given from `rec`: the clip, the rate and (unless the run's
 * length is given in steps or seconds) its cosine over the run, the epochs and early stopping.
 * Returns the line that says how long the run is when the defaults chose it (`epochsReason`
 * with early stopping), else null.
 */
function fillTraining(o: TrainingDefaultedOptions, cmd: Command, rec: TrainingRecommendation, epochsReason: string): string | null {
  const given = (key: keyof TrainingDefaultedOptions) => cmd.getOptionValueSource(key) === 'cli' || o[key] !== undefined;
  if (!given('clipNorm')) o.clipNorm = rec.clipNorm;
  const ownRate = cmd.getOptionValueSource('optimizer') === 'cli' || given('lr');
  if (!ownRate) o.lr = rec.learningRate;
  // The rate decays over the run, whether its length is the defaults' or given in epochs.
  if (rec.schedule === 'cosine' && !ownRate && cmd.getOptionValueSource('schedule') !== 'cli' && !given('maxSteps') && !given('timeLimit')) {
    o.schedule = 'cosine';
    o.cosineOverRun = true;
  }
  if (given('epochs') || given('maxSteps') || given('timeLimit')) return null;
  o.epochs = rec.epochs;
  if (o.validation > 0 && !given('earlyStopping')) {
    o.earlyStopping = rec.patience;
    o.monitor = rec.monitor;
    return epochsReason;
  }
  return `${rec.epochs} epochs`;
}

/** The log lines of the choices made, under their heading; none when every choice was given. */
function chosenLines(chosen: string[]): string[] {
  return chosen.length === 0 ? [] : ['defaults for this data (flags override them):', ...chosen.map((line) => `  - ${line}`)];
}

/** The options the seq2seq defaults fill (a subset of `train`'s parsed options). */
export interface Seq2SeqDefaultedOptions extends TrainingDefaultedOptions {
  sourceTokenizer?: 'char' | 'word';
  targetTokenizer?: 'char' | 'word';
  cell?: 'rnn' | 'lstm' | 'gru';
  hidden?: number;
  layers?: number;
  embed?: number;
  bidirectional?: boolean;
  attention?: 'additive' | 'dot' | 'general';
}

/**
 * `applyDefaults` for `--task seq2seq`: the engine's defaults for pairs whose sides look like
 * `source` and `target` (`recommendSeq2SeqOptions`), filled into the options not given, and the
 * lines that say what was chosen.
 */
export function applySeq2SeqDefaults(o: Seq2SeqDefaultedOptions, cmd: Command, source: DataProfile, target: DataProfile): string[] {
  const given = (key: keyof Seq2SeqDefaultedOptions) => cmd.getOptionValueSource(key) === 'cli' || o[key] !== undefined;
  const rec = api().recommendSeq2SeqOptions(source, target);
  const chosen: string[] = [];
  const fill = <K extends keyof Seq2SeqDefaultedOptions>(key: K, value: Seq2SeqDefaultedOptions[K]) => {
    if (given(key)) return false;
    o[key] = value;
    return true;
  };
  if (fill('sourceTokenizer', rec.sourceTokenizer.type)) chosen.push(rec.reasons[0]);
  if (fill('targetTokenizer', rec.targetTokenizer.type)) chosen.push(rec.reasons[1]);
  fill('batchSize', rec.batchSize);
  const sized = [
    fill('cell', rec.cell),
    fill('hidden', rec.hiddenSize),
    fill('layers', rec.numLayers),
    fill('embed', rec.embedDim),
    fill('bidirectional', rec.bidirectional),
    fill('attention', rec.attention),
  ].some(Boolean);
  if (sized) chosen.push(rec.reasons[2]);
  const length = fillTraining(o, cmd, rec, rec.reasons[3]);
  if (length !== null) chosen.push(length);
  return chosenLines(chosen);
}

/** The options the speech defaults fill (a subset of `train`'s parsed options). */
export interface SpeechDefaultedOptions extends TrainingDefaultedOptions {
  cell?: 'rnn' | 'lstm' | 'gru';
  hidden?: number;
  layers?: number;
  bidirectional?: boolean;
  frameStacking?: number;
  specAugment?: boolean;
}

/**
 * `applyDefaults` for `--task speech`: the engine's defaults for `utterances` training utterances
 * of `frames` feature frames (`recommendSpeechOptions`), filled into the options not given, and
 * the lines that say what was chosen.
 */
export function applySpeechDefaults(o: SpeechDefaultedOptions, cmd: Command, utterances: number, frames: number): string[] {
  const given = (key: keyof SpeechDefaultedOptions) => cmd.getOptionValueSource(key) === 'cli' || o[key] !== undefined;
  const rec = api().recommendSpeechOptions(utterances, frames);
  const fill = <K extends keyof SpeechDefaultedOptions>(key: K, value: SpeechDefaultedOptions[K]) => {
    if (given(key)) return false;
    o[key] = value;
    return true;
  };
  const chosen: string[] = [];
  const sized = [
    fill('cell', rec.cell),
    fill('hidden', rec.hiddenSize),
    fill('layers', rec.numLayers),
    fill('bidirectional', rec.bidirectional),
    fill('frameStacking', rec.frameStacking),
    fill('specAugment', rec.specAugment),
  ].some(Boolean);
  if (sized) chosen.push(rec.reasons[0]);
  const length = fillTraining(o, cmd, rec, rec.reasons[1]);
  if (length !== null) chosen.push(length);
  return chosenLines(chosen);
}
