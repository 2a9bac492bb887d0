import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe as suite, expect, it } from 'vitest';
import { logMelFeatures, logMelFeaturesSync, readWav, readWavSync, resampleAudio, resampleAudioSync } from '../src';

const dir = join(__dirname, '..', 'fixtures', 'audio');
const bytes = (name: string) => readFileSync(join(dir, name));

interface Case {
  wav: string;
  name: string;
  config: Record<string, unknown>;
  offset_samples: number;
  frames: number;
  n_mels: number;
  log_mel: number[];
}

suite('readWav', () => {
  it('decodes 16-bit stereo to mono samples, sync and async alike', async () => {
    const sync = readWavSync(bytes('chirp_stereo.wav'));
    expect([sync.sampleRate, sync.channels, sync.bitsPerSample, sync.encoding]).toEqual([16000, 2, 16, 'int']);
    expect(sync.samples).toBeInstanceOf(Float32Array);
    expect(sync.samples.length).toBe(6400);
    const asyncWav = await readWav(bytes('chirp_stereo.wav'));
    expect(asyncWav.samples).toEqual(sync.samples);
  });

  it('refuses non-WAV and truncated bytes with ERR_RNNKIT_FORMAT, rejecting rather than throwing', async () => {
    const mp3 = Buffer.from('ID3\x03\x00\x00\x00\x00\x00\x00\x00\x00 not audio');
    expect(() => readWavSync(mp3)).toThrow(/^wav: not a WAV file/);
    await expect(readWav(mp3)).rejects.toMatchObject({ code: 'ERR_RNNKIT_FORMAT' });
    const cut = bytes('quiet.wav').subarray(0, 1000);
    expect(() => readWavSync(cut)).toThrow(/truncated: the data chunk declares 9600 bytes, the file holds 956/);
    const notBytes = readWav('a.wav' as unknown as Uint8Array);
    await expect(notBytes).rejects.toThrow(TypeError);
    await expect(notBytes).rejects.toMatchObject({ code: 'ERR_RNNKIT_TYPE', param: 'bytes' });
  });
});

suite('logMelFeatures', () => {
  const fixture = JSON.parse(readFileSync(join(dir, 'log_mel.json'), 'utf8')) as { cases: Case[] };

  it('matches torchaudio within 1e-3 (the default configuration)', async () => {
    const c = fixture.cases.find((x) => x.wav === 'digits.wav' && x.name === 'default')!;
    const wav = readWavSync(bytes(c.wav));
    const f = await logMelFeatures(wav.samples, wav.sampleRate, { normalise: 'none' });
    expect([f.frames, f.nMels]).toEqual([c.frames, c.n_mels]);
    let worst = 0;
    f.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - c.log_mel[i]))));
    expect(worst).toBeLessThan(1e-3);
    expect(f.config).toMatchObject({ n_mels: 40, window_ms: 25, hop_ms: 10, normalise: { kind: 'none' } });
  });

  it('resamples other rates, normalises per utterance by default, and applies global statistics', () => {
    const tone = Float32Array.from({ length: 44100 }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 500 * i) / 44100));
    const f = logMelFeaturesSync(tone, 44100, { nMels: 64 });
    expect([f.frames, f.nMels]).toEqual([98, 64]);
    const mean = new Array<number>(64).fill(0).map((_, m) => {
      let s = 0;
      for (let t = 0; t < f.frames; t++) s += f.data[t * 64 + m];
      return s / f.frames;
    });
    expect(Math.max(...mean.map(Math.abs))).toBeLessThan(1e-3);
    const raw = logMelFeaturesSync(tone, 44100, { nMels: 2, normalise: 'none' });
    const g = logMelFeaturesSync(tone, 44100, { nMels: 2, normalise: 'global', mean: [1, 2], std: [2, 4] });
    expect(g.data[1]).toBeCloseTo((raw.data[1] - 2) / 4, 5);
  });

  it('refuses unknown options, bad values and short audio, naming the option', async () => {
    const x = new Float32Array(1600);
    expect(() => logMelFeaturesSync(x, 16000, { nMel: 40 } as never)).toThrow(/did you mean "nMels"/);
    await expect(logMelFeatures(x, 16000, { nMel: 40 } as never)).rejects.toMatchObject({
      code: 'ERR_RNNKIT_UNKNOWN_OPTION',
      param: 'options.nMel',
    });
    await expect(logMelFeatures(x, 16000, { nMels: 0 })).rejects.toMatchObject({
      code: 'ERR_RNNKIT_RANGE',
      param: 'options.nMels',
    });
    expect(() => logMelFeaturesSync(x, 16000, { fmax: 9000 })).toThrow(RangeError);
    expect(() => logMelFeaturesSync(x, 16000, { normalise: 'global' })).toThrow(/needs options.mean/);
    expect(() => logMelFeaturesSync(new Float32Array(100), 16000)).toThrow(/shorter than one 25 ms window/);
    expect(() => logMelFeaturesSync([0, 1] as unknown as Float32Array, 16000)).toThrow(TypeError);
  });
});

suite('resampleAudio', () => {
  it('converts the length by the rate ratio and refuses rates out of range', async () => {
    const x = new Float32Array(44100);
    expect(resampleAudioSync(x, 44100, 16000).length).toBe(16000);
    expect((await resampleAudio(x, 8000, 16000)).length).toBe(88200);
    await expect(resampleAudio(x, 10, 16000)).rejects.toMatchObject({ code: 'ERR_RNNKIT_RANGE', param: 'fromRate' });
  });
});
