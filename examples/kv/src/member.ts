/**
 * One kv member: a {@link RaftNode} over {@link FileStorage} and {@link TcpTransport}, the {@link KvStore}
 * state machine and the HTTP API. Used by the CLI (`main.ts`) and, in-process, by the tests.
 * @module
 */
import { RaftNode } from '@raftrtc/raft';
import { FileStorage, TcpTransport, type TcpAddress } from '@raftrtc/raft-node';
import { KvApi, type KvLog } from './http-api.js';
import { KvStore, type KvCommand, type KvQuery, type KvQueryResult, type KvResult } from './store.js';

export interface KvMemberOptions {
  id: string;
  /** Raft addresses of the initial members, this one included (its entry is where it listens). */
  peers: Record<string, TcpAddress>;
  /** Where Raft listens; default `peers[id]`. Port 0 picks a free port (tests). */
  raftListen?: TcpAddress;
  /** Where the HTTP API listens. */
  httpListen: TcpAddress;
  dataDir: string;
  secret: string;
  /** Voters of a new cluster; default every id in `peers`. Empty: join an existing cluster (wait to be added). */
  voters?: string[];
  tickMs?: number;
  electionTicks?: number;
  /** Compact the log every this many applied entries (RaftNode's default 10 000); small in tests to exercise snapshots. */
  snapshotEvery?: number;
  fsync?: boolean;
  /** RaftNode's `parallelWrite` (default true): the leader's fsync overlaps replication. */
  parallelWrite?: boolean;
  maxBodyBytes?: number;
  log?: KvLog;
}

export const formatAddress = (a: TcpAddress): string => `${a.host}:${a.port}`;

/** `host:port` → address; throws a TypeError naming the bad text. */
export function parseHostPort(text: string): TcpAddress {
  const m = /^(.+):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new TypeError(`"${text}" is not a host:port address`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

export class KvMember {
  readonly id: string;
  readonly node: RaftNode<KvCommand, KvResult, KvQuery, KvQueryResult>;
  readonly transport: TcpTransport;
  readonly store: KvStore;
  readonly api: KvApi;
  private readonly options: KvMemberOptions;
  private httpAddress: TcpAddress | null = null;
  private announcing = false;
  private stopped = false;

  constructor(options: KvMemberOptions) {
    this.options = options;
    this.id = options.id;
    const log = options.log ?? (() => {});
    const listen = options.raftListen ?? options.peers[options.id];
    if (!listen) throw new TypeError(`--peers has no address for this member (${options.id})`);
    const peers = Object.fromEntries(Object.entries(options.peers).filter(([id]) => id !== options.id));
    this.transport = new TcpTransport({ id: options.id, listen, peers, secret: options.secret, log });
    // Addresses replicated through the log (members added at run time) reach every member's transport.
    this.store = new KvStore((addresses) => {
      for (const [id, text] of Object.entries(addresses)) {
        if (id === this.id) continue;
        try {
          this.transport.addPeer(id, parseHostPort(text));
        } catch (err) {
          log('kv.bad-address', { id, address: text, error: (err as Error).message });
        }
      }
    });
    this.node = new RaftNode({
      id: options.id,
      voters: options.voters ?? Object.keys(options.peers),
      storage: new FileStorage(options.dataDir, { fsync: options.fsync ?? true }),
      transport: this.transport,
      stateMachine: this.store,
      ...(options.tickMs !== undefined ? { tickMs: options.tickMs } : {}),
      ...(options.electionTicks !== undefined ? { electionTicks: options.electionTicks } : {}),
      ...(options.snapshotEvery !== undefined ? { snapshotEvery: options.snapshotEvery } : {}),
      ...(options.parallelWrite !== undefined ? { parallelWrite: options.parallelWrite } : {}),
    });
    this.node.on('error', (err) => log('kv.node-error', { id: this.id, error: err instanceof Error ? err.message : String(err) }));
    this.node.on('state changed', (role, leader, term) => { log('kv.state', { id: this.id, role, leader, term }); this.announce(); });
    this.node.on('updated', () => this.announce());
    this.api = new KvApi({
      node: this.node,
      store: this.store,
      log,
      staticAddresses: Object.fromEntries(Object.entries(options.peers).map(([id, a]) => [id, formatAddress(a)])),
      ...(options.maxBodyBytes !== undefined ? { maxBodyBytes: options.maxBodyBytes } : {}),
    });
  }

  /** Starts Raft, then the HTTP API. */
  async start(): Promise<void> {
    await this.node.start();
    const a = await this.api.listen(this.options.httpListen.host, this.options.httpListen.port);
    this.httpAddress = { host: a.address, port: a.port };
    this.announce();
  }

  /**
   * Replicates this member's HTTP address (once per change of address, e.g. a restart on another port), so
   * every member can name the leader's API in its 503 hints and in `GET /cluster`. Retried on the next
   * applied Ready or leader change until this node sees it applied.
   */
  private announce(): void {
    if (this.announcing || this.stopped || !this.httpAddress || this.node.leader === null) return;
    const mine = formatAddress(this.httpAddress);
    if (this.store.httpAddress(this.id) === mine) return;
    this.announcing = true;
    this.node.propose({ op: 'member-http', id: this.id, http: mine })
      .catch(() => {}) // no leader or stopped: the next event retries
      .finally(() => { this.announcing = false; });
  }

  /** The HTTP API's address (the chosen port when it was 0). */
  get http(): TcpAddress {
    if (!this.httpAddress) throw new Error('the member has not started');
    return this.httpAddress;
  }

  /** The Raft address actually listened on. */
  get raft(): TcpAddress { return this.transport.address(); }

  /** Stops HTTP first (no new requests), then the node, which closes transport and storage. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.api.close();
    await this.node.stop();
  }
}
