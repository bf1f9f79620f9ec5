/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): self and total time per function, or per file.
 *
 *   node --import tsx bench/tools/profile-summary.ts <file.cpuprofile | dir> [--top=30] [--by=function|file]
 *     [--lines=N]
 *
 * Given a directory, it reads the newest profile in it. Functions are keyed by name and file, not line:
 * under tsx every module is one minified line, so positions mean nothing without its source map.
 * `total` counts a function once per sample however deep it recurses. `--lines=N` also lists the N hottest
 * source lines of each listed function (self samples), which needs a profile of the tsc build
 * (`bench/README.md`): with tsx they are all line 1. Code inlined by the optimiser is charged to the
 * function it was inlined into, at the line of the inlined code, so lines are the finer attribution.
 * @module
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { frameName, shortUrl } from '../lib/measure.js';

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[]; positionTicks?: { line: number; ticks: number }[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

const args = process.argv.slice(2);
const opts = new Map<string, string>();
const paths: string[] = [];
for (const a of args) {
  const m = /^--([^=]+)=(.*)$/.exec(a);
  if (m) opts.set(m[1], m[2]);
  else paths.push(a);
}
if (paths.length !== 1) {
  console.error('usage: profile-summary.ts <file.cpuprofile | dir> [--top=30] [--by=function|file]');
  process.exit(2);
}
const top = Number(opts.get('top') ?? 30);
const lines = Number(opts.get('lines') ?? 0);
const by = opts.get('by') ?? 'function';
if (by !== 'function' && by !== 'file') throw new RangeError('--by is function or file');

function newestProfile(p: string): string {
  if (!statSync(p).isDirectory()) return p;
  const files = readdirSync(p).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(p, f));
  if (files.length === 0) throw new Error(`no .cpuprofile in ${p}`);
  return files.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

const file = newestProfile(paths[0]);
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;

const keyOf = (cf: CallFrame): string => {
  // V8's pseudo-frames: (garbage collector), (program), (idle), (root).
  if (cf.url === '' && cf.functionName.startsWith('(')) return cf.functionName;
  return by === 'file' ? shortUrl(cf.url) : frameName(cf.functionName, cf.url);
};

const sources = new Map<string, string[]>();
const childrenOf = new Map<number, number[]>();
for (const n of profile.nodes) childrenOf.set(n.id, n.children ?? []);

/** Keys of every function called, directly or not, by any node of `k`. */
function callees(k: string): Set<string> {
  const out = new Set<string>();
  const stack = profile.nodes.filter((n) => key.get(n.id) === k).map((n) => n.id);
  const seen = new Set<number>();
  while (stack.length > 0) {
    const id = stack.pop()!;
    for (const c of childrenOf.get(id) ?? []) {
      if (seen.has(c)) continue;
      seen.add(c);
      out.add(key.get(c)!);
      stack.push(c);
    }
  }
  return out;
}
const parent = new Map<number, number>();
const key = new Map<number, string>();
for (const n of profile.nodes) {
  key.set(n.id, keyOf(n.callFrame));
  for (const c of n.children ?? []) parent.set(c, n.id);
}

// Sample i lasts until sample i + 1 starts; the last one gets the mean.
const { samples, timeDeltas } = profile;
const totalUs = profile.endTime - profile.startTime;
const mean = totalUs / Math.max(samples.length, 1);
const self = new Map<string, number>();
const total = new Map<string, number>();
for (let i = 0; i < samples.length; i++) {
  const dt = i + 1 < timeDeltas.length ? timeDeltas[i + 1] : mean;
  let id: number | undefined = samples[i];
  const k = key.get(id)!;
  self.set(k, (self.get(k) ?? 0) + dt);
  const seen = new Set<string>();
  for (; id !== undefined; id = parent.get(id)) {
    const kk = key.get(id)!;
    if (seen.has(kk)) continue;
    seen.add(kk);
    total.set(kk, (total.get(kk) ?? 0) + dt);
  }
}

const idle = (self.get('(idle)') ?? 0) + (self.get('(program)') ?? 0);
console.log(`${file}: ${(totalUs / 1e6).toFixed(2)} s, ${samples.length} samples; (idle)+(program) ${pct(idle)}`);
console.log(`${'self ms'.padStart(9)} ${'self%'.padStart(6)} ${'total%'.padStart(6)}  ${by}`);
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
for (const [k, us] of rows) {
  console.log(`${(us / 1000).toFixed(1).padStart(9)} ${pct(us).padStart(6)} ${pct(total.get(k) ?? 0).padStart(6)}  ${k}`);
}

if (lines > 0) {
  // positionTicks count samples per line; scale them to time with the function's self time.
  const perKey = new Map<string, { cf: CallFrame; ticks: Map<number, number>; hits: number }>();
  // Start lines of the sampled functions per file, to guess where an inlined line comes from.
  const starts = new Map<string, { line: number; name: string }[]>();
  for (const n of profile.nodes) {
    const k = key.get(n.id)!;
    const e = perKey.get(k) ?? { cf: n.callFrame, ticks: new Map<number, number>(), hits: 0 };
    for (const t of n.positionTicks ?? []) {
      e.ticks.set(t.line, (e.ticks.get(t.line) ?? 0) + t.ticks);
      e.hits += t.ticks;
    }
    perKey.set(k, e);
    const { url, lineNumber, functionName } = n.callFrame;
    if (url.startsWith('file:') && !url.includes('/node_modules/')) {
      const list = starts.get(url) ?? [];
      if (!list.some((f) => f.line === lineNumber + 1)) list.push({ line: lineNumber + 1, name: functionName || '(anonymous)' });
      starts.set(url, list);
    }
  }
  const containing = (url: string, line: number): { line: number; name: string } | undefined => {
    let best: { line: number; name: string } | undefined;
    for (const f of starts.get(url) ?? []) if (f.line <= line && (!best || f.line > best.line)) best = f;
    return best;
  };
  for (const [k, us] of rows) {
    const e = perKey.get(k);
    if (!e || e.hits === 0 || !e.cf.url.startsWith('file:')) continue;
    console.log(`\n${k}: ${(us / 1000).toFixed(1)} ms self`);
    for (const [line, ticks] of [...e.ticks.entries()].sort((a, b) => b[1] - a[1]).slice(0, lines)) {
      const share = pct((us * ticks) / e.hits).padStart(7);
      const own = containing(e.cf.url, line);
      if (own && own.line === e.cf.lineNumber + 1) {
        console.log(`${share}  ${String(line).padStart(5)}  ${sourceLine(e.cf.url, line)}`);
        continue;
      }
      // A line outside the function is code inlined into it, from some other function and maybe another
      // file: V8 records the line but not the script. Inlined functions were called for real before the
      // optimiser got to them, so the plausible sources are functions seen below this one in the tree.
      const below = callees(k);
      const guesses: string[] = [];
      for (const url of starts.keys()) {
        const f = containing(url, line);
        if (!f || !below.has(frameName(f.name === '(anonymous)' ? '' : f.name, url))) continue;
        const text = sourceLine(url, line);
        if (text !== '' && !text.startsWith('//') && !text.startsWith('*')) guesses.push(`${f.name} (${shortUrl(url)}): ${text}`);
      }
      // Nothing sampled below contains it (a callee inlined from its first optimisation): the function's own
      // file is then the likeliest source.
      if (guesses.length === 0) guesses.push(`? (${shortUrl(e.cf.url)}): ${sourceLine(e.cf.url, line)}`);
      console.log(`${share}  ${String(line).padStart(5)}  inlined${guesses.length > 1 ? ', one of' : ''}:`);
      for (const g of guesses.slice(0, 4)) console.log(`${''.padStart(15)}${g.slice(0, 120)}`);
    }
  }
}

function sourceLine(url: string, line: number): string {
  let text = sources.get(url);
  if (!text) {
    try {
      text = readFileSync(new URL(url), 'utf8').split('\n');
    } catch {
      text = [];
    }
    sources.set(url, text);
  }
  return (text[line - 1] ?? '').trim().slice(0, 110);
}

function pct(us: number): string {
  return `${((us / totalUs) * 100).toFixed(1)}%`;
}
