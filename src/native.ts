/**
 * The native engine: loads the napi-rs loader generated at the package root (`index.js`), which
 * picks `rnnkit.<platform>.node` beside it or the `rnnkit-<platform>` optional dependency.
 *
 * Errors thrown by native functions need no wrapping here: the binding creates them in Rust with
 * the right class (TypeError/RangeError/Error) and a stable `code` (see
 * `crates/rnn-node/src/errors.rs`). Only the load failure is translated, into an error that says
 * which binary this platform needs and how to build one.
 */
import type * as Native from '../index';
import { platformArchTriples } from '@napi-rs/triples';
import { checkInt, error } from './errors';

export type { EngineInfo } from '../index';

/** The `napi.targets` of package.json: the platforms with a prebuilt binary. */
function supportedTargets(): string[] {
  // Read at run time (not imported) so the list cannot drift from what the publish job builds.
  const pkg = require('../package.json') as { napi: { targets: string[] } };
  return pkg.napi.targets;
}

/** Which C library a Linux process runs on; napi-rs ships separate gnu and musl binaries. */
function linuxAbi(): 'gnu' | 'musl' {
  // glibc reports its version in the diagnostic report header; musl does not.
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ? 'gnu' : 'musl';
}

/** Where a native binary is wanted: Node's platform and arch, and the libc on Linux. */
export interface PlatformQuery {
  platform: string;
  arch: string;
  /** `gnu` or `musl` on Linux; ignored elsewhere. */
  abi?: string;
}

/** A Rust target that can serve a platform, and the suffix napi-rs gives its npm package. */
export interface TargetTriple {
  /** e.g. `x86_64-unknown-linux-musl` */
  triple: string;
  /** e.g. `linux-x64-musl`: the platform package is `rnnkit-<platformArchABI>`. */
  platformArchABI: string;
}

/**
 * The Rust targets that could serve `where`, from the napi-rs triples table; on Linux only those
 * of the given libc. Empty for a platform the table does not know.
 */
export function targetTriples(where: PlatformQuery): TargetTriple[] {
  // The table's typings name the triple `raw`, its data `triple`: read whichever is there.
  const entries = (platformArchTriples[where.platform]?.[where.arch] ?? []) as Array<{
    abi: string | null;
    platformArchABI: string;
    triple?: string;
    raw?: string;
  }>;
  const fitting = where.platform === 'linux' && where.abi ? entries.filter((t) => t.abi === where.abi) : entries;
  return fitting.map((t) => ({ triple: t.triple ?? t.raw ?? '', platformArchABI: t.platformArchABI }));
}

/**
 * The message of the error thrown when no native binary loads: this platform's target triple(s),
 * the prebuilt ones, and how to get a binary anyway. `loaderError` is the loader's own message.
 */
export function noBinaryMessage(where: PlatformQuery, supported: readonly string[], loaderError?: string): string {
  const triples = targetTriples(where);
  const abi = where.platform === 'linux' && where.abi ? ` ${where.abi}` : '';
  const wanted = triples.length > 0 ? triples.map((t) => t.triple).join(' or ') : 'none known to napi-rs';
  const lines = [
    `rnnkit: no usable native binary for ${where.platform} ${where.arch}${abi} (Rust target: ${wanted}).`,
    `Prebuilt binaries exist for: ${supported.join(', ')}.`,
  ];
  const prebuilt = triples.find((t) => supported.includes(t.triple));
  if (prebuilt) {
    // The platform is supported, so its optional dependency is missing or does not load.
    lines.push(
      `This platform is among them: the package rnnkit-${prebuilt.platformArchABI} is missing or broken ` +
        '(installed with --omit=optional, or from a lockfile made on another platform?); reinstall rnnkit.',
    );
  }
  lines.push(
    'To build from source: install a Rust toolchain (https://rustup.rs), clone the rnnkit repository, ' +
      'run `npm install && npm run build` in it, then install that directory.',
  );
  if (loaderError) lines.push(`Loader error: ${loaderError}`);
  return lines.join('\n');
}

/** This process's platform, with its libc on Linux. */
function currentPlatform(): PlatformQuery {
  return { platform: process.platform, arch: process.arch, abi: process.platform === 'linux' ? linuxAbi() : undefined };
}

/** Loads the generated napi-rs loader; any failure becomes `ERR_RNNKIT_NO_BINARY`. */
function load(): typeof Native {
  let loaded: typeof Native;
  try {
    loaded = require('../index.js') as typeof Native;
  } catch (cause) {
    const loaderError = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    const err = error('ERR_RNNKIT_NO_BINARY', noBinaryMessage(currentPlatform(), supportedTargets(), loaderError));
    err.cause = cause;
    throw err;
  }
  // Refuses here, at load, an environment the engine cannot follow (RNNKIT_GEMM_KERNELS naming a
  // kernel set this CPU lacks), rather than running other kernels than the ones asked for.
  loaded.engineInfo();
  return loaded;
}

/**
 * The native binding, typed by the generated `index.d.ts`. The rest of `src/` calls the engine
 * through this object; the public API wraps it (argument checks, friendlier types).
 */
export const native: typeof Native = load();

/**
 * Describes the native engine: its version, the SIMD instruction sets detected on this CPU
 * (`avx2`, `fma`, `avx512f`), the number of compute threads and the GEMM kernel set in use
 * (`avx512`, `avx2` or `portable`; `RNNKIT_GEMM_KERNELS` chooses one).
 */
export function engineInfo(): Native.EngineInfo {
  return native.engineInfo();
}

/**
 * Sets the number of compute threads used by work started afterwards (0 = the default: one per
 * core, or the `RNNKIT_THREADS` environment variable). Training is bit-identical for a fixed
 * thread count; different counts may differ in the last bits.
 */
export function setThreads(n: number): void {
  native.setThreads(checkInt('n', n, 0, 1024));
}
