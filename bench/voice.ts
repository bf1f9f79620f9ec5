/**
 * `npm run bench -- voice`: the voice relay (`@raftrtc/voice`, packages/voice) with 10, 50 and 100 simulated
 * clients in one room, each sending 50 frames a second of `--chunk` bytes (an Opus voice frame is about 80).
 *
 * The server runs in this process, the clients in a child process, so this process's CPU time over the
 * measured window is the server's. Each chunk carries its send time (`performance.now()` of the client
 * process); a receiving client reads it, so latency is client send → other client receive on one clock,
 * through the client's gRPC stack, the server and back. The simulated clients skip protobuf on their side
 * (requests pre-encoded, responses scanned for the timestamp) so that their own cost weighs little.
 *
 * Per configuration, for the relay and the baseline: forwarding latency p50/p99, frames delivered against
 * those expected (every frame to every other client), frames the relay dropped (its per-client queues drop
 * the oldest), clients it disconnected, server CPU ms per 1,000 frames delivered (received by a client; a
 * frame a server only buffered helps nobody), and the CPU share (cores) of the server and of the client
 * process: a client process near one core means the clients, not the server, set the figures. A last line
 * gives the largest client count whose p99 stayed under 20 ms on the relay, with the server's cores there.
 *
 * The baseline, measured in the same run: the seed's server design in grpc-js, a naive fan-out with the same
 * service and the same clients: decode each request, write it to every other call (encoded once per
 * recipient), no validation, no bounded queue (grpc-js buffers without limit), no limiter.
 *
 * Options: `--clients=10,50,100 --seconds=5 --warmup=1 --fps=50 --chunk=80 --baseline=true`, and
 * `--room-size=K` to put the clients in rooms of K (metadata `room`; no baseline then: the seed has no rooms).
 * @module
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { calling, startVoiceServer, VOIP_PATH, type ClientREQ, type ServerRES } from '../packages/voice/src/index.js';
import { booleanOption, emit, listOption, numberOption, sig, type BenchOptions } from './lib/measure.js';
import { quantile } from './lib/stats.js';

const PASSCODE = 'bench';
/** Marks the timestamp inside a chunk, so a receiver finds it without decoding the response. */
const MAGIC = Buffer.from('VBNCHTS:');

/** What the parent tells the client process. */
interface ClientsConfig {
  address: string;
  clients: number;
  fps: number;
  chunk: number;
  warmup: number;
  seconds: number;
  /** Clients per room (metadata `room`); 0: all in one room. */
  roomSize: number;
}

/** What the client process reports at the end of its window. */
interface ClientsReport {
  latencies: number[];
  sent: number;
  received: number;
  /** Calls that ended before the window did. */
  ended: number;
  /** The client process's CPU time over the window, ms: near the window's length, the clients are the bottleneck. */
  cpuMs: number;
}

/** A running server under test: its address, how many frames it has handed out, and how to stop it. */
interface Subject {
  address: string;
  dropped(): number;
  evicted(): number;
  close(): Promise<void>;
}

async function startRelay(maxClients: number): Promise<Subject> {
  const server = await startVoiceServer({ passcode: PASSCODE, maxClients, logLevel: 'error' });
  return {
    address: server.address,
    dropped: () => server.metrics().framesDropped,
    evicted: () => server.metrics().left.stalled + server.metrics().left.malformed,
    close: () => server.close(),
  };
}

