#!/usr/bin/env node
// Packaging test (`npm run test:pack`): installs rnnkit the way a user gets it from the registry —
// the main package plus its platform package, as tarballs — into an empty project, with cargo and
// rustc hidden from PATH, then uses it there. Needs `npm run build` first (the .node and dist/).
//
// The check run inside the project is CHECK below: replace it to exercise more of the API.

import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const isWindows = process.platform === 'win32';
const npm = isWindows ? 'npm.cmd' : 'npm';

// ---- CHECK: runs in the temporary project with `rnnkit` installed; must throw on failure. ----
const CHECK = `
const rnnkit = require('rnnkit');
const fs = require('fs');
const path = require('path');
const info = rnnkit.engineInfo();
if (typeof info.version !== 'string' || !Array.isArray(info.simd) || !(info.threads >= 1)) {
  throw new Error('unexpected engineInfo(): ' + JSON.stringify(info));
}
// Train a tiny character model on the bundled corpus, generate, save, load, generate again.
const text = fs.readFileSync(require.resolve('rnnkit/data/pride-and-prejudice.txt'), 'utf8').slice(0, 20000);
const corpus = rnnkit.TextCorpus.fromString(text, { seqLen: 32, batchSize: 8, validation: 0.1 });
const model = rnnkit.createLanguageModel({ tokenizer: corpus.tokenizer, cell: 'gru', hiddenSize: 32, embedDim: 16 });
(async () => {
  const history = await model.fit(corpus, { maxSteps: 30 });
  if (history.stepsDone !== 30) throw new Error('fit did not run 30 steps: ' + JSON.stringify(history));
  const sample = await model.generate('Elizabeth ', { maxTokens: 40, seed: 1 });
  if ([...sample].length !== 40) throw new Error('unexpected sample: ' + JSON.stringify(sample));
  const file = path.join(process.cwd(), 'tiny.safetensors');
  await model.save(file);
  const loaded = await rnnkit.loadModel(file);
  const again = await loaded.generate('Elizabeth ', { maxTokens: 40, seed: 1 });
  if (again !== sample) throw new Error('loaded model generates differently');
  console.log('engineInfo() =', JSON.stringify(info), '| trained 30 steps, sample:', JSON.stringify(sample));
})().catch((e) => { console.error(e); process.exit(1); });
`;
// ---- end of CHECK ----

let passed = 0;
function ok(what) {
  passed += 1;
  console.log(`ok ${passed} - ${what}`);
}

function run(cmd, args, options = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], shell: isWindows, ...options });
}

/** `npm pack` of `dir` into `dest`; returns the tarball's path. */
function pack(dir, dest) {
  const [info] = JSON.parse(run(npm, ['pack', '--json', '--pack-destination', dest], { cwd: dir }));
  return join(dest, info.filename);
}

/** napi-rs's name for this platform (`linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`, ...). */
function platformArchAbi() {
  if (process.platform === 'linux') {
    const glibc = process.report.getReport().header.glibcVersionRuntime;
    return `linux-${process.arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  return isWindows ? `win32-${process.arch}-msvc` : `${process.platform}-${process.arch}`;
}

/** PATH without any directory holding cargo or rustc: the install must not need a toolchain. */
function pathWithoutRust() {
  const exe = isWindows ? '.exe' : '';
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir && !['cargo', 'rustc', 'rustup'].some((tool) => existsSync(join(dir, tool + exe))))
    .join(delimiter);
}

const platform = platformArchAbi();
const binary = `rnnkit.${platform}.node`;
for (const needed of [binary, 'dist/index.js', 'index.js']) {
  if (!existsSync(join(root, needed))) throw new Error(`${needed} is missing: run \`npm run build\` first`);
}

const work = mkdtempSync(join(tmpdir(), 'rnnkit-pack-'));
try {
  const mainTarball = pack(root, work);
  ok(`packed the main package: ${mainTarball}`);

  // The platform package, as the publish job makes it: napi create-npm-dirs, then the binary.
  // Its log goes to stderr; captured so this test's own lines stay readable (shown on failure).
  run(process.execPath, [join(root, 'node_modules/@napi-rs/cli/dist/cli.js'), 'create-npm-dirs'], { cwd: root, stdio: 'pipe' });
  const platformDir = join(root, 'npm', platform);
  copyFileSync(join(root, binary), join(platformDir, binary));
  const platformTarball = pack(platformDir, work);
  ok(`packed the platform package: ${platformTarball}`);

  const project = join(work, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'rnnkit-pack-test', version: '1.0.0', private: true }));
  // Only what a user's machine has: no Rust toolchain, no cargo settings.
  const env = { ...process.env, PATH: pathWithoutRust() };
  for (const name of Object.keys(env)) if (/^(CARGO|RUSTUP|RUSTC)/.test(name)) delete env[name];
  for (const tool of ['cargo', 'rustc']) {
    let found = true;
    try {
      run(isWindows ? 'where' : 'sh', isWindows ? [tool] : ['-c', `command -v ${tool}`], { env, stdio: 'ignore', shell: false });
    } catch {
      found = false;
    }
    if (found) throw new Error(`${tool} is still on PATH for the install: ${env.PATH}`);
  }
  run(npm, ['install', '--no-audit', '--no-fund', mainTarball, platformTarball], { cwd: project, env, stdio: 'inherit' });
  // The main package ships no binary, so what loads must be the platform package's.
  const shipped = readdirSync(join(project, 'node_modules/rnnkit')).filter((f) => f.endsWith('.node'));
  if (shipped.length > 0) throw new Error(`the main package must not contain binaries: ${shipped.join(', ')}`);
  ok('installed both tarballs into an empty project with cargo and rustc hidden');

  run(process.execPath, ['-e', CHECK], { cwd: project, env, stdio: 'inherit' });
  ok('the installed package works');
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.log(`pack-test: ${passed} passed, 0 failed`);
