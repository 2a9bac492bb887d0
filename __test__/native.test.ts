import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { engineInfo, noBinaryMessage, targetTriples } from '../src/native';

const root = resolve(__dirname, '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; napi: { targets: string[] } };

describe('engineInfo', () => {
  it('reports the binary version, the CPU SIMD features and the pool size', () => {
    const info = engineInfo();
    // A mismatch means a stale .node file from an older build is being loaded.
    expect(info.version).toBe(pkg.version);
    expect(Number.isInteger(info.threads)).toBe(true);
    expect(info.threads).toBeGreaterThanOrEqual(1);
    expect(info.threads).toBeLessThanOrEqual(Math.max(cpus().length, Number(process.env.RAYON_NUM_THREADS ?? 0)));
    if (process.platform === 'linux' && process.arch === 'x64') {
      // Cross-check run-time detection against the kernel's view of the CPU.
      const flags = new Set(/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))![1].trim().split(/\s+/));
      expect(info.simd).toEqual(['avx2', 'fma', 'avx512f'].filter((f) => flags.has(f)));
    } else if (process.arch !== 'x64' && process.arch !== 'ia32') {
      expect(info.simd).toEqual([]);
    }
  });
});

describe('the no-binary error', () => {
  const supported = pkg.napi.targets;

  it('names an unsupported platform triple, the supported ones and the source build', () => {
    const message = noBinaryMessage({ platform: 'linux', arch: 'riscv64', abi: 'gnu' }, supported);
    expect(message).toContain('linux riscv64 gnu (Rust target: riscv64gc-unknown-linux-gnu)');
    expect(message).not.toContain('riscv64gc-unknown-linux-musl');
    expect(message).toContain(`Prebuilt binaries exist for: ${supported.join(', ')}.`);
    expect(message).toContain('npm run build');
    expect(message).toContain('Rust toolchain');
    expect(message).not.toContain('among them');
  });

  it('picks the triple of the libc in use and names the missing platform package', () => {
    expect(targetTriples({ platform: 'linux', arch: 'x64', abi: 'musl' })).toEqual([
      { triple: 'x86_64-unknown-linux-musl', platformArchABI: 'linux-x64-musl' },
    ]);
    const message = noBinaryMessage({ platform: 'linux', arch: 'x64', abi: 'musl' }, supported, 'Cannot find native binding.');
    expect(message).toContain('(Rust target: x86_64-unknown-linux-musl)');
    expect(message).toContain('rnnkit-linux-x64-musl is missing or broken');
    expect(message).toContain('Loader error: Cannot find native binding.');
  });

  it('says so when napi-rs knows no target for the platform', () => {
    const message = noBinaryMessage({ platform: 'plan9', arch: 'x64' }, supported);
    expect(message).toContain('plan9 x64 (Rust target: none known to napi-rs)');
  });

  it('is what loading the package throws when no binary is present', () => {
    // A copy of the built package (needs `npm run build`, like every test of the native engine)
    // without any .node file and without the platform package.
    const dir = mkdtempSync(join(tmpdir(), 'rnnkit-nobinary-'));
    try {
      for (const f of ['package.json', 'index.js', 'dist']) cpSync(join(root, f), join(dir, f), { recursive: true });
      symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'junction');
      const script = `try { require('./dist/index.js'); console.log('loaded'); } catch (e) {
        console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message, cause: !!e.cause })); }`;
      const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: dir, encoding: 'utf8' }));
      expect(out.name).toBe('Error');
      expect(out.code).toBe('ERR_RNNKIT_NO_BINARY');
      expect(out.cause).toBe(true);
      expect(out.message).toContain(`no usable native binary for ${process.platform} ${process.arch}`);
      for (const t of supported) expect(out.message).toContain(t);
      expect(out.message).toContain('npm run build');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