/** The baseline: a naive grpc-js fan-out of the same service. */
async function startNaive(): Promise<Subject> {
  const calls = new Set<grpc.ServerDuplexStream<ClientREQ, ServerRES>>();
  const server = new grpc.Server();
  server.addService(calling.service, {
    VoIP: (call: grpc.ServerDuplexStream<ClientREQ, ServerRES>) => {
      const id = crypto.randomUUID();
      calls.add(call);
      call.on('data', (req: ClientREQ) => {
        if (req.signal) call.write({ signal: {} });
        else if (req.message) {
          for (const other of calls) {
            if (other === call) continue;
            other.write({ message: { msg: req.message, id } });
          }
        }
      });
      const leave = (): void => {
        calls.delete(call);
      };
      call.on('end', () => {
        leave();
        call.end();
      });
      call.on('error', leave);
      call.on('cancelled', leave);
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return {
    address: `127.0.0.1:${port}`,
    dropped: () => 0,
    evicted: () => 0,
    close: () => new Promise<void>((resolve) => {
      for (const c of calls) c.end();
      server.tryShutdown(() => resolve());
      setTimeout(() => server.forceShutdown(), 3000).unref();
    }),
  };
}

/** Runs `clients` simulated clients against `subject`; returns the figures of the measured window. */
async function measure(subject: Subject, cfg: Omit<ClientsConfig, 'address'>): Promise<Record<string, number>> {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [...process.execArgv, self], {
    env: { ...process.env, VOICE_BENCH_ROLE: 'clients', VOICE_BENCH_CONFIG: JSON.stringify({ ...cfg, address: subject.address }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  let cpu0 = process.cpuUsage();
  let t0 = performance.now();
  let drop0 = 0;
  let cpuMs = NaN;
  let wallMs = NaN;
  let dropped = NaN;
  let figures: Record<string, number> | undefined;
  for await (const line of lines) {
    if (line === 'window-start') {
      cpu0 = process.cpuUsage();
      t0 = performance.now();
      drop0 = subject.dropped();
    } else if (line === 'window-end') {
      const cpu = process.cpuUsage(cpu0);
      wallMs = performance.now() - t0;
      cpuMs = (cpu.user + cpu.system) / 1000;
      dropped = subject.dropped() - drop0;
    } else if (line.startsWith('{')) {
      const r = JSON.parse(line) as ClientsReport;
      const expected = r.sent * ((cfg.roomSize || cfg.clients) - 1);
      figures = {
        p50Ms: sig(quantile(r.latencies, 0.5)),
        p99Ms: sig(quantile(r.latencies, 0.99)),
        sent: r.sent,
        received: r.received,
        delivered: sig(r.received / Math.max(1, expected)),
        dropped,
        // Per frame that reached a client: frames a server merely buffered cost it little and help nobody.
        cpuMsPer1000: sig((cpuMs / Math.max(1, r.received)) * 1000),
        serverCores: sig(cpuMs / wallMs),
        clientCores: sig(r.cpuMs / wallMs),
        clientsEnded: r.ended,
        evicted: subject.evicted(),
      };
    }
  }
  const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));
  if (code !== 0 || !figures || figures.p50Ms === undefined) throw new Error(`the client process failed (exit ${code})`);
  return figures;
}

/** The child process: `clients` simulated clients; prints window-start, window-end, then its report as JSON. */
async function clientsMain(cfg: ClientsConfig): Promise<void> {
  const method = calling.service.VoIP!;
  const encode = method.requestSerialize as (req: ClientREQ) => Buffer;
  const identity = (b: Buffer): Buffer => b;
  let recording = false;
  const latencies: number[] = [];
  let sent = 0;
  let received = 0;
  let ended = 0;
  const chunk = Buffer.alloc(Math.max(cfg.chunk, MAGIC.length + 8), 0x55);
  MAGIC.copy(chunk, 0);
  const streams = [];
  for (let i = 0; i < cfg.clients; i++) {
    // One channel each, as separate machines would have (grpc-js would otherwise share one connection).
    const client = new grpc.Client(cfg.address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    const md = new grpc.Metadata();
    md.set('passcode', PASSCODE);
    if (cfg.roomSize > 0) md.set('room', `room-${Math.floor(i / cfg.roomSize)}`);
    const call = client.makeBidiStreamRequest(VOIP_PATH, identity, identity, md);
    let echoed = false;
    const ready = new Promise<void>((resolve, reject) => {
      call.on('data', (res: Buffer) => {
        if (!echoed) {
          echoed = true;
          resolve();
          return;
        }
        const at = res.indexOf(MAGIC);
        if (at < 0 || !recording) return;
        received += 1;
        latencies.push(performance.now() - res.readDoubleLE(at + MAGIC.length));
      });
      call.on('error', (err) => {
        ended += 1;
        if (!echoed) reject(err);
      });
    });
    call.write(encode({ signal: {} }));
    streams.push({ client, call, ready, name: `client-${i}`, seq: 0 });
  }
  await Promise.all(streams.map((s) => s.ready));
  const period = 1000 / cfg.fps;
  const timers = streams.map((s, i) => {
    const send = (): void => {
      chunk.writeDoubleLE(performance.now(), MAGIC.length);
      s.call.write(encode({ message: { chunk, name: s.name, seq: ++s.seq } }));
      if (recording) sent += 1;
    };
    // Spread the clients over the period, as independent speakers would be.
    let timer: NodeJS.Timeout | undefined;
    const start = setTimeout(() => (timer = setInterval(send, period)), (period * i) / cfg.clients);
    return () => {
      clearTimeout(start);
      clearInterval(timer);
    };
  });
  await new Promise((r) => setTimeout(r, cfg.warmup * 1000));
  recording = true;
  const cpu0 = process.cpuUsage();
  process.stdout.write('window-start\n');
  await new Promise((r) => setTimeout(r, cfg.seconds * 1000));
  recording = false;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write('window-end\n');
  for (const stop of timers) stop();
  const report: ClientsReport = { latencies, sent, received, ended, cpuMs: (cpu.user + cpu.system) / 1000 };
  process.stdout.write(JSON.stringify(report) + '\n');
  for (const s of streams) {
    s.call.cancel();
    s.client.close();
  }
}

export async function run(options: BenchOptions): Promise<void> {
  const counts = listOption(options, 'clients', [10, 50, 100]);
  const base = {
    fps: numberOption(options, 'fps', 50),
    chunk: numberOption(options, 'chunk', 80),
    warmup: numberOption(options, 'warmup', 1),
    seconds: numberOption(options, 'seconds', 5),
    roomSize: numberOption(options, 'room-size', 0),
  };
  // The seed's design has no rooms: with rooms, there is nothing like it to compare with.
  const baseline = booleanOption(options, 'baseline', true) && base.roomSize === 0;
  let largest = 0;
  let largestCores = NaN;
  for (const clients of counts) {
    const subjects: Array<['relay' | 'naive', () => Promise<Subject>]> = [['relay', () => startRelay(clients)]];
    if (baseline) subjects.push(['naive', startNaive]);
    for (const [server, start] of subjects) {
      console.error(`[voice] ${server}: ${clients} clients, ${base.seconds} s (load ${loadavg()[0]!.toFixed(1)})`);
      const subject = await start();
      try {
        const figures = await measure(subject, { ...base, clients });
        emit({ bench: 'voice', server, clients, ...base, ...figures, load: sig(loadavg()[0]!) });
        if (server === 'relay' && figures.p99Ms! < 20 && clients > largest) {
          largest = clients;
          largestCores = figures.serverCores!;
        }
      } finally {
        await subject.close();
      }
    }
  }
  emit({ bench: 'voice', summary: true, largestClientsP99Under20Ms: largest, serverCoresThere: largestCores, tried: counts });
}

if (process.env.VOICE_BENCH_ROLE === 'clients') {
  await clientsMain(JSON.parse(process.env.VOICE_BENCH_CONFIG!) as ClientsConfig);
}
