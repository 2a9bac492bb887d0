/**
 * The built `rnnkit` command line, run as a user runs it: `node dist/cli/index.js ...` in a child
 * process. The TypeScript is compiled once before the tests; the native engine must be built
 * (`npm run build`) for the round-trip tests.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from 'commander';
import { parseInteger, parseLabels, parseNumber, parseSpecials } from '../src/cli/parsers';
import { cli, compileCli, expectOneLineError, root, runCli } from './cli-harness';

let dir: string;

beforeAll(async () => {
  await compileCli();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-cli-'));
}, 120_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const rnnkit = (args: string[], env: Record<string, string> = {}) => runCli(dir, args, env);

const COMMANDS: Record<string, string[]> = {
  train: [
    '--task <task>',
    '--labels <list>',
    '--pooling <how>',
    '--no-bidirectional',
    '--class-weights <how>',
    '--max-length <n>',
    '--per-step',
    '--text-column <name>',
    '"tags"',
    '--tokenizer <type>',
    '--cell <type>',
    '--hidden <n>',
    '--seq-len <n>',
    '--time-limit <seconds>',
    '--checkpoint <path>',
    '--resume <checkpoint>',
    '--json',
  ],
  generate: ['--prompt <text>', '--temperature <t>', '--top-k <k>', '--top-p <p>', '--stop <text>', '--beams <n>', '--stream', '--json'],
  eval: ['<text-file>', '--json'],
  info: ['<model>', '--json'],
  predict: ['[input...]', '--file <path>', '--json'],
  serve: [
    '--host <host>',
    '--port <n>',
    '--max-concurrent <n>',
    '--api-key <key>',
    '--cors <origins...>',
    '--chat-template <file>',
    '--headers-timeout <ms>',
    '--state-cache-mb <n>',
    '--threads <n>',
    '--json',
  ],
  demo: ['--time-limit <seconds>', '--out-dir <dir>', '--json'],
};

describe('argument parsers', () => {
  it('parseInteger takes whole numbers in range only', async () => {
    const p = parseInteger(1, 10);
    expect(p('7')).toBe(7);
    expect(p(' 10 ')).toBe(10);
    for (const bad of ['0', '11', '1.5', 'abc', '', '1e1', '0x5']) expect(() => p(bad)).toThrow(InvalidArgumentError);
  });

  it('parseNumber takes finite decimals, with an open or closed lower bound', async () => {
    expect(parseNumber(0)('0')).toBe(0);
    expect(parseNumber(0, Infinity, true)('2e-3')).toBe(0.002);
    expect(parseNumber(0, 1)('.5')).toBe(0.5);
    for (const bad of ['0', '-1', 'NaN', 'Infinity', '1/2', '']) expect(() => parseNumber(0, 1, true)(bad)).toThrow(InvalidArgumentError);
    expect(() => parseNumber(0, 1)('1.01')).toThrow(/≤ 1/);
  });

  it('parseLabels reads a comma list, numbers as numbers', async () => {
    expect(parseLabels('neg, pos')).toEqual(['neg', 'pos']);
    expect(parseLabels('0,1,2.5')).toEqual([0, 1, 2.5]);
    expect(() => parseLabels('a,,b')).toThrow(InvalidArgumentError);
    expect(() => parseLabels('a,b,a')).toThrow(/"a" is listed twice/);
  });

  it('parseSpecials reads a comma list of known names', async () => {
    expect(parseSpecials('<pad>, <unk>')).toEqual(['<pad>', '<unk>']);
    expect(() => parseSpecials('<pad>,<mask>')).toThrow(/"<mask>"/);
    expect(() => parseSpecials('<pad>,<pad>')).toThrow(/twice/);
  });
});

describe('help and version', () => {
  it('lists every command', async () => {
    const r = await rnnkit(['--help']);
    expect(r.status).toBe(0);
    for (const c of Object.keys(COMMANDS)) expect(r.stdout).toMatch(new RegExp(`^\\s+${c}\\b`, 'm'));
  });

  for (const [command, flags] of Object.entries(COMMANDS)) {
    it(`${command} --help describes its options`, async () => {
      const r = await rnnkit([command, '--help']);
      expect(r.status).toBe(0);
      expect(r.stdout).toContain(`Usage: rnnkit ${command}`);
      for (const f of flags) expect(r.stdout).toContain(f);
    });
  }

  it('prints the package version', async () => {
    const r = await rnnkit(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
  });

  it('with no command shows the help on stderr and fails', async () => {
    const r = await rnnkit([]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('Usage: rnnkit');
  });
});

describe('bad arguments: one line, non-zero exit', () => {
  it('unknown command', async () => expectOneLineError(await rnnkit(['trian']), 2, /unknown command 'trian'.*Did you mean train/));
  it('unknown option', async () => expectOneLineError(await rnnkit(['train', 'a.txt', '--hiden', '8']), 2, /unknown option '--hiden'.*--hidden/));
  it('non-numeric --hidden', async () =>
    expectOneLineError(await rnnkit(['train', 'a.txt', '--hidden', 'abc']), 2, /--hidden <n>.*'abc' is invalid.*integer ≥ 1/));
  it('fractional --layers', async () => expectOneLineError(await rnnkit(['train', 'a.txt', '--layers', '1.5']), 2, /--layers/));
  it('zero --lr', async () => expectOneLineError(await rnnkit(['train', 'a.txt', '--lr', '0']), 2, /--lr <rate>.*> 0/));
  it('--validation out of range', async () => expectOneLineError(await rnnkit(['train', 'a.txt', '--validation', '1.5']), 2, /--validation/));
  it('bad choice', async () => expectOneLineError(await rnnkit(['train', 'a.txt', '--cell', 'transformer']), 2, /--cell.*rnn, lstm, gru/));
  it('a word vocabulary limit without <unk>', async () =>
    expectOneLineError(await rnnkit(['train', 'a.txt', '--tokenizer', 'word', '--max-vocab', '100']), 2, /add --specials "<unk>"/));
  it('word-only option without --tokenizer word', async () =>
    expectOneLineError(await rnnkit(['train', 'a.txt', '--min-count', '2']), 2, /--min-count is a word tokenizer option/));
  it('--checkpoint-every without --checkpoint', async () =>
    expectOneLineError(await rnnkit(['train', 'a.txt', '--checkpoint-every', '5']), 2, /--checkpoint-every needs --checkpoint/));
  it('architecture options with --resume', async () =>
    expectOneLineError(await rnnkit(['train', 'a.txt', '--resume', 'ck.safetensors', '--hidden', '8']), 2, /--hidden cannot be used with --resume/));
  it('--beams with --stream', async () =>
    expectOneLineError(await rnnkit(['generate', 'm.safetensors', '--beams', '4', '--stream']), 2, /--beams cannot be used with --stream/));
  it('missing argument', async () => expectOneLineError(await rnnkit(['eval', 'm.safetensors']), 2, /missing required argument 'text-file'/));
  it('missing corpus file', async () => expectOneLineError(await rnnkit(['train', 'nope.txt']), 1, /corpus file "nope.txt" does not exist/));
  it('a directory as corpus', async () => expectOneLineError(await rnnkit(['train', '.']), 1, /is not a file/));
  it('missing model file', async () => expectOneLineError(await rnnkit(['info', 'missing.safetensors']), 1, /model file "missing.safetensors" does not exist/));

  it('corrupt model file', async () => {
    fs.writeFileSync(path.join(dir, 'corrupt.safetensors'), Buffer.from('\x10\x00\x00\x00\x00\x00\x00\x00{"a": not json}'));
    for (const args of [
      ['info', 'corrupt.safetensors'],
      ['generate', 'corrupt.safetensors'],
      ['eval', 'corrupt.safetensors', 'corrupt.safetensors'],
    ]) {
      expectOneLineError(await rnnkit(args), 1, /corrupt\.safetensors/);
    }
  });

  it('RNNKIT_DEBUG=1 adds the stack trace', async () => {
    const r = await rnnkit(['info', 'missing.safetensors'], { RNNKIT_DEBUG: '1' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^rnnkit: error: /);
    expect(r.stderr).toMatch(/^\s+at /m);
  });
});

describe('with the native engine: predict', () => {
  it('classifies and regresses like the API, and refuses bad inputs in one line', async () => {
    const { createClassifier, createRegressor, fitTokenizer } = await import('../src/index');
    const clf = createClassifier({ tokenizer: fitTokenizer('good bad', { type: 'char' }), labels: ['neg', 'pos'], hiddenSize: 8, seed: 1 });
    await clf.save(path.join(dir, 'clf.safetensors'));
    const r = await rnnkit(['predict', 'clf.safetensors', 'good', 'bad dog', '--json']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.task).toBe('classify');
    const direct = await clf.predict(['good', 'bad dog']);
    expect(out.predictions.map((p: { label: string }) => p.label)).toEqual(direct.map((p) => p.label));
    for (const [i, p] of out.predictions.entries()) expect(p.probability).toBeCloseTo(direct[i].probability, 6);
    const human = await rnnkit(['predict', 'clf.safetensors', 'good']);
    expect(human.stdout).toMatch(new RegExp(`^${direct[0].label}\t${direct[0].probability.toFixed(3)}\tgood\n$`));

    const reg = createRegressor({ inputSize: 2, hiddenSize: 8, seed: 2 });
    await reg.save(path.join(dir, 'reg.safetensors'));
    const rr = await rnnkit(['predict', 'reg.safetensors', '[[0.1, 0.2], [0.3, 0.4]]', '--json']);
    expect(rr.status).toBe(0);
    const want = await reg.predict(new Float32Array([0.1, 0.2, 0.3, 0.4]));
    expect(JSON.parse(rr.stdout).predictions[0][0]).toBeCloseTo(want[0], 6);
    expectOneLineError(await rnnkit(['predict', 'reg.safetensors', '[1, 2, 3]']), 1, /3 numbers are not whole steps of 2 features/);
    expectOneLineError(await rnnkit(['predict', 'reg.safetensors', 'hello']), 1, /JSON array of numbers/);
    expectOneLineError(await rnnkit(['predict', 'clf.safetensors']), 2, /give inputs/);
  });
});

describe('with the native engine: the PyTorch model fixture', () => {
  const model = path.join(root, 'fixtures', 'models', 'pp_lstm.safetensors');
  const expected = JSON.parse(fs.readFileSync(path.join(root, 'fixtures', 'models', 'pp_lstm.expected.json'), 'utf8')) as {
    eval_mean_ce_nats: number;
    generations: { prompt: string; greedy: string }[];
  };

  it('eval gives the reference held-out cross-entropy', async () => {
    const r = await rnnkit(['eval', model, path.join(root, 'fixtures', 'models', 'pp_lstm.held.txt'), '--json']);
    expect(r.status).toBe(0);
    const e = JSON.parse(r.stdout);
    expect(Math.abs(e.loss - expected.eval_mean_ce_nats)).toBeLessThan(1e-4);
  });

  it('generate --greedy gives the reference continuation', async () => {
    const g = expected.generations[0];
    const r = await rnnkit(['generate', model, '--prompt', g.prompt, '--greedy', '--max-tokens', String([...g.greedy].length), '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).text).toBe(g.greedy);
    const plain = await rnnkit(['generate', model, '--prompt', g.prompt, '--greedy', '--max-tokens', '20', '--no-echo']);
    expect(plain.stdout).toBe([...g.greedy].slice(0, 20).join('') + '\n');
  });

  it('generate without --prompt starts from the start state; --temperature 0 is greedy', async () => {
    const r = await rnnkit(['generate', model, '--max-tokens', '12', '--seed', '1', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ prompt: '', completionTokens: 12, promptTokens: 0 });
    const g = expected.generations[0];
    const t0 = await rnnkit(['generate', model, '--prompt', g.prompt, '--temperature', '0', '--max-tokens', '20', '--no-echo']);
    expect(t0.stderr).toBe('');
    expect(t0.stdout).toBe([...g.greedy].slice(0, 20).join('') + '\n');
  });

  it('a reader that closes stdout early ends generate --stream quietly with status 0', async () => {
    for (const json of [[], ['--json']]) {
      // A real pipe whose reading end is closed after the first bytes, as `| head -c 10` does.
      const child = spawn(process.execPath, [cli, 'generate', model, '--stream', '--max-tokens', '20000', ...json], {
        cwd: dir,
        env: { ...process.env, RNNKIT_DEBUG: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.setEncoding('utf8').once('data', (d: string) => {
        out = d;
        child.stdout.destroy();
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(stderr).toBe('');
      expect(status).toBe(0);
      expect(out.length).toBeGreaterThan(0);
    }
  }, 60_000);

  it('info describes the architecture', async () => {
    const r = await rnnkit(['info', model, '--json']);
    expect(r.status).toBe(0);
    const i = JSON.parse(r.stdout);
    expect(i).toMatchObject({ task: 'language_model', config: { cell: 'lstm' }, tokenizer: { type: 'char' } });
  });
});

describe('with the native engine: train → generate → eval → info', () => {
  const text = 'It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.\n';

  beforeAll(() => {
    fs.writeFileSync(path.join(dir, 'corpus.txt'), text.repeat(40));
    fs.writeFileSync(path.join(dir, 'held.txt'), text.repeat(3));
  });

  it('trains a tiny model with --json', async () => {
    const r = await rnnkit([
      'train',
      'corpus.txt',
      '--hidden',
      '32',
      '--layers',
      '1',
      '--embed',
      '16',
      '--seq-len',
      '32',
      '--batch-size',
      '8',
      '--max-steps',
      '60',
      '--lr',
      '0.01',
      '--validate-every',
      '20',
      '--out',
      'tiny.safetensors',
      '--chart',
      'loss.svg',
      '--json',
    ]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ model: 'tiny.safetensors', checkpoint: false, stopReason: 'max_steps', steps: 60 });
    expect(out.loss).toBeLessThan(out.history.loss[0]);
    expect(out.valLoss).toBeGreaterThan(0);
    // Progress went to stderr as JSON lines.
    const events = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events.some((e) => e.event === 'progress' && e.type === 'step')).toBe(true);
    expect(events.some((e) => e.event === 'progress' && e.type === 'validation')).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'loss.svg'), 'utf8')).toMatch(/^<svg[\s\S]*<polyline[\s\S]*<\/svg>\n$/);
  });

  it('--early-stopping stops when the validation loss rises, says why, and --checkpoint-best keeps the best model', async () => {
    // Trained on "abc…", validated on the tail "acb…": the validation loss rises as it learns.
    fs.writeFileSync(path.join(dir, 'cycle.txt'), 'abc'.repeat(300) + 'acb'.repeat(34));
    const r = await rnnkit([
      'train',
      'cycle.txt',
      '--cell',
      'gru',
      '--hidden',
      '12',
      '--layers',
      '1',
      '--embed',
      '6',
      '--seq-len',
      '8',
      '--batch-size',
      '1',
      '--max-steps',
      '300',
      '--lr',
      '0.05',
      '--validate-every',
      '1',
      '--early-stopping',
      '2',
      '--checkpoint',
      'best.safetensors',
      '--checkpoint-best',
      '--out',
      'es.safetensors',
    ]);
    expect(r.stderr.toLowerCase()).not.toContain('error');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/stopped: early_stopping after \d+ steps/);
    const m = r.stdout.match(
      /early stopping: the validation loss did not improve in 2 validations after the best, validation loss (\d+\.\d+) at step (\d+); the model has the weights of that step/,
    );
    expect(m).not.toBeNull();
    expect(r.stdout).toContain(`best checkpoint (validation loss ${m![1]} at step ${m![2]}) in best.safetensors`);
    expect(fs.existsSync(path.join(dir, 'best.safetensors'))).toBe(true);
    // --early-stopping alone takes a patience of 3; without validation data it is refused.
    expectOneLineError(await rnnkit(['train', 'cycle.txt', '--early-stopping', '--validation', '0']), 2, /--early-stopping needs validation data/);
    expectOneLineError(await rnnkit(['train', 'cycle.txt', '--checkpoint-best']), 2, /--checkpoint-best needs --checkpoint/);
  });

  it('the CLI reports every step it ran', async () => {
    // 25 steps logged every 10: the last step (25) is no multiple of --log-every.
    const args = [
      'train',
      'corpus.txt',
      '--hidden',
      '16',
      '--layers',
      '1',
      '--embed',
      '8',
      '--seq-len',
      '32',
      '--batch-size',
      '8',
      '--max-steps',
      '25',
      '--log-every',
      '10',
      '--lr',
      '0.01',
      '--out',
      'steps.safetensors',
      '--chart',
      'steps.svg',
    ];
    const human = await rnnkit(args);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/^stopped: max_steps after 25 steps, /m);
    expect(human.stdout).toMatch(/^\s+1\s+25$/m);
    const progress = human.stderr.trim().split('\n');
    expect(progress.filter((l) => l.startsWith('step ') && !l.includes('val loss')).at(-1)).toMatch(/^step 25\/25 /);
    expect(progress.at(-1)).toMatch(/^done: 25 steps /);

    const r = await rnnkit([...args, '--json']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ stopReason: 'max_steps', steps: 25 });
    expect(out.history.stepsDone).toBe(25);
    expect(out.history.steps).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(out.history.loss).toHaveLength(25);
    const events = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.event === 'progress');
    expect(events.filter((e) => e.type === 'step').at(-1).step).toBe(25);
    expect(events.at(-1)).toMatchObject({ type: 'done', step: 25 });
    // The final loss is the last progress event's, as the final progress line shows it.
    expect(out.loss).toBe(events.at(-1).loss);
    const svg = fs.readFileSync(path.join(dir, 'steps.svg'), 'utf8');
    expect(svg.match(/<polyline /g)).toHaveLength(2);
  });

  it('names the flag of an option the engine refuses', async () => {
    const args = ['train', 'corpus.txt', '--hidden', '8', '--layers', '1', '--max-steps', '2', '--out', 'refused.safetensors'];
    // 1e-320 passes the flag's > 0 check but reaches the engine as 0.
    // The intro line comes first: these are refused when training starts.
    const refused = async (extra: string[], pattern: RegExp) => {
      const r = await rnnkit([...args, ...extra]);
      expect(r.status).toBe(1);
      expect(r.stderr.trimEnd().split('\n').at(-1)).toMatch(pattern);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    };
    await refused(['--clip-norm', '1e-320'], /^rnnkit: error: --clip-norm: expected a finite number > 0, got 0$/);
    await refused(['--schedule', 'exponential'], /^rnnkit: error: --schedule: missing field/);
  });

  it('generates the same text for the same seed, and streams the same text', async () => {
    const args = ['generate', 'tiny.safetensors', '--prompt', 'It is', '--max-tokens', '40', '--seed', '7', '--temperature', '0.8'];
    const a = await rnnkit([...args, '--json']);
    expect(a.status).toBe(0);
    const ca = JSON.parse(a.stdout);
    expect(ca).toMatchObject({ prompt: 'It is', finishReason: 'length', completionTokens: 40 });
    expect(JSON.parse((await await rnnkit([...args, '--json'])).stdout).text).toBe(ca.text);
    const plain = await rnnkit([...args, '--stream']);
    expect(plain.status).toBe(0);
    expect(plain.stdout).toBe('It is' + ca.text + '\n');
    const stop = await rnnkit(['generate', 'tiny.safetensors', '--prompt', 'It is', '--greedy', '--stop', ' ', '--json', '--max-tokens', '100']);
    expect(JSON.parse(stop.stdout).text).not.toContain(' ');
  });

  it('evaluates a text file', async () => {
    const r = await rnnkit(['eval', 'tiny.safetensors', 'held.txt', '--json']);
    expect(r.status).toBe(0);
    const e = JSON.parse(r.stdout);
    expect(e.tokens).toBe(text.length * 3 - 1);
    expect(e.bitsPerToken).toBeCloseTo(e.loss / Math.LN2, 6);
    expect(e.perplexity).toBeCloseTo(Math.exp(e.loss), 4);
    const human = await rnnkit(['eval', 'tiny.safetensors', 'held.txt']);
    expect(human.stdout).toContain(`bits/token  ${e.bitsPerToken.toFixed(4)}`);
  });

  it('describes the model and the engine', async () => {
    const r = await rnnkit(['info', 'tiny.safetensors', '--json']);
    expect(r.status).toBe(0);
    const i = JSON.parse(r.stdout);
    expect(i.task).toBe('language_model');
    expect(i.numParams).toBeGreaterThan(0);
    expect(i.tokenizer.type).toBe('char');
    // The corpus's characters and the <unk> new char tokenizers map unseen text to.
    expect(i.tokenizer.vocabSize).toBe(new Set(text).size + 1);
    expect(i.engine.threads).toBeGreaterThan(0);
    const human = await rnnkit(['info', 'tiny.safetensors']);
    expect(human.stdout).toMatch(/^task\s+language_model$/m);
    expect(human.stdout).toMatch(/^engine\s+rnnkit native/m);
  });

  it('serves the model over HTTP and shuts down on SIGTERM', async () => {
    const child = spawn(process.execPath, [cli, 'serve', 'tiny.safetensors', '--port', '0', '--json'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let stdout = '';
    const ready = await new Promise<{ url: string; baseURL: string; model: string }>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        stdout += d;
        if (stdout.includes('\n')) resolve(JSON.parse(stdout.split('\n')[0]));
      });
      child.on('exit', () => reject(new Error('serve exited before listening')));
    });
    expect(ready.model).toBe('tiny');
    expect((await fetch(`${ready.url}/healthz`)).status).toBe(200);
    const body = { model: 'tiny', prompt: 'It is', max_tokens: 12, seed: 3, temperature: 0.8 };
    const res = await fetch(`${ready.baseURL}/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
    expect(answer.usage.completion_tokens).toBe(12);
    const direct = JSON.parse(
      (await await rnnkit(['generate', 'tiny.safetensors', '--prompt', 'It is', '--max-tokens', '12', '--seed', '3', '--temperature', '0.8', '--json'])).stdout,
    );
    expect(answer.choices[0].text).toBe(direct.text);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('serve: API key from RNNKIT_API_KEY, --chat-template, --cors, one JSON log line per request; a wide --host without a key warns', async () => {
    fs.writeFileSync(path.join(dir, 'template.jinja'), '{% for m in messages %}{{ m.content }}{% endfor %} ');
    const child = spawn(
      process.execPath,
      [cli, 'serve', 'tiny.safetensors', '--port', '0', '--json', '--chat-template', 'template.jinja', '--cors', 'https://app.example'],
      {
        cwd: dir,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, RNNKIT_API_KEY: 'sk-test' },
      },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const ready = await new Promise<{ baseURL: string }>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        stdout += d;
        if (stdout.includes('\n')) resolve(JSON.parse(stdout.split('\n')[0]));
      });
      child.on('exit', () => reject(new Error('serve exited before listening')));
    });
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'It is' }], max_tokens: 10, seed: 4, temperature: 0.8 });
    const refused = await fetch(`${ready.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(refused.status).toBe(401);
    const res = await fetch(`${ready.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test', origin: 'https://app.example' },
      body,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const answer = (await res.json()) as { choices: { message: { content: string } }[] };
    const direct = JSON.parse(
      (await await rnnkit(['generate', 'tiny.safetensors', '--prompt', 'It is ', '--max-tokens', '10', '--seed', '4', '--temperature', '0.8', '--json']))
        .stdout,
    );
    expect(answer.choices[0].message.content).toBe(direct.text);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const records = stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const requests = records.filter((r) => r.event === 'request');
    expect(requests.map((r) => r.data.status)).toEqual([401, 200]);
    expect(requests[1]).toMatchObject({ level: 'info', data: { method: 'POST', path: '/v1/chat/completions', client: '127.0.0.1', completionTokens: 10 } });

    const wide = spawn(process.execPath, [cli, 'serve', 'tiny.safetensors', '--port', '0', '--host', '0.0.0.0'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RNNKIT_API_KEY: '' },
    });
    let warned = '';
    await new Promise<void>((resolve) => wide.stderr.on('data', (d) => ((warned += d), warned.includes('\n') && resolve())));
    expect(warned).toMatch(/warning: listening on 0\.0\.0\.0 without an API key/);
    wide.kill('SIGTERM');
    await new Promise((resolve) => wide.on('exit', resolve));
  });

  it('streams JSON lines that join to the whole text', async () => {
    const args = ['generate', 'tiny.safetensors', '--prompt', 'a', '--max-tokens', '25', '--seed', '2'];
    const lines = (await rnnkit([...args, '--stream', '--json'])).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const done = lines.pop();
    expect(done).toMatchObject({ done: true, finishReason: 'length', completionTokens: 25 });
    expect(lines.map((l) => l.text).join('')).toBe(done.text);
    expect(done.text).toBe(JSON.parse((await await rnnkit([...args, '--json'])).stdout).text);
  });

  it('demo: trains briefly, samples at three temperatures, writes the model and the SVG', async () => {
    const r = await rnnkit(['demo', '--time-limit', '3', '--out-dir', 'demo-out', '--json']);
    expect(r.status).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.samples.map((s: { temperature: number }) => s.temperature)).toEqual([0.5, 0.8, 1]);
    for (const s of d.samples) expect(s.text.length).toBeGreaterThan(50);
    expect(d.bitsPerChar).toBeCloseTo(d.heldOutLoss / Math.LN2, 6);
    // A few seconds of training already beat the uniform distribution over the 75 characters.
    expect(d.bitsPerChar).toBeLessThan(Math.log2(75));
    expect(d.heldOutChars).toBe(68_475);
    expect(d.history.stopReason).toBe('time_limit');
    expect(fs.readFileSync(path.join(dir, 'demo-out', 'loss.svg'), 'utf8')).toContain('held-out');
    const info = JSON.parse((await await rnnkit(['info', path.join('demo-out', 'model.safetensors'), '--json'])).stdout);
    expect(info.config).toMatchObject({ cell: 'lstm', hidden_size: 128, num_layers: 1 });
  }, 180_000);

  it('maps text outside the vocabulary to <unk> by default, and refuses it in one line with --unknown error', async () => {
    fs.writeFileSync(path.join(dir, 'other.txt'), 'ZZZ qqq 😀');
    expect((await rnnkit(['eval', 'tiny.safetensors', 'other.txt'])).status).toBe(0);
    expect((await rnnkit(['generate', 'tiny.safetensors', '--prompt', 'qq', '--max-tokens', '3'])).status).toBe(0);
    const strict = await rnnkit([
      'train',
      'corpus.txt',
      '--hidden',
      '8',
      '--layers',
      '1',
      '--max-steps',
      '2',
      '--unknown',
      'error',
      '--out',
      'strict.safetensors',
    ]);
    expect(strict.status).toBe(0);
    expectOneLineError(await rnnkit(['eval', 'strict.safetensors', 'other.txt']), 1, /^rnnkit: error: text file "other.txt": unknown character "Z"/);
    expectOneLineError(await rnnkit(['generate', 'strict.safetensors', '--prompt', 'qq']), 1, /^rnnkit: error: --prompt: unknown character "q"/);
  });

  it('Ctrl-C saves a checkpoint and exits 130; --resume continues from it', async () => {
    const child = spawn(
      process.execPath,
      [
        cli,
        'train',
        'corpus.txt',
        '--hidden',
        '32',
        '--layers',
        '1',
        '--seq-len',
        '32',
        '--batch-size',
        '8',
        '--time-limit',
        '60',
        '--log-every',
        '1',
        '--checkpoint',
        'ck.safetensors',
        '--out',
        'never.safetensors',
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    const started = new Promise<void>((resolve) =>
      child.stderr.on('data', (d) => {
        stderr += d;
        if (/step \d+/.test(stderr)) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await started;
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toContain('interrupted');
    expect(fs.existsSync(path.join(dir, 'ck.safetensors'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'never.safetensors'))).toBe(false);
    const r = await rnnkit(['train', 'corpus.txt', '--resume', 'ck.safetensors', '--max-steps', '3', '--out', 'resumed.safetensors', '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).steps).toBe(3);
    // The checkpoint's windowing (--seq-len 32 --batch-size 8) was taken; another one is refused.
    expectOneLineError(await rnnkit(['train', 'corpus.txt', '--resume', 'ck.safetensors', '--seq-len', '50']), 2, /--seq-len 50 differs from the 32/);
  });

  it('SIGTERM saves a resumable checkpoint and exits 143', async () => {
    // What `docker stop` and systemd send: the run must be saved as with Ctrl-C.
    const child = spawn(
      process.execPath,
      [
        cli,
        'train',
        'corpus.txt',
        '--hidden',
        '16',
        '--layers',
        '1',
        '--seq-len',
        '32',
        '--batch-size',
        '8',
        '--time-limit',
        '60',
        '--log-every',
        '1',
        '--checkpoint',
        'term.safetensors',
        '--out',
        'never-term.safetensors',
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    const started = new Promise<void>((resolve) =>
      child.stderr.on('data', (d) => {
        stderr += d;
        if (/step \d+/.test(stderr)) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await started;
    child.kill('SIGTERM');
    expect(await exited).toBe(143);
    expect(stderr).toContain('SIGTERM: stopping training');
    expect(fs.existsSync(path.join(dir, 'never-term.safetensors'))).toBe(false);
    const r = await rnnkit(['train', 'corpus.txt', '--resume', 'term.safetensors', '--max-steps', '2', '--out', 'resumed-term.safetensors', '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).steps).toBe(2);
  });

  it('refuses --threads above 1024', async () => {
    expectOneLineError(await rnnkit(['train', 'corpus.txt', '--threads', '5000']), 2, /--threads/);
  });
});
