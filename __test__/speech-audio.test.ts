import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AudioDataset, createSpeechRecognizer, loadModel, readWavSync, type SpeechRecognizer } from '../src/index';
import { compileCli, expectOneLineError, root, runCli } from './cli-harness';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-speech-audio-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const wavs = ['digits.wav', 'chirp_stereo.wav', 'quiet.wav'].map((f) => path.join(root, 'fixtures', 'audio', f));

describe('speech models on audio', () => {
  let model: SpeechRecognizer;
  const file = path.join(tmp, 'speech.safetensors');
  beforeAll(async () => {
    await compileCli();
    // A manifest of the committed WAV files (paths relative to it) and a folder of pairs.
    fs.writeFileSync(
      path.join(tmp, 'train.jsonl'),
      wavs.map((w, i) => JSON.stringify({ audio: path.relative(tmp, w), text: ['3 7 1', '4', '0 0'][i], voice: 'test' })).join('\n') + '\n',
    );
    model = createSpeechRecognizer({ features: { nMels: 20 }, alphabet: '0123456789 ', hiddenSize: 8, frameStacking: 2, seed: 1 });
    await model.save(file);
  });

  it('stores its features, trains on an AudioDataset and transcribes WAV bytes and samples', async () => {
    expect(model.featureSize).toBe(20);
    expect(model.features).toMatchObject({ n_mels: 20, sample_rate: 16000, normalise: { kind: 'utterance' } });
    const data = await AudioDataset.load(path.join(tmp, 'train.jsonl'), { alphabet: model.alphabet, features: model.features!, batchSize: 2 });
    expect(data.size()).toBe(3);
    expect(data.audio.map((a) => path.basename(a))).toEqual(['digits.wav', 'chirp_stereo.wav', 'quiet.wav']);
    const history = await model.fit(data, { maxSteps: 3 });
    expect(history.stepsDone).toBe(3);
    const bytes = wavs.map((w) => fs.readFileSync(w));
    const texts = await model.transcribe(bytes);
    expect(texts).toHaveLength(3);
    for (const t of texts) expect(t).toMatch(/^[0-9 ]*$/);
    expect(model.transcribeSync(bytes[0])).toBe(texts[0]);
    // The same sound as samples at the file's rate gives the same transcript.
    const wav = readWavSync(bytes[0]);
    expect(await model.transcribe(wav.samples, { sampleRate: wav.sampleRate })).toBe(texts[0]);
    const saved = path.join(tmp, 'trained.safetensors');
    await model.save(saved);
    const loaded = (await loadModel(saved)) as SpeechRecognizer;
    expect(loaded.features).toEqual(model.features);
    expect(await loaded.transcribe(bytes)).toEqual(texts);
  });

  it('refuses non-WAV bytes, frames-only models and bad corpora with named errors', async () => {
    const e = await model.transcribe(Buffer.from('ID3 this is an mp3')).catch((x: Error & { code?: string; param?: string }) => x);
    expect(e).toBeInstanceOf(Error);
    expect((e as { code?: string }).code).toBe('ERR_RNNKIT_FORMAT');
    expect((e as Error).message).toMatch(/^audio\[0\]: .*not a WAV file/);
    const frames = createSpeechRecognizer({ features: { size: 4 }, alphabet: 'ab' });
    expect(() => frames.transcribeSync(new Uint8Array(10))).toThrow(/transcribeFrames/);
    fs.writeFileSync(path.join(tmp, 'bad.jsonl'), '{"audio": "missing.wav", "text": "1"}\n');
    const missing = await AudioDataset.load(path.join(tmp, 'bad.jsonl'), { alphabet: model.alphabet, features: model.features! }).catch((x: Error) => x);
    expect((missing as Error).message).toMatch(/missing\.wav/);
    const bad = await (async () => createSpeechRecognizer({ features: { nMels: 0 }, alphabet: 'ab' }))().catch((x: Error & { param?: string }) => x);
    expect((bad as { param?: string }).param).toBe('options.features.nMels');
  });

  it('rnnkit transcribe prints one transcript or JSON object per file and refuses a non-WAV file', async () => {
    const r = await runCli(tmp, ['transcribe', file, ...wavs, '--json']);
    expect(r.status).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { audio: string; text: string });
    expect(lines.map((l) => l.audio)).toEqual(wavs);
    for (const l of lines) expect(l.text).toMatch(/^[0-9 ]*$/);
    const plain = await runCli(tmp, ['transcribe', file, wavs[0], '--beam', '4', '--lexicon', '0,1,2,3,4,5,6,7,8,9']);
    expect(plain.status).toBe(0);
    expect(plain.stdout.split('\n').length).toBe(2);
    fs.writeFileSync(path.join(tmp, 'fake.wav'), 'not audio at all');
    expectOneLineError(await runCli(tmp, ['transcribe', file, path.join(tmp, 'fake.wav')]), 1, /fake\.wav.*not a WAV file/);
    expectOneLineError(await runCli(tmp, ['transcribe', file, path.join(tmp, 'none.wav')]), 1, /none\.wav/);
    const help = await runCli(tmp, ['transcribe', '--help']);
    expect(help.stdout).toMatch(/--beam <width>/);
  });
});
