/**
 * The relay's Prometheus metrics. Counters and gauges go through the signaling server's registry
 * (packages/server/src/metrics.ts); it has no histograms, so the forwarding latency histogram is rendered
 * here in the same text format and appended.
 * @module
 */
import { MetricsRegistry } from '@raftrtc/server/metrics';
import type { Relay, RelayCounters } from './relay.js';

/** Upper bounds (seconds) of the latency buckets: sub-millisecond to a second, where voice is long useless. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** A cumulative Prometheus histogram over fixed buckets. */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private total = 0;

  constructor(readonly name: string, readonly help: string, readonly bounds: readonly number[] = LATENCY_BUCKETS_SECONDS) {
    this.counts = new Array<number>(bounds.length).fill(0);
  }

  /** Records one observation (in the histogram's unit). */
  observe(value: number): void {
    this.sum += value;
    this.total += 1;
    const i = this.bounds.findIndex((b) => value <= b);
    if (i >= 0) this.counts[i]! += 1;
  }

  /** Observations so far. */
  get count(): number {
    return this.total;
  }

  /** The text exposition (buckets cumulative, then `+Inf`, sum and count). */
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    let cumulative = 0;
    this.bounds.forEach((b, i) => {
      cumulative += this.counts[i]!;
      lines.push(`${this.name}_bucket{le="${b}"} ${cumulative}`);
    });
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.total}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.total}`);
    return lines.join('\n') + '\n';
  }
}

type CounterKey = Exclude<keyof RelayCounters, 'left'>;

/** The relay's metrics: render with {@link RelayMetrics.render}. */
export interface RelayMetrics {
  /** Records one forwarding latency, in milliseconds. */
  observeLatency(ms: number): void;
  /** Counts a refused call, by gRPC status name. */
  refused(code: string): void;
  /** The whole text exposition. */
  render(): string;
}

/** Metrics over `relay`; its counters are read at every scrape, so the relay keeps the only copy. */
export function createRelayMetrics(relay: () => Relay<unknown>): RelayMetrics {
  const registry = new MetricsRegistry();
  const latency = new Histogram('raftrtc_voice_forward_latency_seconds', 'Time from a frame reaching the server to its hand-over to a recipient stream.');
  registry.gauge('raftrtc_voice_clients', 'Clients connected (slots in use).', () => relay().size);
  registry.gauge('raftrtc_voice_rooms', 'Rooms with at least one client.', () => relay().roomCount);
  const counters: Array<[CounterKey, string, string]> = [
    ['framesIn', 'raftrtc_voice_frames_received_total', 'Voice frames accepted from clients.'],
    ['framesOut', 'raftrtc_voice_frames_sent_total', 'Frames (voice and signal echoes) handed to client streams.'],
    ['framesDropped', 'raftrtc_voice_frames_dropped_total', 'Frames dropped: oldest from a full client queue, or queued for a client that left.'],
    ['malformed', 'raftrtc_voice_malformed_total', 'Requests dropped as malformed (undecodable, empty, chunk too large, bad name).'],
    ['rateLimited', 'raftrtc_voice_frames_rate_limited_total', 'Voice frames dropped because their sender went over the per-client frame rate.'],
    ['signals', 'raftrtc_voice_signals_total', 'Connection-test signals echoed.'],
    ['admitted', 'raftrtc_voice_clients_admitted_total', 'Clients admitted.'],
  ];
  // The registry's counters only add, so each scrape adds what the relay counted since the last one.
  const exported = new Map<string, number>();
  const sync = (): void => {
    const r = relay();
    for (const [key, name, help] of counters) {
      const add = registry.counter(name, help);
      const delta = r.counters[key] - (exported.get(key) ?? 0);
      if (delta > 0) add({}, delta);
      exported.set(key, r.counters[key]);
    }
    const left = registry.counter('raftrtc_voice_clients_left_total', 'Clients gone, by reason (ended, cancelled, error, closed; stalled, malformed, shutdown: by the server).');
    for (const [reason, n] of Object.entries(r.counters.left)) {
      const delta = n - (exported.get(`left.${reason}`) ?? 0);
      if (delta > 0) left({ reason }, delta);
      exported.set(`left.${reason}`, n);
    }
  };
  const refusals = registry.counter('raftrtc_voice_refused_total', 'Calls refused, by gRPC status (UNAUTHENTICATED, RESOURCE_EXHAUSTED, INVALID_ARGUMENT, UNAVAILABLE).');
  sync();
  return {
    observeLatency: (ms) => latency.observe(ms / 1000),
    refused: (code) => refusals({ code }),
    render: () => {
      sync();
      return registry.render() + latency.render();
    },
  };
}
