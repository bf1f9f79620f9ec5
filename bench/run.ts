/**
 * `npm run bench [-- name... --key=value...]`: runs `bench/<name>.ts` for each name given, or every bench
 * when none is. Each module exports `run(options)`; options are the `--key=value` arguments, passed to
 * every bench run. Results go to stdout as JSON lines, progress and warnings to stderr, so
 * `npm run bench -- core > out.jsonl` captures only figures.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchModule, BenchOptions } from './lib/measure.js';

const dir = dirname(fileURLToPath(import.meta.url));
// `.js` when run from the tsc build that profiling uses (see README.md).
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const available = readdirSync(dir)
  .filter((f) => f.endsWith(ext) && f !== `run${ext}` && !f.endsWith('.d.ts'))
  .map((f) => f.slice(0, -ext.length))
  .sort();

const names: string[] = [];
const options: BenchOptions = {};
for (const arg of process.argv.slice(2)) {
  const m = /^--([^=]+)(?:=(.*))?$/.exec(arg);
  if (m) options[m[1]] = m[2] ?? 'true';
  else names.push(arg);
}

const unknown = names.filter((n) => !available.includes(n));
if (unknown.length > 0) {
  console.error(`unknown bench: ${unknown.join(', ')} (available: ${available.join(', ')})`);
  process.exit(2);
}

for (const name of names.length > 0 ? names : available) {
  const mod = (await import(pathToFileURL(join(dir, `${name}${ext}`)).href)) as BenchModule;
  if (process.env.BENCH_CHILD !== '1') console.error(`[bench] ${name}`);
  await mod.run(options);
}
