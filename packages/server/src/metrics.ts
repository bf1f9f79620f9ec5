/**
 * Prometheus metrics in the text exposition format (version 0.0.4), without a client library: a few counters
 * and gauges, some with labels.
 * @module
 */

type Labels = Record<string, string>;

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly values: Map<string, { labels: Labels; value: number }>;
}

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** A registry of metric families. */
export class MetricsRegistry {
  private readonly families = new Map<string, Family>();
  private readonly collectors: Array<() => void> = [];

  private family(name: string, help: string, type: Family['type']): Family {
    let f = this.families.get(name);
    if (!f) {
      f = { name, help, type, values: new Map() };
      this.families.set(name, f);
    }
    return f;
  }

  /** Declares a counter; returns a function adding to it. */
  counter(name: string, help: string): (labels?: Labels, by?: number) => void {
    const f = this.family(name, help, 'counter');
    return (labels = {}, by = 1) => {
      const key = labelKey(labels);
      const cur = f.values.get(key);
      if (cur) cur.value += by;
      else f.values.set(key, { labels, value: by });
    };
  }

  /** Declares a gauge whose value is read by `read` at every scrape. */
  gauge(name: string, help: string, read: () => number): void {
    const f = this.family(name, help, 'gauge');
    this.collectors.push(() => f.values.set('', { labels: {}, value: read() }));
  }

  /** The text exposition of every family. */
  render(): string {
    for (const collect of this.collectors) collect();
    const lines: string[] = [];
    for (const f of this.families.values()) {
      lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
      // A counter never incremented still shows, at 0, so dashboards and alerts see it from the start.
      if (f.values.size === 0) lines.push(`${f.name} 0`);
      for (const { labels, value } of f.values.values()) {
        const keys = Object.keys(labels).sort();
        const l = keys.length ? `{${keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',')}}` : '';
        lines.push(`${f.name}${l} ${value}`);
      }
    }
    return lines.join('\n') + '\n';
  }
}

/** The counters the server updates; gauges are registered by the server where their state lives. */
export interface ServerMetrics {
  readonly registry: MetricsRegistry;
  readonly connectionsAccepted: (labels?: Labels, by?: number) => void;
  readonly commands: (labels: { method: string }, by?: number) => void;
  readonly publicationsIn: (labels?: Labels, by?: number) => void;
  readonly publicationsOut: (labels?: Labels, by?: number) => void;
  readonly refusals: (labels: { kind: 'error' | 'http'; code: string }, by?: number) => void;
  readonly disconnects: (labels: { code: string }, by?: number) => void;
  readonly bytesIn: (labels?: Labels, by?: number) => void;
  readonly bytesOut: (labels?: Labels, by?: number) => void;
  readonly httpRequests: (labels: { status: string }, by?: number) => void;
}

/** Creates the registry and the server's counters. */
export function createServerMetrics(): ServerMetrics {
  const registry = new MetricsRegistry();
  return {
    registry,
    connectionsAccepted: registry.counter('raftrtc_signaling_connections_accepted_total', 'WebSocket connections accepted.'),
    commands: registry.counter('raftrtc_signaling_commands_total', 'Client protocol commands received, by method.'),
    publicationsIn: registry.counter('raftrtc_signaling_publications_received_total', 'Publications accepted from clients.'),
    publicationsOut: registry.counter('raftrtc_signaling_publications_delivered_total', 'Publications delivered to subscribers.'),
    refusals: registry.counter('raftrtc_refusals_total', 'Refused requests: reply errors (kind="error", Centrifugo error codes) and HTTP API errors (kind="http", API error codes).'),
    disconnects: registry.counter('raftrtc_signaling_disconnects_total', 'Connections closed by the server, by Centrifugo disconnect code (1009: frame over the size limit).'),
    bytesIn: registry.counter('raftrtc_signaling_received_bytes_total', 'Bytes of WebSocket frames received.'),
    bytesOut: registry.counter('raftrtc_signaling_sent_bytes_total', 'Bytes of WebSocket frames sent.'),
    httpRequests: registry.counter('raftrtc_http_api_requests_total', 'HTTP API requests, by status code.'),
  };
}
