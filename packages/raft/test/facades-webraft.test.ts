/**
 * webraft's README example, run in-process: `FooRaft` / `FooRaftNode` subclasses wired through an in-memory
 * stand-in for the README's `GenericSocket`, on fake timers (every wait bounded in ticks).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from '../src/node/memory-storage.js';
import { NodeInstance, RaftInterface, WebRaftPayloadError, type RaftInterfaceOptions, type WebRaftEntry } from '../src/facades/webraft.js';
import { FakeTimers } from './helpers/fake-timers.js';
import { settle, until } from './helpers/node-cluster.js';

/** The README's `GenericSocket`, between in-process peers: text in, text out, asynchronously. */
class Hub {
  readonly sockets = new Map<string, GenericSocket>();
  /** Messages delivered, to check the traffic really went through the sockets. */
  delivered = 0;
}

class GenericSocket {
  private readonly handlers = new Map<string, ((arg?: unknown) => void)[]>();
  constructor(readonly hub: Hub, readonly local: string, readonly remote: string) {
    hub.sockets.set(`${local}>${remote}`, this);
  }
  on(event: 'message' | 'close', fn: (arg?: unknown) => void): void {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), fn]);
  }
  write(text: string): void {
    queueMicrotask(() => {
      const peer = this.hub.sockets.get(`${this.remote}>${this.local}`);
      if (!peer) return; // the peer has no connection to us (yet): lost, as on a real network
      this.hub.delivered++;
      for (const fn of peer.handlers.get('message') ?? []) fn(text);
    });
  }
  close(): void {
    this.hub.sockets.delete(`${this.local}>${this.remote}`);
    for (const fn of this.handlers.get('close') ?? []) fn();
  }
}

type Command = Record<string, string>;

// ---- The README's classes, as written there (only the socket is the stand-in) ----------------------------

class FooRaftNode extends NodeInstance {
  socket: GenericSocket;
  constructor(address: string, raft: FooRaft) {
    super(address, raft);
    this.socket = new GenericSocket(raft.hub, raft.address, address);
    this.socket.on('message', (payload) => this.gotData(JSON.parse(payload as string)));
    this.socket.on('close', () => this.raft.leave(this.address));
  }
  write(payload: unknown): void {
    this.socket.write(JSON.stringify(payload));
  }
  override close(): void {
    this.socket.close();
  }
}

/** The app's persistence layer: what the README keeps in localStorage. */
interface Persisted { data: Command; term: number; index: number }

class FooRaft extends RaftInterface<Command> {
  readonly persisted: Persisted;
  applies: number[] = [];
  updates: number[] = [];
  refreshes: number[] = [];

  constructor(address: string, readonly hub: Hub, persisted: Persisted, options: RaftInterfaceOptions) {
    super(address, { ...options, appliedIndex: persisted.index });
    this.persisted = persisted;
    // The README's `MyGreatRaftInterface`: apply each command to the stored state, then call back.
    this.listen('apply', (entry: WebRaftEntry<Command>, index: number, cb) => {
      this.applies.push(index);
      // The callback comes later, as after a real write: the next entry must wait for it.
      void Promise.resolve().then(() => {
        Object.assign(this.persisted.data, entry.command);
        this.persisted.term = entry.term;
        this.persisted.index = index;
        cb();
      });
    });
    this.listen('refresh', (cb, state, index) => {
      this.refreshes.push(index);
      this.persisted.data = { ...(state as Command) };
      this.persisted.index = index;
      cb(this.persisted.term, index);
    });
    this.listen('updated', (index) => this.updates.push(index));
  }

  createInstance(address: string): NodeInstance {
    return new FooRaftNode(address, this);
  }

  // The README's timing getters: 10 ms heartbeats, 100 ms heartbeat timeout (10 ticks).
  override get heartbeatFrequency(): number { return 10; }
  override get heartbeatTimeout(): number { return 100; }
  override getSnapshot(): unknown { return { ...this.persisted.data }; }
}

