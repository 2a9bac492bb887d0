import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AudioDataset, createSpeechRecognizer, featureConfig, loadModel, readWavSync, recommendSpeechOptions, type SpeechRecognizer } from '../src/index';
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
    // A WAV file cut short inside its data chunk, and one whose header is cut.
    const cut = fs.readFileSync(wavs[0]);
    fs.writeFileSync(path.join(tmp, 'cut.wav'), cut.subarray(0, cut.length - 3));
    fs.writeFileSync(path.join(tmp, 'header.wav'), cut.subarray(0, 30));
    expectOneLineError(await runCli(tmp, ['transcribe', file, path.join(tmp, 'cut.wav')]), 1, /cut\.wav": /);
    expectOneLineError(await runCli(tmp, ['transcribe', file, path.join(tmp, 'header.wav')]), 1, /header\.wav": /);
    const help = await runCli(tmp, ['transcribe', '--help']);
    expect(help.stdout).toMatch(/--beam <width>/);
  });

  it("rnnkit train --task speech trains with the engine's defaults and rnnkit eval reports error rates", async () => {
    const out = path.join(tmp, 'cli-speech.safetensors');
    const r = await runCli(tmp, ['train', '--task', 'speech', 'train.jsonl', '--validation', '0', '--epochs', '2', '--mels', '20', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    const data = await AudioDataset.load(path.join(tmp, 'train.jsonl'), { features: featureConfig({ nMels: 20 }) });
    expect(data.alphabet).toBe(' 01347');
    const rec = recommendSpeechOptions(data.size(), data.frames());
    expect(r.stderr).toContain(`bidirectional ${rec.cell} ${rec.hiddenSize} × ${rec.numLayers}, ${rec.frameStacking} frames a step, 20 mel bands`);
    expect(r.stdout).toMatch(/training word error rate [\d.]+ %, character error rate [\d.]+ %/);
    const trained = (await loadModel(out)) as SpeechRecognizer;
    expect(trained.task).toBe('speech');
    expect([trained.alphabet, trained.frameStacking, trained.featureSize]).toEqual([' 01347', rec.frameStacking, 20]);
    const e = await runCli(tmp, ['eval', out, 'train.jsonl', '--json']);
    expect(e.status, e.stderr).toBe(0);
    const metrics = JSON.parse(e.stdout) as { wer: number; cer: number; count: number };
    expect(metrics.count).toBe(3);
    expect(metrics).toMatchObject(await trained.evaluate(data));
    expectOneLineError(await runCli(tmp, ['train', '--task', 'speech', 'train.jsonl', '--mels', '999']), 1, /^rnnkit: error: --mels: /);
    expectOneLineError(
      await runCli(tmp, ['train', '--task', 'classify', 'train.jsonl', '--frame-stacking', '2']),
      2,
      /--frame-stacking does not apply to --task classify/,
    );
    expectOneLineError(await runCli(tmp, ['train', '--task', 'speech', 'missing.jsonl']), 1, /missing\.jsonl/);
    expectOneLineError(await runCli(tmp, ['eval', out, 'train.jsonl', '--lanes', '2']), 1, /--lanes.*language models/);
  });

  it('the shipped spoken-digit model transcribes reserved voices with rnnkit transcribe --model spoken-digits', async () => {
    // One utterance of each reserved-voice group of the corpus the model was evaluated on
    // (fixtures/audio/spoken/transcripts.json: voices the model never heard in training).
    const dir = path.join(root, 'fixtures', 'audio', 'spoken');
    const { files } = JSON.parse(fs.readFileSync(path.join(dir, 'transcripts.json'), 'utf8')) as { files: { audio: string; text: string }[] };
    const r = await runCli(tmp, ['transcribe', '--model', 'spoken-digits', ...files.map((f) => path.join(dir, f.audio)), '--json']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { text: string });
    expect(lines.map((l) => l.text)).toEqual(files.map((f) => f.text));
    expectOneLineError(await runCli(tmp, ['transcribe', '--model', 'no-such-model', wavs[0]]), 1, /no such shipped model; the package has spoken-digits/);
    expectOneLineError(await runCli(tmp, ['transcribe', '--model', 'spoken-digits']), 2, /at least one WAV file/);
  });
});
