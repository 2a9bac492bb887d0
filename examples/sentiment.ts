/**
 * Sentiment classification of review sentences (data/sentiment.jsonl, CC BY 4.0, see
 * data/README.md) with a word-level bidirectional GRU.
 *
 *   npm run example:sentiment        (or: npx vite-node examples/sentiment.ts)
 *
 * The 80/20 split is seeded; the word vocabulary is fitted on the 80 % only, so words first seen in
 * the held-out 20 % read as <unk>, as they would for new text. Prints accuracy, per-class F1 and
 * the training time on the held-out 20 %.
 */
import * as path from 'path';
import { LabelledDataset, createClassifier } from '../src/index';

const NAMES: Record<string, string> = { '0': 'negative', '1': 'positive' };

async function main(): Promise<void> {
  const file = path.join(__dirname, '..', 'data', 'sentiment.jsonl');
  const data = await LabelledDataset.fromJSONL(file, {
    batchSize: 32,
    validation: 0.2,
    seed: 7,
    labels: [0, 1],
    // Words seen once in training carry more noise than signal in 1,900 sentences; they read as <unk>.
    tokenizerOptions: { type: 'word', specials: ['<pad>', '<unk>'], minCount: 2 },
  });
  console.log(`sentiment: ${data.size('train')} training / ${data.size('validation')} held-out sentences, vocabulary ${data.tokenizer.vocabSize}`);
  const model = createClassifier({
    tokenizer: data.tokenizer,
    labels: [0, 1],
    cell: 'gru',
    bidirectional: true,
    pooling: 'max',
    embedDim: 64,
    hiddenSize: 64,
    seed: 1,
  });
  const t0 = Date.now();
  // The validation split is reported as training goes (valAccuracy), never used to pick weights.
  const epochs = Number(process.env.EPOCHS ?? 5);
  await model.fit(data, {
    epochs,
    // Annealed to zero over the run, so the last epochs refine rather than keep fitting noise.
    schedule: { type: 'cosine', tMax: epochs * data.numBatches('train') },
    optimizer: { type: 'adamw', lr: 3e-3, weightDecay: 0.01 },
    clipNorm: 5,
    seed: 3,
    onProgress: (e) => {
      if (e.type === 'validation') console.log(`  step ${e.step}: held-out loss ${e.valLoss!.toFixed(3)}, accuracy ${e.valAccuracy?.toFixed(3)}`);
    },
  });
  const seconds = (Date.now() - t0) / 1000;
  const r = await model.evaluate(data); // the dataset's validation split: the held-out 20 %
  console.log(`held-out accuracy ${r.accuracy.toFixed(4)} (${r.count} sentences), loss ${r.loss.toFixed(4)}, macro F1 ${r.macroF1.toFixed(4)}`);
  for (const m of r.perClass)
    console.log(`  ${NAMES[String(m.label)]}: precision ${m.precision.toFixed(3)}, recall ${m.recall.toFixed(3)}, F1 ${m.f1.toFixed(3)} (${m.support})`);
  console.log(`  confusion (rows true, columns predicted): ${JSON.stringify(r.confusion)}`);
  console.log(`training time ${seconds.toFixed(1)} s`);
  for (const s of ['An absolute delight from start to finish.', 'The food was cold and the waiter was rude.']) {
    const p = await model.predict(s);
    console.log(`  ${JSON.stringify(s)} → ${NAMES[String(p.label)]} (${p.probability.toFixed(2)})`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