const ADDRS = ['a', 'b', 'c'];

class Cluster {
  readonly hub = new Hub();
  readonly clock = new FakeTimers();
  readonly rafts = new Map<string, FooRaft>();
  readonly disks = new Map<string, MemoryStorage>();
  readonly stores = new Map<string, Persisted>();

  constructor(readonly extra: RaftInterfaceOptions = {}) {}

  /** Starts (or restarts, from its Raft storage and its app store) one member, joining the others. */
  open(address: string): FooRaft {
    const prev = this.disks.get(address);
    const storage = prev ? prev.reopen() : new MemoryStorage();
    this.disks.set(address, storage);
    if (!this.stores.has(address)) this.stores.set(address, { data: {}, term: 0, index: 0 });
    const i = ADDRS.indexOf(address);
    const raft = new FooRaft(address, this.hub, this.stores.get(address)!, {
      storage, timers: this.clock, random: () => (i + 0.5) / (ADDRS.length + 1), ...this.extra,
    });
    this.rafts.set(address, raft);
    for (const peer of ADDRS) raft.join(peer);
    return raft;
  }

  leader(): FooRaft | null {
    const rafts = [...this.rafts.values()];
    const leaders = rafts.filter((r) => r.raftNode?.isLeader);
    if (leaders.length !== 1) return null;
    return rafts.every((r) => r.raftNode?.leader === leaders[0]!.address) ? leaders[0]! : null;
  }

  async close(address: string): Promise<void> {
    const raft = this.rafts.get(address)!;
    this.rafts.delete(address);
    await raft.stop();
    for (const key of [...this.hub.sockets.keys()]) if (key.startsWith(`${address}>`)) this.hub.sockets.delete(key);
  }

  async closeAll(): Promise<void> {
    for (const a of [...this.rafts.keys()]) await this.close(a);
    assert.equal(this.clock.pending, 0, 'stop() leaves no timer behind');
  }
}

