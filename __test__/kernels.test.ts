/**
 * The GEMM and int8 kernel sets as a user meets them: the set engineInfo() reports, RNNKIT_GEMM_KERNELS
 * choosing one (or refused at load with the reason), and training on each set. A set this CPU
 * cannot run is reported as a skipped test, named with what it needs.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { engineInfo } from '../src/native';
import { root } from './cli-harness';

const cpuFlags: Set<string> =
  process.platform === 'linux' ? new Set(/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1].trim().split(/\s+/) ?? []) : new Set();
const hasAvx2 = process.arch === 'x64' && cpuFlags.has('avx2') && cpuFlags.has('fma');
const hasAvx512 = hasAvx2 && cpuFlags.has('avx512f');
const hasVnni = hasAvx512 && cpuFlags.has('avx512_vnni');

/** Three Adam steps of a small LSTM whose products have ragged row and column tiles. */
const trainScript = `
const rnnkit = require(${JSON.stringify(join(root, 'dist', 'index.js'))});
const model = rnnkit.createLanguageModel({ vocabSize: 40, embedDim: 16, hiddenSize: 70, numLayers: 2, cell: 'lstm', seed: 3 });
const rows = 13, steps = 9;
const ids = (salt) => Int32Array.from({ length: rows * steps }, (_, i) => (i * 7 + salt * 13) % 40);
const losses = [];
for (let i = 0; i < 3; i++) losses.push(model.trainStep(ids(i), ids(i + 1), { rows, steps }, { optimizer: { type: 'adam', lr: 1e-2 } }).loss);
console.log(JSON.stringify({ kernels: rnnkit.engineInfo().gemmKernels, losses }));
`;

interface Trained {
  kernels: string;
  losses: number[];
}

async function train(kernels: string): Promise<Trained> {
  const env = { ...process.env, RNNKIT_GEMM_KERNELS: kernels, RNNKIT_THREADS: '2' };
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', trainScript], { env });
  return JSON.parse(stdout) as Trained;
}

/** Logits of an int8 model after a prompt and 20 greedy steps, on the kernel set of the environment. */
const int8Script = `
const rnnkit = require(${JSON.stringify(join(root, 'dist', 'index.js'))});
(async () => {
  const model = await rnnkit.loadLanguageModel(${JSON.stringify(join(root, 'fixtures/models/pp_lstm.safetensors'))}, { precision: 'int8' });
  const session = model.session({ rows: 3 });
  let logits = session.feed(Int32Array.from({ length: 3 * 17 }, (_, i) => (i * 11) % 75));
  for (let s = 0; s < 20; s++) {
    const next = Int32Array.from({ length: 3 }, (_, r) => logits.subarray(r * 75, (r + 1) * 75).reduce((best, v, i, row) => (v > row[best] ? i : best), 0));
    logits = session.feed(next);
  }
  console.log(JSON.stringify({ kernels: rnnkit.engineInfo().int8Kernels, logits: Array.from(logits) }));
})();
`;

interface Int8Run {
  kernels: string;
  logits: number[];
}

async function int8Logits(kernels: string): Promise<Int8Run> {
  const env = { ...process.env, RNNKIT_GEMM_KERNELS: kernels, RNNKIT_THREADS: '2' };
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', int8Script], { env });
  return JSON.parse(stdout) as Int8Run;
}

describe('int8 kernel sets', () => {
  it.skipIf(!hasAvx2)('generate the same logits with AVX2 int8 kernels as with AVX-512 VNNI ones, within rounding of portable (needs AVX2)', async () => {
    const [avx2, portable] = await Promise.all([int8Logits('avx2'), int8Logits('portable')]);
    expect([avx2.kernels, portable.kernels]).toEqual(['avx2', 'portable']);
    // The int8 sums are exact on every set; the f32 parts (gates, the bf16 head) of the
    // portable set use separate multiply-adds.
    avx2.logits.forEach((v, i) => expect(Math.abs(v - portable.logits[i])).toBeLessThan(1e-3 * (1 + Math.abs(v))));
    if (!hasVnni) return;
    const vnni = await int8Logits('avx512');
    expect(vnni.kernels).toBe('avx512vnni');
    expect(vnni.logits).toEqual(avx2.logits);
  });

  it.skipIf(hasVnni || !hasAvx512)('AVX-512 without VNNI runs the AVX2 int8 kernels', async () => {
    expect((await int8Logits('avx512')).kernels).toBe('avx2');
  });
});

describe('GEMM kernel sets', () => {
  it('reports the best set this CPU runs', () => {
    if (process.env.RNNKIT_GEMM_KERNELS) return;
    expect(engineInfo().gemmKernels).toBe(hasAvx512 ? 'avx512' : hasAvx2 ? 'avx2' : 'portable');
  });

  it('refuses at load an unknown set, naming the variable, the value and the choices', async () => {
    const env = { ...process.env, RNNKIT_GEMM_KERNELS: 'sse9' };
    const script = `try { require(${JSON.stringify(join(root, 'dist', 'index.js'))}); } catch (e) { console.log(e.name + ': ' + e.message); process.exit(3); }`;
    const failed = await promisify(execFile)(process.execPath, ['-e', script], { env }).then(
      () => null,
      (e: { code: number; stdout: string }) => e,
    );
    expect(failed?.code).toBe(3);
    expect(failed?.stdout).toMatch(/^RangeError: RNNKIT_GEMM_KERNELS: expected auto, .*portable, got 'sse9'/);
  });

  it.skipIf(hasAvx512)('refuses at load the AVX-512 set on a CPU without AVX-512F', async () => {
    const env = { ...process.env, RNNKIT_GEMM_KERNELS: 'avx512' };
    const script = `try { require(${JSON.stringify(join(root, 'dist', 'index.js'))}); } catch (e) { console.log(e.message); process.exit(3); }`;
    const failed = await promisify(execFile)(process.execPath, ['-e', script], { env }).then(
      () => null,
      (e: { code: number; stdout: string }) => e,
    );
    expect(failed?.code).toBe(3);
    expect(failed?.stdout).toContain("cannot run 'avx512'");
  });

  it('trains on the portable set', async () => {
    const portable = await train('portable');
    expect(portable.kernels).toBe('portable');
    expect(portable.losses.every(Number.isFinite)).toBe(true);
  });

  it.skipIf(!hasAvx2)('trains on the AVX2 set to within 1e-5 of the portable set (needs AVX2/FMA)', async () => {
    const [avx2, portable] = await Promise.all([train('avx2'), train('portable')]);
    expect(avx2.kernels).toBe('avx2');
    avx2.losses.forEach((loss, i) => expect(Math.abs(loss - portable.losses[i])).toBeLessThan(1e-5 * (1 + loss)));
    // Fused and separate multiply-adds differ in the last bits, so the runs are not identical.
    expect(avx2.losses).not.toEqual(portable.losses);
  });

  it.skipIf(!hasAvx512)('trains on the AVX-512 set to the same bits as on the AVX2 set (needs AVX-512F)', async () => {
    const [avx512, avx2] = await Promise.all([train('avx512'), train('avx2')]);
    expect(avx512.kernels).toBe('avx512');
    expect(avx512.losses).toEqual(avx2.losses);
  });
});
