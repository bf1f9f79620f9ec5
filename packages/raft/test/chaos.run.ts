/**
 * `npm run chaos`: the chaos scenario over many seeds, in parallel worker processes.
 *   npm run chaos                      10,000 seeds from 1
 *   npm run chaos -- --seeds 500 --from 20000
 *   npm run chaos -- --seed 123        replay one seed, with its full error
 */
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { runChaos, type ChaosReport } from './chaos/scenario.js';

const args = process.argv.slice(2);
const opt = (name: string): number | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : undefined;
};

if (process.env.CHAOS_WORKER) {
  const [from, to] = process.env.CHAOS_WORKER.split(':').map(Number);
  const failures: string[] = [];
  let ops = 0;
  for (let seed = from; seed < to; seed++) {
    try { ops += runChaos(seed).operations; } catch (err) { failures.push((err as Error).message); }
  }
  process.send!({ done: to - from, failures, ops });
} else if (opt('seed') !== undefined) {
  const seed = opt('seed')!;
  const r: ChaosReport = runChaos(seed);
  console.log(JSON.stringify(r));
} else {
  const seeds = opt('seeds') ?? 10_000;
  const from = opt('from') ?? 1;
  const workers = Math.max(1, availableParallelism());
  const chunk = Math.ceil(seeds / workers);
  const started = Date.now();
  let done = 0, ops = 0;
  const failures: string[] = [];
  await Promise.all(Array.from({ length: workers }, (_, w) => new Promise<void>((resolve) => {
    const lo = from + w * chunk, hi = Math.min(from + seeds, lo + chunk);
    if (lo >= hi) { resolve(); return; }
    const child = fork(process.argv[1], [], { env: { ...process.env, CHAOS_WORKER: `${lo}:${hi}` }, execArgv: process.execArgv });
    child.on('message', (m: { done: number; failures: string[]; ops: number }) => { done += m.done; ops += m.ops; failures.push(...m.failures); });
    child.on('exit', () => resolve());
  })));
  for (const f of failures) console.log(`FAIL ${f}`);
  console.log(`chaos: ${done} seeds from ${from}, ${ops} client operations checked, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(`${done - failures.length} passed, ${failures.length} failed`);
  process.exit(failures.length || done !== seeds ? 1 : 0);
}
