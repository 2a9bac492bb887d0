import * as fs from 'fs';
import { TextCorpus, createLanguageModel } from '../work/main/src/index';
const slice = fs.readFileSync('/work/main/data/pride-and-prejudice.txt','utf8').slice(0,60000);
const corpus = TextCorpus.fromString(slice, { seqLen: 32, batchSize: 16, validation: 0.1, seed: 3 });
const model = createLanguageModel({ tokenizer: corpus.tokenizer, cell: 'rnn', hiddenSize: 48, embedDim: 16, seed: 6 });
(async () => {
  console.log('before', await model.evaluate(corpus.validationTokens()));
  model.setTensor('head.bias', new Float32Array(model.getTensor('head.bias').length).fill(3e38));
  console.log('poisoned', await model.evaluate(corpus.validationTokens()));
  const h = await model.fit(corpus, { maxSteps: 5, logEvery: 1, onProgress: (e) => console.log(e.type, e.loss, e.valLoss) });
  console.log(h);
})();
