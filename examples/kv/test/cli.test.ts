import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'main.ts');
const WAIT_MS = 30_000;

interface Run {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(args: string[]): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, KV_SECRET: 'cli-test-secret' } });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => { err += c.toString('utf8'); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, stderr: () => err, exited };
}

/** Waits for a JSON log line with this event on the member's stderr. */
async function logEvent(r: Run, event: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    for (const line of r.stderr().split('\n')) {
      if (!line.startsWith('{')) continue;
      const rec = JSON.parse(line) as Record<string, unknown>;
      if (rec.event === event) return rec;
    }
    if (r.child.exitCode !== null) throw new Error(`the member exited before logging ${event}: ${r.stderr()}`);
    if (Date.now() > deadline) throw new Error(`no ${event} log line: ${r.stderr()}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

/** Retries while the single member has not elected itself yet (503). */
async function fetchOk(url: string, init?: RequestInit): Promise<Response> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const res = await fetch(url, { ...init, headers: { connection: 'close' } });
    if (res.status !== 503) return res;
    await res.arrayBuffer();
    if (Date.now() > deadline) throw new Error(`${url}: still 503`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('examples/kv CLI (main.ts)', () => {
  let dir: string;
  const running: Run[] = [];
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'raftrtc-kv-cli-')); });
  after(async () => {
    for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a bad command line with the usage and exit code 2', async () => {
    for (const args of [
      ['--id', 'n1'],
      ['--id', 'n1', '--peers', 'n2=127.0.0.1:7002', '--listen', '127.0.0.1:0', '--data', dir],
      ['--id', 'n1', '--peers', 'n1=nowhere', '--listen', '127.0.0.1:0', '--data', dir],
      ['--id', 'n1', '--peers', 'n1=127.0.0.1:0', '--listen', '127.0.0.1:0', '--data', dir, '--bogus'],
      ['--id', 'n1', '--peers', 'n1=127.0.0.1:0', '--listen', '127.0.0.1:0', '--data', dir, '--tick-ms', '0'],
      ['--id', 'n1', '--peers', 'n1=127.0.0.1:0', '--listen', '127.0.0.1:0', '--data', dir, '--election-ticks', 'ten'],
    ]) {
      const r = run(args);
      const { code } = await r.exited;
      assert.equal(code, 2, `exit code for ${args.join(' ')}`);
      assert.ok(r.stderr().includes('usage: kv'), `the usage is printed for ${args.join(' ')}: ${r.stderr()}`);
    }
  });

  it('runs a one-member cluster, stops on SIGTERM, and keeps its data across a restart', async () => {
    const args = ['--id', 'n1', '--peers', 'n1=127.0.0.1:0', '--listen', '127.0.0.1:0', '--data', join(dir, 'n1')];
    const first = run(args);
    running.push(first);
    const started = await logEvent(first, 'kv.started');
    const url = `http://${String(started.http)}`;
    const put = await fetchOk(`${url}/kv/persisted`, { method: 'PUT', body: JSON.stringify({ value: 'yes' }) });
    assert.equal(put.status, 200, `PUT: ${await put.clone().text()}`);
    await put.arrayBuffer();
    first.child.kill('SIGTERM');
    assert.deepEqual(await first.exited, { code: 0, signal: null }, 'a clean exit on SIGTERM');
    assert.ok(first.stderr().includes('"kv.stopping"'), 'the stop is logged');

    const second = run(args);
    running.push(second);
    const again = await logEvent(second, 'kv.started');
    const get = await fetchOk(`http://${String(again.http)}/kv/persisted`);
    assert.equal(get.status, 200, 'the key survived the restart');
    assert.equal(((await get.json()) as { value: unknown }).value, 'yes', 'with its value');
    second.child.kill('SIGTERM');
    assert.deepEqual(await second.exited, { code: 0, signal: null }, 'a clean exit again');
  });
});
