// Audio comparison for the client tests: short-time RMS envelopes and normalized cross-correlation.
// Envelopes, not waveforms, because Opus is a perceptual codec and a mix adds other voices: what must survive
// is when and how loud each voice is. Also: `voice call` as a real child process.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** RMS of consecutive windows of `windowSamples` samples. */
export function envelope(samples: Int16Array, windowSamples: number): Float64Array {
  const n = Math.floor(samples.length / windowSamples);
  const out = new Float64Array(n);
  for (let w = 0; w < n; w++) {
    let s = 0;
    for (let i = w * windowSamples; i < (w + 1) * windowSamples; i++) s += samples[i] * samples[i];
    out[w] = Math.sqrt(s / windowSamples);
  }
  return out;
}

/** Pearson correlation of `a` with `b[lag … lag + a.length)`; 0 when either side is constant. */
export function correlationAt(a: ArrayLike<number>, b: ArrayLike<number>, lag: number): number {
  let sa = 0;
  let sb = 0;
  const n = a.length;
  for (let i = 0; i < n; i++) {
    sa += a[i];
    sb += b[lag + i] ?? 0;
  }
  const ma = sa / n;
  const mb = sb / n;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i] - ma;
    const y = (b[lag + i] ?? 0) - mb;
    num += x * y;
    da += x * x;
    db += y * y;
  }
  return da > 0 && db > 0 ? num / Math.sqrt(da * db) : 0;
}

/** The lag (in windows) where `needle` matches `haystack` best, and how well. */
export function bestMatch(needle: ArrayLike<number>, haystack: ArrayLike<number>): { lag: number; r: number } {
  let best = { lag: 0, r: -1 };
  for (let lag = 0; lag + needle.length <= haystack.length; lag++) {
    const r = correlationAt(needle, haystack, lag);
    if (r > best.r) best = { lag, r };
  }
  return best;
}

/** How a client process ended. */
export interface Exited {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A `voice call` child process whose output lines are collected. */
export interface CallProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Standard output so far, as lines. */
  lines(): string[];
  /** Resolves with the first stdout line matching `re` (throws after `timeoutMs`, naming the output so far). */
  line(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Writes a command line to its standard input. */
  command(text: string): void;
  /** Resolves when the process exits. */
  exited: Promise<Exited>;
}

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));

/** Starts `node --import tsx packages/voice/src/cli.ts call <args>` as a real process (`env` replaces the environment). */
export function spawnCall(args: readonly string[], env: NodeJS.ProcessEnv = process.env): CallProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'call', ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    stdout += d;
    for (const w of waiters.splice(0)) w();
  });
  child.stderr.on('data', (d: string) => (stderr += d));
  const exited = new Promise<Exited>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
  const lines = (): string[] => stdout.split('\n').filter(Boolean);
  return {
    child,
    lines,
    command: (text) => void child.stdin.write(`${text}\n`),
    exited,
    line: async (re, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      let done = false;
      void exited.then(() => (done = true));
      for (;;) {
        const hit = lines().find((l) => re.test(l));
        if (hit) return hit;
        if (done || Date.now() > deadline) throw new Error(`no line matching ${re} (${done ? 'exited' : 'timed out'}); stdout:\n${stdout}\nstderr:\n${stderr}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
    },
  };
}
