/**
 * Numbers in three directions with one sequence-to-sequence model: English words → digits,
 * Chinese numerals → digits, digits → English words (data/numbers-train.jsonl, 60,000 pairs;
 * see data/README.md), judged on data/numbers-test.jsonl, 1,000 numbers per direction that the
 * training file holds in no direction.
 *
 *   npm run example:numbers        (or: npx vite-node examples/numbers.ts; EPOCHS=6 for the full run)
 *
 * The tokenizers and the model are the engine's defaults for these pairs (`recommendSeq2SeqOptions`):
 * words with every digit and ideograph a token of its own, so a nine-digit number is nine steps
 * and its English words about fifteen. This smaller run trains 2 epochs (a few minutes on two
 * cores); `rnnkit train --task seq2seq` with the defaults' 16 epochs is the full run (docs/CLI.md).
 */
import * as path from 'path';
import {
  PairDataset,
  createSeq2Seq,
  fitTokenizer,
  readPairs,
  recommendSeq2SeqOptions,
  type TokenizerOptions,
  type TokenizerRecommendation,
} from '../src/index';

/** A side's tokenizer as the defaults recommend it, with the specials its side needs. */
function tokenizerOptions(rec: TokenizerRecommendation, specials: ('<unk>' | '<bos>' | '<eos>')[]): TokenizerOptions {
  const unknown = specials.includes('<unk>') ? 'unk' : 'error';
  if (rec.type === 'char') return { type: 'char', specials, unknown };
  const { splitDigits, splitCjk, lowercase, punctuation } = rec;
  return { type: 'word', specials, unknown, splitDigits, splitCjk, lowercase, punctuation };
}

async function main(): Promise<void> {
  const data = (name: string) => path.join(__dirname, '..', 'data', name);
  const pairs = await readPairs(data('numbers-train.jsonl'));
  const rec = recommendSeq2SeqOptions(
    pairs.map((p) => p.source),
    pairs.map((p) => p.target),
  );
  for (const reason of rec.reasons) console.log(`  - ${reason}`);
  // One line a text: the fitter reads its pieces as one text.
  const sourceTokenizer = fitTokenizer(
    pairs.map((p) => `${p.source}\n`),
    tokenizerOptions(rec.sourceTokenizer, ['<unk>']),
  );
  const targetTokenizer = fitTokenizer(
    pairs.map((p) => `${p.target}\n`),
    tokenizerOptions(rec.targetTokenizer, ['<bos>', '<eos>']),
  );
  const train = PairDataset.fromArray(pairs, { sourceTokenizer, targetTokenizer, batchSize: rec.batchSize, seed: 1 });
  const model = createSeq2Seq({
    sourceTokenizer,
    targetTokenizer,
    cell: rec.cell,
    hiddenSize: rec.hiddenSize,
    layers: rec.numLayers,
    embedDim: rec.embedDim,
    bidirectional: rec.bidirectional,
    attention: rec.attention,
    seed: 1,
  });
  const epochs = Number(process.env.EPOCHS ?? 2);
  console.log(`numbers: ${train.size()} pairs, ${model.numParams.toLocaleString('en-US')} parameters, ${epochs} epochs`);
  const t0 = Date.now();
  await model.fit(train, {
    epochs,
    optimizer: { type: 'adam', lr: rec.learningRate },
    // Decayed to 0 over the run: the last steps settle the rare long numbers.
    schedule: { type: 'cosine', tMax: epochs * train.batches('train', 0).length },
    clipNorm: rec.clipNorm,
    seed: 1,
    onProgress: (e) => {
      if (e.type === 'step' && e.step % 200 === 0) console.log(`  step ${e.step}: loss ${e.loss.toFixed(4)}`);
    },
  });
  console.log(`training time ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const test = await readPairs(data('numbers-test.jsonl'), { groupColumn: 'task' });
  for (const task of ['en2num', 'zh2num', 'num2en']) {
    const rows = test.filter((p) => p.group === task);
    const held = PairDataset.fromArray(rows, { sourceTokenizer, targetTokenizer });
    const greedy = await model.evaluate(held, { split: 'train' });
    const beam = await model.evaluate(held, { split: 'train', beams: 4 });
    console.log(
      `${task}: exact match ${(100 * greedy.exactMatch).toFixed(2)} % greedy, ${(100 * beam.exactMatch).toFixed(2)} % beam 4 (${rows.length} held-out numbers)`,
    );
  }
  for (const s of ['三亿零五万零七', 'four hundred and two thousand eleven', '120034005']) console.log(`  ${s} → ${await model.translate(s)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
