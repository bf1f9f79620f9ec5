/**
 * Measurement helpers shared by the benches. Machines running these are shared and noisy, so every figure
 * comes with a baseline measured in the same process, interleaved with it in short slices: a slow patch of
 * machine time then hits both and mostly cancels out of their ratio.
 * @module
 */
import { spawnSync } from 'node:child_process';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { GCProfiler } from 'node:v8';

export type BenchOptions = Record<string, string>;

export interface BenchModule {
  run(options: BenchOptions): Promise<void>;
}

/** Does work until `performance.now()` reaches `deadline` (it may overshoot a little); returns units done. */
export type Runner = (deadline: number) => number;

/**
 * Runs `bench/<name>` with `options` in a fresh node process (same node flags, same runner), its output
 * passed through. Configurations measured one after another in one process inherit each other's JIT
 * feedback and heap: escape analysis removed an allocation per entry in one order and not in another.
 */
export function runIsolated(name: string, options: BenchOptions): void {
  const args = Object.entries(options).map(([k, v]) => `--${k}=${v}`);
  const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1], name, ...args], {
    stdio: 'inherit', env: { ...process.env, BENCH_CHILD: '1' },
  });
  if (r.status !== 0) throw new Error(`bench ${name} ${args.join(' ')} failed (${r.status ?? r.signal})`);
}

export function emit(record: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

export function booleanOption(options: BenchOptions, key: string, fallback: boolean): boolean {
  const v = options[key];
  if (v === undefined) return fallback;
  if (v === 'true' || v === '1' || v === 'on') return true;
  if (v === 'false' || v === '0' || v === 'off') return false;
  throw new RangeError(`--${key} is true or false, not ${v}`);
}

export function numberOption(options: BenchOptions, key: string, fallback: number): number {
  const v = options[key];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`--${key} must be a non-negative number, not ${v}`);
  return n;
}

export function listOption(options: BenchOptions, key: string, fallback: number[]): number[] {
  const v = options[key];
  if (v === undefined) return fallback;
  // `--key=` is an empty list (e.g. `--concurrency=` runs only the kv benchmark's recovery phase).
  return v.split(',').filter((s) => s.trim() !== '').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`--${key} takes positive integers, not ${s}`);
    return n;
  });
}

export interface Interleaved {
  subjectPerSec: number;
  /** NaN without a baseline. */
  baselinePerSec: number;
  /**
   * Median over adjacent slice pairs of subject rate / baseline rate (NaN without a baseline): a burst of
   * contention skews one pair, where it would skew a ratio of totals.
   */
  ratio: number;
  /** Share of the subject's wall time spent in GC pauses on this thread. */
  subjectGcShare: number;
}

/**
 * Runs `subject` for `seconds` in total and `baseline` for half of that, alternating short slices.
 * Throughput is units over the summed wall time of each side's slices. A null baseline is for profiling the
 * subject alone.
 */
export function interleave(subject: Runner, baseline: Runner | null, seconds: number, sliceSeconds = 0.1): Interleaved {
  let subjectUnits = 0, subjectMs = 0, baselineUnits = 0, baselineMs = 0, gcMicros = 0;
  const baselineSlice = sliceSeconds * 0.5;
  const ratios: number[] = [];
  while (subjectMs < seconds * 1000) {
    let t0 = performance.now();
    let t1 = t0;
    let baselineRate = NaN;
    if (baseline) {
      const units = baseline(t0 + baselineSlice * 1000);
      t1 = performance.now();
      baselineUnits += units;
      baselineMs += t1 - t0;
      baselineRate = units / (t1 - t0);
    }

    const gc = new GCProfiler();
    gc.start();
    t0 = performance.now();
    const units = subject(t0 + sliceSeconds * 1000);
    t1 = performance.now();
    for (const s of gc.stop().statistics) gcMicros += s.cost;
    subjectUnits += units;
    subjectMs += t1 - t0;
    if (baseline) ratios.push(units / (t1 - t0) / baselineRate);
    if (debug) console.error(`[slice] subject ${Math.round(units / (t1 - t0))}/ms baseline ${Math.round(baselineRate)}/ms`);
  }
  ratios.sort((a, b) => a - b);
  return {
    subjectPerSec: (subjectUnits / subjectMs) * 1000,
    baselinePerSec: baseline ? (baselineUnits / baselineMs) * 1000 : NaN,
    ratio: ratios.length > 0 ? ratios[ratios.length >> 1] : NaN,
    subjectGcShare: gcMicros / 1000 / subjectMs,
  };
}

export interface AllocationSite {
  /** The allocating function and its file; for a builtin, also its nearest JS caller. */
  fn: string;
  bytes: number;
}

export interface AllocationProfile {
  bytes: number;
  /** What `work` returned: units of work done. */
  units: number;
  sites: AllocationSite[];
}

/** `BENCH_DEBUG=1` prints every slice's rates to stderr, to see how noisy a run was. */
const debug = process.env.BENCH_DEBUG === '1';

let session: Session | null = null;

/**
 * Bytes allocated while `work` runs (it returns the units of work it did), from V8's sampling heap profiler with objects that die young (or old)
 * kept in the count: the heap-size deltas that GC statistics give cannot tell garbage freed by concurrent
 * sweeping from memory never allocated. Sampling slows allocation, so keep this out of timed runs. Samples
 * are scaled by V8, so the total is an unbiased estimate. Sites are physical frames: an allocation in a
 * function the optimiser inlined is charged to the function it was inlined into (run node with
 * `--no-turbo-inlining` to see through that, at the price of allocations escape analysis would have removed).
 */
export async function sampleAllocations(work: () => number, samplingInterval = 512): Promise<AllocationProfile> {
  if (!session) {
    session = new Session();
    session.connect();
    await session.post('HeapProfiler.enable');
  }
  // These two flags are newer than the typings.
  const params = { samplingInterval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true };
  await session.post('HeapProfiler.startSampling', params as { samplingInterval: number });
  const units = work();
  const { profile } = await session.post('HeapProfiler.stopSampling');
  const bySite = new Map<string, AllocationSite>();
  let bytes = 0;
  const walk = (node: typeof profile.head, caller: string): void => {
    const cf = node.callFrame;
    const here = frameName(cf.functionName, cf.url);
    if (node.selfSize > 0) {
      // A builtin (Array.prototype.slice, push's backing-store growth) means little without its JS caller.
      const fn = cf.url === '' ? `${here} <- ${caller}` : here;
      const site = bySite.get(fn) ?? { fn, bytes: 0 };
      site.bytes += node.selfSize;
      bySite.set(fn, site);
      bytes += node.selfSize;
    }
    for (const child of node.children) walk(child, cf.url === '' ? caller : here);
  };
  walk(profile.head, '(root)');
  return { bytes, units, sites: [...bySite.values()].sort((a, b) => b.bytes - a.bytes) };
}

/**
 * `name (file)`, without a line: under tsx each module is one minified line, so lines and columns only mean
 * something through a source map, and the core's function names are distinctive enough on their own.
 */
export function frameName(functionName: string, url: string): string {
  return `${functionName || '(anonymous)'} (${shortUrl(url)})`;
}

/** A file URL relative to the repository root, so records read the same on every clone. */
export function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const i = url.indexOf('/packages/');
  const j = url.indexOf('/bench/');
  if (i >= 0) return url.slice(i + 1);
  if (j >= 0) return url.slice(j + 1);
  return url.replace(/^file:\/\//, '');
}

/** Rounds to `digits` significant digits, so JSON lines do not pretend to more precision than they have. */
export function sig(x: number, digits = 3): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  return Number(x.toPrecision(digits));
}
