/**
 * Forecasting the next value of noisy sums of sines: many-to-one regression over a window of the
 * past values, against the "repeat the last value" baseline.
 *
 *   npm run example:forecast         (or: npx vite-node examples/forecast.ts)
 *
 * Every series has its own three sines (amplitude, period, phase drawn from a seeded generator)
 * plus Gaussian noise, so the model must infer the frequencies from the window itself; the test
 * series are never seen in training.
 */
import { createRegressor } from '../src/index';

const WINDOW = 32;
const LENGTH = 200;
const NOISE = 0.05;

/** A small seeded generator (mulberry32) for the synthetic series; the same seed gives the same data. */
class SeededRandom {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** A float in [0, 1). */
  nextFloat(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x100000000;
  }
}

/** One series: Σ a·sin(2πt/P + φ) + N(0, NOISE²). */
function series(rng: SeededRandom): Float32Array {
  const waves = Array.from({ length: 3 }, () => ({ a: 0.3 + 0.7 * rng.nextFloat(), p: 6 + 24 * rng.nextFloat(), phi: 2 * Math.PI * rng.nextFloat() }));
  return Float32Array.from({ length: LENGTH }, (_, t) => {
    // Box–Muller: two uniforms give one standard normal draw.
    const gauss = Math.sqrt(-2 * Math.log(1 - rng.nextFloat())) * Math.cos(2 * Math.PI * rng.nextFloat());
    return waves.reduce((s, w) => s + w.a * Math.sin((2 * Math.PI * t) / w.p + w.phi), 0) + NOISE * gauss;
  });
}

/** Every window of `WINDOW` values (stride `stride`) with the value after it as the target. */
function windows(xs: Float32Array[], stride: number): { values: Float32Array; target: number }[] {
  const out: { values: Float32Array; target: number }[] = [];
  for (const x of xs) for (let s = 0; s + WINDOW < x.length; s += stride) out.push({ values: x.slice(s, s + WINDOW), target: x[s + WINDOW] });
  return out;
}

async function main(): Promise<void> {
  const rng = new SeededRandom(Number(process.env.SEED ?? 2024));
  const trainSeries = Array.from({ length: Number(process.env.SERIES ?? 200) }, () => series(rng));
  const testSeries = Array.from({ length: 50 }, () => series(rng));
  const train = windows(trainSeries, 4);
  const test = windows(testSeries, 8);
  const model = createRegressor({ inputSize: 1, outputSize: 1, cell: 'lstm', hiddenSize: 64, pooling: 'last', seed: 3 });
  console.log(
    `forecast: ${train.length} training windows from ${trainSeries.length} series, ${test.length} test windows from ${testSeries.length} unseen series`,
  );
  const t0 = Date.now();
  await model.fit(train, {
    epochs: Number(process.env.EPOCHS ?? 12),
    batchSize: 64,
    optimizer: { type: 'adam', lr: 3e-3 },
    schedule: { type: 'cosine', tMax: Math.ceil(train.length / 64) * Number(process.env.EPOCHS ?? 12) },
    clipNorm: 1,
    seed: 4,
    onProgress: (e) => {
      if (e.type === 'step' && e.step % 500 === 0) console.log(`  step ${e.step}/${e.totalSteps}: loss ${e.loss.toFixed(5)}`);
    },
  });
  const seconds = (Date.now() - t0) / 1000;
  const r = await model.evaluate(test);
  const baseline = test.reduce((s, w) => s + (w.values[WINDOW - 1] - w.target) ** 2, 0) / test.length;
  console.log(
    `test MSE: model ${r.mse.toFixed(5)}, repeat-last-value ${baseline.toFixed(5)}: ${(baseline / r.mse).toFixed(1)}× lower (noise variance ${(NOISE * NOISE).toFixed(5)})`,
  );
  console.log(`training time ${seconds.toFixed(1)} s`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
