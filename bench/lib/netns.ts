/**
 * WebRTC benchmarks must stay on loopback (../shared/notes/webrtc-testing.md): a bench that is not already
 * inside a loopback-only network namespace runs itself again inside a fresh one.
 * @module
 */
import { spawnSync } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import type { BenchOptions } from './measure.js';

/** Whether this process sees only loopback interfaces (with `lo` up): WebRTC cannot leave the machine. */
export function loopbackOnly(): boolean {
  const addresses = Object.values(networkInterfaces()).flat();
  return addresses.length > 0 && addresses.every((a) => a?.internal === true);
}

/** Runs bench `name` again, with the same options, inside a fresh network namespace whose only interface is `lo`. */
export function rerunIsolated(name: string, options: BenchOptions): void {
  const root = process.getuid?.() === 0;
  if (!root || spawnSync('unshare', ['-n', 'true']).status !== 0) {
    throw new Error(`bench ${name} needs a loopback-only network namespace: run it as root (it re-runs itself under unshare -n), or inside one`);
  }
  const args = Object.entries(options).map(([k, v]) => `--${k}=${v}`);
  const r = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', process.execPath, ...process.execArgv, process.argv[1]!, name, ...args], {
    stdio: 'inherit', env: { ...process.env, BENCH_CHILD: '1' },
  });
  if (r.status !== 0) throw new Error(`bench ${name} in its network namespace failed (${r.status ?? r.signal})`);
}
