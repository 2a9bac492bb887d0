/**
 * The defaults of a task on a data set: the model, its tokenizer and its training, chosen by the
 * engine from what the data looks like (`crates/rnn-core/src/defaults.rs`, the one table the API
 * and `rnnkit train` share). This module only converts: texts to their profile, the task's name.
 */
import type { DataProfile, Recommendation, Seq2SeqRecommendation, SpeechRecommendation } from '../index';
import { typeError } from './errors';
import { native } from './native';

export type { DataProfile, Recommendation, Seq2SeqRecommendation, SpeechRecommendation, TokenizerRecommendation } from '../index';

/** The tasks the defaults know, in the API's spelling. */
export type DefaultsTask = 'language_model' | 'classify' | 'tag' | 'regress';

/**
 * What `texts` look like to the defaults: characters, whitespace-separated words (lower-cased,
 * surrounding punctuation removed), and how much of the text the words seen twice cover.
 */
export function profileTexts(texts: readonly string[]): DataProfile {
  if (!Array.isArray(texts)) throw typeError('ERR_RNNKIT_CONFIG', `texts: expected an array of strings, got ${typeof texts}`);
  texts.forEach((t, i) => {
    if (typeof t !== 'string') throw typeError('ERR_RNNKIT_CONFIG', `texts[${i}]: expected a string, got ${typeof t}`);
  });
  return native.profileTexts(texts as string[]);
}

/**
 * The defaults of `task` on `data` (its texts, or their {@link profileTexts profile}): tokenizer
 * (`tokenizer`, `lowercase`, `minCount`), cell and sizes, batch size,
 * epochs with early stopping, learning rate, and `reasons` (one sentence a choice). `rnnkit train`
 * uses exactly these for every flag not given.
 *
 * @example
 * const rec = recommendOptions('classify', rows.map((r) => r.text));
 * const tokenizerOptions = { type: rec.tokenizer!, lowercase: rec.lowercase, minCount: rec.minCount, specials: ['<pad>', '<unk>'] };
 * const data = LabelledDataset.fromArray(rows, { tokenizerOptions, batchSize: rec.batchSize, validation: 0.1 });
 */
export function recommendOptions(task: DefaultsTask, data: readonly string[] | DataProfile): Recommendation {
  const profile = Array.isArray(data) ? profileTexts(data) : (data as DataProfile);
  return native.recommendOptions(task, profile);
}

/**
 * The defaults of a sequence-to-sequence model on pairs: per side a tokenizer (`char`, or `word`
 * with `splitDigits`/`splitCjk`, case and punctuation kept, when the texts are a closed
 * vocabulary of words, digits and ideographs, as numbers are), the architecture, batch size,
 * epochs with early stopping, learning rate and its cosine schedule, and `reasons` (source
 * tokenizer, target tokenizer, model, training). `rnnkit train --task seq2seq` uses exactly these
 * for every flag not given.
 *
 * @example
 * const rec = recommendSeq2SeqOptions(pairs.map((p) => p.source), pairs.map((p) => p.target));
 * const { type, splitDigits, splitCjk, lowercase, punctuation } = rec.targetTokenizer;
 * const targetTokenizer = fitTokenizer(pairs.map((p) => p.target), type === 'word'
 *   ? { type, splitDigits, splitCjk, lowercase, punctuation, specials: ['<bos>', '<eos>'] }
 *   : { type, specials: ['<bos>', '<eos>'], unknown: 'error' });
 */
export function recommendSeq2SeqOptions(sources: readonly string[] | DataProfile, targets: readonly string[] | DataProfile): Seq2SeqRecommendation {
  const profile = (data: readonly string[] | DataProfile) => (Array.isArray(data) ? profileTexts(data) : (data as DataProfile));
  return native.recommendSeq2SeqOptions(profile(sources), profile(targets));
}

/**
 * The defaults of a speech recognizer trained on `utterances` utterances of `frames` feature
 * frames in all (10 ms each with the default features): the architecture (a bidirectional GRU),
 * the frames stacked into one recurrent step, epochs with early stopping, the learning rate and
 * its cosine schedule, the gradient clip, and `reasons` (model, training). `rnnkit train --task
 * speech` uses exactly these for every flag not given.
 *
 * @example
 * const data = await AudioDataset.load('train.jsonl', { features, validation: 0.05 });
 * const rec = recommendSpeechOptions(data.size('train'), data.frames('train'));
 * const model = createSpeechRecognizer({ features, alphabet: data.alphabet, cell: rec.cell, hiddenSize: rec.hiddenSize, numLayers: rec.numLayers, frameStacking: rec.frameStacking });
 */
export function recommendSpeechOptions(utterances: number, frames: number): SpeechRecommendation {
  return native.recommendSpeechOptions(utterances, frames);
}
