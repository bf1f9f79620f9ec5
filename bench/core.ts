/**
 * `npm run bench -- core`: RaftCore throughput with 3 and 5 nodes in one process, messages passed through an
 * in-memory FIFO queue, 128-byte proposals, and a closed loop keeping 1, 64 or 1024 proposals outstanding
 * (a proposal is done when the leader applies it). Prints one JSON line per configuration.
 *
 * Options: `--nodes=3,5 --outstanding=1,64,1024 --seconds=2.5 --warmup=0.5 --alloc-entries=N
 * --alloc-sites=0 --baseline=true --pretenuring=false --isolate=true`. Allocation is sampled over `--alloc-entries` entries (default: two
 * compaction periods; 0 skips it); `--alloc-sites=N` also prints the top N allocating functions;
 * `--baseline=false` leaves the baseline out, so that a CPU profile shows the core alone. Each configuration
 * runs in its own process unless `--isolate=false` (see `runIsolated`).
 *
 * Baseline: the per-entry work no replicated log can avoid, in the same process: allocate the entry object,
 * store it in one log per node (the same {@link EntryStore} the cluster persists to), count it as applied.
 * `ratio` is RaftCore throughput over the baseline's: the median over interleaved slice pairs.
 *
 * `bytesPerEntry` is heap allocated per applied entry by the whole loop, this harness included; the harness's
 * own share (the entry's payload is preallocated; storage keeps references) is about what the baseline does,
 * so the excess over `baselineBytesPerEntry` is roughly what the core adds.
 * @module
 */
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { RaftCore, type Entry, type HardState, type Message, type Ready } from '../packages/raft/src/index.js';
import { Rng } from '../packages/raft/src/testing/index.js';
import { EntryStore } from './lib/entry-store.js';
import {
  booleanOption, emit, interleave, listOption, numberOption, runIsolated, sampleAllocations, sig,
  type AllocationSite, type BenchOptions, type Runner,
} from './lib/measure.js';

// The bench imports the package's source rather than `@raftrtc/raft`, whose `dist` is only rebuilt on a fresh
// install: a bench of a stale build would measure code nobody is changing.

const PAYLOAD_BYTES = 128;
/** Nodes compact their log every this many applied entries, as a real deployment must to bound memory. */
const COMPACT_EVERY = 1 << 16;
/** Entries kept behind the applied index at compaction, far more than followers ever lag here, so no
 * follower needs a snapshot. */
const COMPACT_KEEP = 1 << 13;

/** Distinct 128-byte strings, made once: the proposals' content is the application's cost, not Raft's. */
function makePayloads(count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(`${i}:`.padEnd(PAYLOAD_BYTES, String.fromCharCode(97 + (i % 26))));
  return out;
}
const PAYLOADS = makePayloads(1024);
const PAYLOAD_MASK = PAYLOADS.length - 1;

