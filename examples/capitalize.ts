/**
 * Restoring capitalisation, one tag per character, on *Pride and Prejudice*
 * (data/pride-and-prejudice.txt, public domain): the model reads the lower-cased text and tags
 * each character "U" (was upper-case) or "l". Trained on the first 90 % of the book, scored on
 * the last 10 % against the rule "capitalise after `.`, `!`, `?`, at a new paragraph, and the
 * word i" computed here on the same tail.
 *
 *   npm run example:capitalize       (or: npx vite-node examples/capitalize.ts)
 */
import * as fs from 'fs';
import * as path from 'path';
import { createTagger, fitTokenizer, type ClassMetrics } from '../src/index';

/** Characters per row. Rows are cut from the running text, so newlines (paragraphs) are inside. */
const WINDOW = 192;
const HALF = WINDOW / 2;

const isUpper = (c: string): boolean => c !== c.toLowerCase();
const isLetter = (c: string): boolean => c.toLowerCase() !== c.toUpperCase();
const tagsOf = (s: string): string[] => Array.from(s, (c) => (isUpper(c) ? 'U' : 'l'));

/**
 * The rule, on the lower-cased text: a letter is upper-case when it starts a word that follows a
 * sentence end (`.`, `!`, `?`) or starts a paragraph (a blank line before it), looking back over
 * spaces, newlines and quotation marks; and the word "i" on its own. The start of the text counts
 * as a paragraph start.
 */
function ruleTags(lower: string, from: number, to: number): string[] {
  const out: string[] = [];
  for (let p = from; p < to; p++) {
    const c = lower[p];
    let upper = false;
    if (isLetter(c) && !isLetter(lower[p - 1] ?? ' ')) {
      let q = p - 1;
      let newlines = 0;
      while (q >= 0 && /[\s"'_(]/.test(lower[q])) {
        if (lower[q] === '\n') newlines++;
        q--;
      }
      if (q < 0 || newlines >= 2 || '.!?'.includes(lower[q])) upper = true;
      if (c === 'i' && !isLetter(lower[p + 1] ?? ' ')) upper = true;
    }
    out.push(upper ? 'U' : 'l');
  }
  return out;
}

/** Precision, recall and F1 of the tag "U" in `predicted` against `truth` (0/0 counts as 0). */
function upperCaseScores(truth: readonly string[], predicted: readonly string[]): ClassMetrics {
  if (truth.length !== predicted.length) throw new Error(`${predicted.length} predicted tags for ${truth.length} true tags`);
  let tp = 0;
  let support = 0;
  let predictedU = 0;
  for (let i = 0; i < truth.length; i++) {
    if (truth[i] === 'U') support++;
    if (predicted[i] === 'U') predictedU++;
    if (truth[i] === 'U' && predicted[i] === 'U') tp++;
  }
  const precision = predictedU === 0 ? 0 : tp / predictedU;
  const recall = support === 0 ? 0 : tp / support;
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { label: 'U', precision, recall, f1, support };
}

async function main(): Promise<void> {
  const text = fs.readFileSync(path.join(__dirname, '..', 'data', 'pride-and-prejudice.txt'), 'utf8');
  const lower = text.toLowerCase();
  if (lower.length !== text.length) throw new Error('lower-casing changed the length of the text');
  const split = Math.floor(text.length * 0.9);
  // The first 450k characters keep the run well inside two minutes on two cores; TRAIN_CHARS overrides.
  const trainChars = Number(process.env.TRAIN_CHARS ?? 450_000);
  const tokenizer = fitTokenizer(lower, { type: 'char', specials: ['<pad>'] });

  // Training rows: consecutive windows of the first 90 %, twice, the second pass shifted by half a
  // window so every character is also seen away from a row edge.
  const train: { text: string; tags: string[] }[] = [];
  for (const offset of [0, HALF]) {
    for (let s = offset; s + WINDOW <= Math.min(split, trainChars); s += WINDOW)
      train.push({ text: lower.slice(s, s + WINDOW), tags: tagsOf(text.slice(s, s + WINDOW)) });
  }
  const model = createTagger({ tokenizer, tags: ['l', 'U'], cell: 'gru', bidirectional: true, embedDim: 24, hiddenSize: 64, numLayers: 2, seed: 2 });
  console.log(`capitalize: ${train.length} training rows of ${WINDOW} characters, ${model.numParams} parameters`);
  const t0 = Date.now();
  await model.fit(train, {
    epochs: Number(process.env.EPOCHS ?? 1),
    batchSize: 32,
    optimizer: { type: 'adam', lr: 4e-3 },
    clipNorm: 5,
    seed: 5,
    onProgress: (e) => {
      if (e.type === 'step' && e.step % 100 === 0) console.log(`  step ${e.step}/${e.totalSteps}: loss ${e.loss.toFixed(4)}`);
    },
  });
  const seconds = (Date.now() - t0) / 1000;

  // The tail, read in windows every HALF characters; each character takes the prediction of the
  // window in which it sits most centrally, so no character is judged from a row edge.
  const starts: number[] = [];
  for (let s = split - HALF; s < text.length; s += HALF) starts.push(s);
  const windows = starts.map((s) => lower.slice(s, Math.min(s + WINDOW, text.length)));
  const predicted = await model.predict(windows);
  const modelTags: string[] = [];
  for (let p = split; p < text.length; p++) {
    // Window k's central half is [starts[k] + HALF/2, starts[k] + HALF/2 + HALF).
    const w = Math.min(Math.floor((p - starts[0] - HALF / 2) / HALF), starts.length - 1);
    modelTags.push(predicted[w].tags[p - starts[w]] as string);
  }
  const truth = tagsOf(text.slice(split));
  const rule = ruleTags(lower, split, text.length);
  const m = upperCaseScores(truth, modelTags);
  const r = upperCaseScores(truth, rule);
  console.log(`held-out tail: ${truth.length} characters, ${m.support} upper-case`);
  console.log(`  model  upper-case F1 ${m.f1.toFixed(4)} (precision ${m.precision.toFixed(3)}, recall ${m.recall.toFixed(3)})`);
  console.log(`  rule   upper-case F1 ${r.f1.toFixed(4)} (precision ${r.precision.toFixed(3)}, recall ${r.recall.toFixed(3)})`);
  console.log(`training time ${seconds.toFixed(1)} s`);
  const sample = lower.slice(split + 2000, split + 2240);
  const tagged = await model.predict(sample);
  console.log(
    '  ' +
      Array.from(sample, (c, i) => (tagged.tags[i] === 'U' ? c.toUpperCase() : c))
        .join('')
        .replace(/\n/g, ' '),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