describe('webraft facade: the README example', () => {
  it('elects a leader, and a proposal reaches every member through apply and updated', async () => {
    const c = new Cluster();
    const events: string[] = [];
    try {
      for (const a of ADDRS) {
        const r = c.open(a);
        for (const ev of ['leader', 'candidate', 'follower', 'start election', 'heartbeat timeout', 'state changed'] as const) {
          r.listen(ev, () => events.push(`${a}:${ev}`));
        }
      }
      await until(c.clock, () => c.leader() !== null, 'a leader elected');
      const leader = c.leader()!;
      assert.ok(events.includes(`${leader.address}:leader`), `the leader emitted 'leader' (${events.join(', ')})`);
      assert.ok(events.includes(`${leader.address}:start election`), `the leader emitted 'start election' (${events.join(', ')})`);
      assert.ok(c.hub.delivered > 0, 'Raft traffic went through the NodeInstance sockets');

      // The README: `instance.propose({key: 'value'}).then(() => alert('Committed!'))`, here on a follower.
      const follower = [...c.rafts.values()].find((r) => r !== leader)!;
      const out = await settle(c.clock, follower.propose({ key: 'value' }), 'the proposal');
      assert.equal(out.error, undefined, `the proposal succeeded (${String(out.error)})`);
      const index = out.value!;
      assert.equal(c.stores.get(follower.address)!.data.key, 'value', 'the proposer had persisted the entry when propose resolved');
      await until(c.clock, () => ADDRS.every((a) => c.stores.get(a)!.data.key === 'value'), 'the entry on every member');
      for (const r of c.rafts.values()) {
        assert.ok(r.updates.includes(index), `${r.address} emitted updated for index ${index} (${r.updates.join(',')})`);
        assert.deepEqual(r.applies, [...r.applies].sort((x, y) => x - y), `${r.address} got its entries in order`);
      }
    } finally {
      await c.closeAll();
    }
  });

  it('restarts from the persisted data: no entry is applied twice, and the cluster goes on', async () => {
    const c = new Cluster();
    try {
      for (const a of ADDRS) c.open(a);
      await until(c.clock, () => c.leader() !== null, 'a leader elected');
      for (let i = 0; i < 5; i++) {
        const out = await settle(c.clock, c.leader()!.propose({ [`k${i}`]: `v${i}` }), `proposal ${i}`);
        assert.equal(out.error, undefined, `proposal ${i} succeeded (${String(out.error)})`);
      }
      await until(c.clock, () => ADDRS.every((a) => c.stores.get(a)!.data.k4 === 'v4'), 'the five entries everywhere');
      const before = new Map(ADDRS.map((a) => [a, c.stores.get(a)!.index]));
      for (const a of ADDRS) await c.close(a);

      for (const a of ADDRS) c.open(a);
      await until(c.clock, () => c.leader() !== null, 'a leader elected after the restart');
      const out = await settle(c.clock, c.leader()!.propose({ after: 'restart' }), 'a proposal after the restart');
      assert.equal(out.error, undefined, `the proposal after the restart succeeded (${String(out.error)})`);
      await until(c.clock, () => ADDRS.every((a) => c.stores.get(a)!.data.after === 'restart'), 'the new entry everywhere');
      for (const a of ADDRS) {
        const r = c.rafts.get(a)!;
        assert.ok(r.applies.every((i) => i > before.get(a)!), `${a} re-emitted no entry it had persisted (${r.applies.join(',')}, had ${before.get(a)})`);
        assert.equal(c.stores.get(a)!.data.k0, 'v0', `${a} kept its data across the restart`);
      }
    } finally {
      await c.closeAll();
    }
  });

  it('a member that missed a compaction gets a refresh with the leader snapshot', async () => {
    const c = new Cluster({ snapshotEvery: 3 });
    try {
      for (const a of ADDRS) c.open(a);
      await until(c.clock, () => c.leader() !== null, 'a leader elected');
      const lagging = [...c.rafts.values()].find((r) => r !== c.leader())!.address;
      await c.close(lagging);
      // Its app store is lost too: after the refresh it must hold everything again.
      c.stores.set(lagging, { data: {}, term: 0, index: 0 });
      c.disks.delete(lagging);
      for (let i = 0; i < 8; i++) {
        const out = await settle(c.clock, c.leader()!.propose({ [`k${i}`]: `v${i}` }), `proposal ${i}`);
        assert.equal(out.error, undefined, `proposal ${i} succeeded (${String(out.error)})`);
      }
      // A fresh node may not bootstrap a configuration of its own: it waits for the leader's log.
      const r = new FooRaft(lagging, c.hub, c.stores.get(lagging)!, { storage: new MemoryStorage(), timers: c.clock, voters: [] });
      c.rafts.set(lagging, r);
      for (const peer of ADDRS) r.join(peer);
      await until(c.clock, () => c.stores.get(lagging)!.data.k7 === 'v7', 'the lagging member caught up');
      assert.ok(r.refreshes.length > 0, 'the lagging member was refreshed from a snapshot');
      await until(c.clock, () => ADDRS.every((a) => c.stores.get(a)!.index === c.stores.get(c.leader()!.address)!.index), 'every member at the same index');
      const expected = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, `v${i}`]));
      // The apps' writes lag behind RaftNode's applies: a snapshot taken meanwhile must still lose nothing.
      assert.deepEqual(c.stores.get(lagging)!.data, expected, 'the refreshed member holds every entry');
    } finally {
      await c.closeAll();
    }
  });

  it('join and leave at run time change the configuration through the leader', async () => {
    const c = new Cluster();
    try {
      for (const a of ADDRS) c.open(a);
      await until(c.clock, () => c.leader() !== null, 'a leader elected');
      const joined: string[] = [];
      const left: string[] = [];
      for (const r of c.rafts.values()) { r.listen('join', (addr) => joined.push(`${r.address}:${addr}`)); r.listen('leave', (addr) => left.push(`${r.address}:${addr}`)); }
      // A new member waits to be added (no configuration of its own); every member connects to it.
      c.stores.set('d', { data: {}, term: 0, index: 0 });
      const d = new FooRaft('d', c.hub, c.stores.get('d')!, { storage: new MemoryStorage(), timers: c.clock, voters: [] });
      c.rafts.set('d', d);
      for (const peer of ADDRS) d.join(peer);
      for (const a of ADDRS) c.rafts.get(a)!.join('d');
      await until(c.clock, () => ADDRS.every((a) => joined.includes(`${a}:d`)), 'd added as a voter');
      const out = await settle(c.clock, d.propose({ from: 'd' }), 'a proposal from d');
      assert.equal(out.error, undefined, `d's proposal succeeded (${String(out.error)})`);
      await until(c.clock, () => ['a', 'b', 'c', 'd'].every((a) => c.stores.get(a)!.data.from === 'd'), "d's entry everywhere");

      for (const a of ADDRS) c.rafts.get(a)!.leave('d');
      // The configuration changes when the entry is appended; `leave` is emitted when it is applied.
      await until(c.clock, () => ADDRS.every((a) => left.includes(`${a}:d`)), 'every member saw d leave');
      assert.ok(!c.rafts.get('a')!.raftNode!.status().conf.voters.includes('d'), 'd is no longer a voter');
    } finally {
      await c.closeAll();
    }
  });

  it('an apply callback called with an error gets the same entry again; updated waits for success', async () => {
    const c = new Cluster();
    try {
      for (const a of ADDRS) c.open(a);
      await until(c.clock, () => c.leader() !== null, 'a leader elected');
      const leader = c.leader()!;
      const seen: number[] = [];
      const errors: unknown[] = [];
      let failures = 0;
      leader.listen('error', (e) => errors.push(e));
      // A second apply listener whose first write fails: the entry must not count as taken until it succeeds.
      leader.listen('apply', (_entry, index, cb) => {
        seen.push(index);
        if (failures++ === 0) cb(new Error('disk full'));
        else cb();
      });
      const updatesBefore = leader.updates.length;
      const out = await settle(c.clock, leader.propose({ retry: 'yes' }), 'the proposal');
      assert.equal(out.error, undefined, `the proposal succeeded (${String(out.error)})`);
      const index = out.value!;
      assert.deepEqual(seen.filter((i) => i === index).length, 2, `the entry was emitted twice (${seen.join(',')})`);
      assert.equal(leader.updates.filter((i) => i === index).length, 1, 'updated once, after the retry');
      assert.ok(leader.updates.length > updatesBefore, 'updated was emitted');
      assert.ok(errors.some((e) => e instanceof Error && e.message === 'disk full'), 'the failure was reported');

      // A failure that is pending its retry when the node stops: stop() clears that timer too (checked by closeAll).
      failures = 0;
      void leader.propose({ retry: 'again' }).catch(() => {});
      await until(c.clock, () => failures > 0, 'the second proposal reached the failing listener');
    } finally {
      await c.closeAll();
    }
  });

  it('drops a payload that is not a valid message from its sender, and unlisten works', async () => {
    const c = new Cluster();
    try {
      const r = c.open('a');
      const errors: unknown[] = [];
      const onError = (e: unknown): void => { errors.push(e); };
      r.listen('error', onError);
      r.gotData('b', { type: 'Vote', from: 'b', to: 'a' }); // no term: malformed
      r.gotData('b', { type: 'Heartbeat', from: 'c', to: 'a', term: 1, commit: 0, ctx: 0 }); // spoofed sender
      assert.equal(errors.length, 2, 'both payloads reported');
      assert.ok(errors.every((e) => e instanceof WebRaftPayloadError), 'as WebRaftPayloadError');
      r.unlisten('error', onError);
      r.gotData('b', 'not json');
      assert.equal(errors.length, 2, 'an unlistened handler is not called');
    } finally {
      await c.closeAll();
    }
  });
});