/** A fixed seed makes the election, and so the whole run, replay exactly. */
function seededRandom(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

/** One node: the core, its array-backed "durable" storage, and a state machine that counts entries. */
class BenchNode {
  readonly core: RaftCore;
  role: Ready['role'] = 'follower';
  hardState: HardState | null = null;
  readonly stored = new EntryStore();
  appliedIndex = 0;
  /** The state machine: how many non-empty normal entries were applied. */
  appliedCount = 0;
  snapshotsInstalled = 0;

  constructor(readonly id: string, voters: string[], seed: number) {
    this.core = new RaftCore({ id, voters, random: seededRandom(seed) });
  }
}

/** The nodes and the FIFO between them. Messages are immutable by contract, so they travel by reference. */
class Cluster {
  readonly nodes: BenchNode[];
  private readonly byId = new Map<string, BenchNode>();
  // Two arrays swapped each round and never truncated: `length = 0` drops the backing store, and regrowing
  // it every round would be harness allocation charged to the core.
  private queue: (Message | undefined)[] = [];
  private queued = 0;
  private spare: (Message | undefined)[] = [];
  private leader: BenchNode | null = null;
  private proposed = 0;

  constructor(size: number, seed: number) {
    const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    this.nodes = ids.map((id, i) => new BenchNode(id, ids, seed * 31 + i));
    for (const n of this.nodes) this.byId.set(n.id, n);
  }

  /** Ticks everyone until a leader has committed its term's first entry and every node has applied it. */
  elect(): void {
    for (let round = 0; round < 10_000; round++) {
      for (const n of this.nodes) n.core.tick();
      this.handleReadies();
      this.deliver();
      const leader = this.nodes.find((n) => n.role === 'leader');
      if (leader) {
        const last = leader.core.status().lastIndex;
        if (this.nodes.every((n) => n.appliedIndex >= last)) {
          this.leader = leader;
          this.proposed = leader.appliedCount;
          return;
        }
      }
    }
    throw new Error('no leader elected');
  }

  /**
   * One round: refill the leader's proposals, let every node handle its Ready, deliver the queue. A real
   * node's loop does the same: take in a batch of messages and client requests, then handle one Ready.
   * Ticks are left out: at a realistic 10 per second they cost nothing next to a million entries.
   */
  closedLoop(outstanding: number): Runner {
    if (!this.leader) throw new Error('elect() first');
    const leader: BenchNode = this.leader;
    const cluster = this;
    // performance.now() costs microseconds on some sandboxes: look at the clock about every 16K entries.
    const checkEvery = Math.max(1, Math.ceil(16384 / outstanding));
    // A declaration, not an arrow: tsx's keepNames wrapper hides an arrow's name from profiles.
    function closedLoopRun(deadline: number): number {
      const start = leader.appliedCount;
      const core = leader.core;
      for (let rounds = 1; ; rounds++) {
        while (cluster.proposed - leader.appliedCount < outstanding) {
          core.propose(PAYLOADS[cluster.proposed & PAYLOAD_MASK]);
          cluster.proposed++;
        }
        cluster.handleReadies();
        cluster.deliver();
        if (rounds % checkEvery === 0 && performance.now() >= deadline) break;
      }
      if (leader.role !== 'leader') throw new Error('leadership changed during the closed loop');
      return leader.appliedCount - start;
    }
    return closedLoopRun;
  }

  /** Runs the closed loop until the leader has applied at least `entries` more; returns how many it applied. */
  runEntries(outstanding: number, entries: number): number {
    const loop = this.closedLoop(outstanding);
    let done = 0;
    while (done < entries) done += loop(0);
    return done;
  }

  /**
   * Lets the cluster go quiet with no new proposals, then checks that every node applied the same entries:
   * a bench that quietly stopped replicating would report nonsense.
   */
  settleAndCheck(): void {
    for (let round = 0; this.queued > 0 || this.nodes.some((n) => n.core.hasReady()); round++) {
      if (round > 1000) throw new Error('the cluster does not go quiet');
      this.handleReadies();
      this.deliver();
    }
    const leader = this.leader!;
    for (const n of this.nodes) {
      if (n.appliedIndex !== leader.appliedIndex || n.appliedCount !== leader.appliedCount) {
        throw new Error(`${n.id} applied ${n.appliedCount} entries up to ${n.appliedIndex}; leader ${leader.appliedCount} up to ${leader.appliedIndex}`);
      }
    }
    if (leader.appliedCount !== this.proposed) throw new Error(`leader applied ${leader.appliedCount} of ${this.proposed} proposals`);
  }

  private deliver(): void {
    const batch = this.queue;
    const count = this.queued;
    this.queue = this.spare;
    this.queued = 0;
    this.spare = batch;
    for (let i = 0; i < count; i++) {
      const m = batch[i]!;
      // Cleared so that delivered Appends (and their entry arrays) can die young.
      batch[i] = undefined;
      this.byId.get(m.to)?.core.step(m);
    }
  }

  private handleReadies(): void {
    for (const n of this.nodes) if (n.core.hasReady()) this.handleReady(n);
  }

  /** The contract's order: persist, restore, apply, send, advance. */
  private handleReady(n: BenchNode): void {
    const rd = n.core.ready();
    n.role = rd.role;
    if (rd.hardState) n.hardState = rd.hardState;
    if (rd.snapshot) {
      n.stored.restore(rd.snapshot.index);
      n.appliedIndex = rd.snapshot.index;
      n.appliedCount = rd.snapshot.data as number;
      n.snapshotsInstalled++;
    }
    n.stored.write(rd.entries);
    const committed = rd.committed;
    if (committed.length > 0) {
      let count = n.appliedCount;
      for (let i = 0; i < committed.length; i++) {
        const e = committed[i];
        if (e.type === 'normal' && e.data !== null) count++;
      }
      n.appliedCount = count;
      n.appliedIndex = committed[committed.length - 1].index;
    }
    const msgs = rd.messages;
    for (let i = 0; i < msgs.length; i++) this.queue[this.queued++] = msgs[i];
    n.core.advance();

    if (n.appliedIndex - n.stored.first >= COMPACT_EVERY + COMPACT_KEEP) {
      const at = n.appliedIndex - COMPACT_KEEP;
      // The state machine's state as of `at` is not kept; the count at appliedIndex is close enough for a
      // snapshot that, by construction, no follower ever needs.
      n.core.compact(at, n.appliedCount);
      n.stored.compactTo(at);
    }
  }
}

/** The minimum per-entry work, shaped like the cluster's: nodes' logs compacted on the same schedule. */
function baselineLoop(nodes: number): Runner {
  const logs = Array.from({ length: nodes }, () => new EntryStore());
  let index = 0;
  let applied = 0;
  function baselineRun(deadline: number): number {
    const start = applied;
    do {
      for (let k = 0; k < 1024; k++) {
        index++;
        const e: Entry = { index, term: 2, type: 'normal', data: PAYLOADS[index & PAYLOAD_MASK] };
        for (let j = 0; j < logs.length; j++) logs[j].append(e);
        if (e.data !== null) applied++;
      }
      if (index - logs[0].first >= COMPACT_EVERY + COMPACT_KEEP) {
        for (let j = 0; j < logs.length; j++) logs[j].compactTo(index - COMPACT_KEEP);
      }
    } while ((index & 16383) !== 0 || performance.now() < deadline);
    return applied - start;
  }
  return baselineRun;
}

export async function run(options: BenchOptions): Promise<void> {
  const sizes = listOption(options, 'nodes', [3, 5]);
  const outstandings = listOption(options, 'outstanding', [1, 64, 1024]);
  const seconds = numberOption(options, 'seconds', 2.5);
  const warmup = numberOption(options, 'warmup', 0.5);
  const allocEntriesOption = options['alloc-entries'] === undefined ? null : numberOption(options, 'alloc-entries', 0);
  const allocSites = numberOption(options, 'alloc-sites', 0);
  const withBaseline = booleanOption(options, 'baseline', true);
  if (sizes.length * outstandings.length > 1 && booleanOption(options, 'isolate', true)) {
    for (const nodes of sizes) {
      for (const outstanding of outstandings) runIsolated('core', { ...options, nodes: `${nodes}`, outstanding: `${outstanding}` });
    }
    return;
  }
  if (!booleanOption(options, 'pretenuring', false)) {
    // Entries here live about one compaction period, right where V8's allocation-site pretenuring may or may
    // not start allocating them in old space; each process picks one way, for the core and the baseline
    // separately, and throughput differs up to 2x between the two, so ratios came out bimodal. Without
    // pretenuring, runs agree within a few percent. `--pretenuring=true` measures V8's default.
    setFlagsFromString('--no-allocation-site-pretenuring');
  }

  for (const nodes of sizes) {
    for (const outstanding of outstandings) {
      const cluster = new Cluster(nodes, 1);
      cluster.elect();
      const subject = cluster.closedLoop(outstanding);
      const baseline = withBaseline ? baselineLoop(nodes) : null;
      if (warmup > 0) interleave(subject, baseline, warmup);
      const r = interleave(subject, baseline, seconds);

      const record: Record<string, unknown> = {
        bench: 'core', nodes, outstanding, payloadBytes: PAYLOAD_BYTES,
        entriesPerSec: Math.round(r.subjectPerSec),
      };
      if (baseline) {
        record.baselinePerSec = Math.round(r.baselinePerSec);
        record.ratio = sig(r.ratio);
      }
      record.gcShare = sig(r.subjectGcShare, 2);
      let sites: AllocationSite[] = [];
      // Compactions allocate in bursts: a whole number of compaction periods gives every run the same count.
      const allocEntries = allocEntriesOption ?? 2 * COMPACT_EVERY;
      if (allocEntries > 0) {
        const a = await sampleAllocations(() => cluster.runEntries(outstanding, allocEntries), 2048);
        record.bytesPerEntry = sig(a.bytes / a.units);
        if (baseline) {
          const b = await sampleAllocations(() => baseline(performance.now() + 100));
          record.baselineBytesPerEntry = sig(b.bytes / b.units);
        }
        sites = a.sites.map((s) => ({ ...s, bytes: s.bytes / a.units }));
      }
      cluster.settleAndCheck();
      const stray = cluster.nodes.reduce((s, n) => s + n.snapshotsInstalled, 0);
      if (stray > 0) console.error(`[core] warning: ${stray} snapshots installed; the figures include snapshot transfer`);
      emit(record);
      for (const s of sites.slice(0, allocSites)) {
        emit({ bench: 'core', nodes, outstanding, allocSite: s.fn, bytesPerEntry: sig(s.bytes) });
      }
    }
  }
}
