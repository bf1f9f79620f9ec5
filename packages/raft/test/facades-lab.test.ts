/**
 * The 6.824 lab's API (`make`, `start`, `getState`, `ApplyMsg`) runs the lab's own flow: three peers on an
 * in-memory network, one leader whose term every peer agrees on, commands started on the leader applied in
 * the same order at the indexes `start` returned on every peer, followers answering `isLeader: false`, a
 * crashed peer restarted from `persister.copy()` replaying its log, and a lagging peer brought up to date
 * by a snapshot ApplyMsg. Fake timers: every wait is bounded in ticks.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Channel, make, Persister, type ApplyMsg, type LabConfig, type LabRaft } from '../src/facades/lab.js';
import { MemoryNetwork } from '../src/node/memory-transport.js';
import { FakeTimers } from './helpers/fake-timers.js';

const TICK = 10;
const ELECTION_TICKS = 10;
const MAX_TICKS = 50 * ELECTION_TICKS;
const IDS = ['s0', 's1', 's2'];

class Lab {
  readonly clock = new FakeTimers();
  readonly net = new MemoryNetwork();
  readonly peers = { ids: IDS, network: this.net };
  readonly rafts: (LabRaft<string> | null)[] = [];
  readonly persisters: Persister[] = IDS.map(() => new Persister());
  readonly chans: Channel<ApplyMsg<string>>[] = [];

  constructor(readonly extra: (i: number) => Partial<LabConfig> & { applyCh?: (m: ApplyMsg<string>) => void } = () => ({})) {}

  async boot(i: number): Promise<LabRaft<string>> {
    const { applyCh, ...cfg } = this.extra(i);
    this.chans[i] = new Channel<ApplyMsg<string>>();
    const ch = this.chans[i]!;
    const rf = make<string>(this.peers, i, this.persisters[i]!, applyCh ? (m) => { ch.send(m); applyCh(m); } : ch, {
      timers: this.clock, tickMs: TICK, electionTicks: ELECTION_TICKS,
      // Staggered election timeouts: peers on one fake clock would otherwise split votes.
      random: () => (i + 0.5) / (IDS.length + 1),
      ...cfg,
    });
    this.rafts[i] = rf;
    await rf.ready;
    return rf;
  }

  async crash(i: number): Promise<void> {
    await this.rafts[i]!.kill();
    this.rafts[i] = null;
    this.persisters[i] = this.persisters[i]!.copy(); // what the lab's tester does before a restart
  }

  /** The one leader, if every live peer agrees on its term. */
  leader(): number | null {
    const live = this.rafts.flatMap((r, i) => (r ? [{ i, s: r.getState() }] : []));
    const leaders = live.filter((x) => x.s.isLeader);
    if (leaders.length !== 1) return null;
    return live.every((x) => x.s.term === leaders[0]!.s.term) ? leaders[0]!.i : null;
  }

  async until(cond: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < MAX_TICKS && !cond(); i++) await this.clock.advance(TICK);
    assert.ok(cond(), `${what}: not reached within ${MAX_TICKS} ticks`);
  }

  async shutdown(): Promise<void> {
    for (const r of this.rafts) await r?.kill();
    assert.equal(this.clock.pending, 0, 'kill() leaves no timer behind');
  }
}

const commands = (msgs: ApplyMsg<string>[]): string[] => msgs.filter((m) => m.commandValid).map((m) => m.command!);

describe('lab API (make / start / getState / ApplyMsg)', () => {
  it('three peers agree on a leader; commands started on it apply in order, at the returned indexes, on every peer', async () => {
    const lab = new Lab();
    for (let i = 0; i < 3; i++) await lab.boot(i);
    try {
      await lab.until(() => lab.leader() !== null, 'one leader, one term');
      const l = lab.leader()!;
      const { term } = lab.rafts[l]!.getState();
      const follower = (l + 1) % 3;
      assert.deepEqual(lab.rafts[follower]!.start('nope'), { index: -1, term, isLeader: false }, 'a follower does not take commands');

      const started = ['c1', 'c2', 'c3', 'c4', 'c5'].map((c) => ({ c, ...lab.rafts[l]!.start(c) }));
      for (const s of started) {
        assert.equal(s.isLeader, true, `start(${s.c}) on the leader says isLeader`);
        assert.equal(s.term, term, `start(${s.c}) returns the leader's term`);
      }
      for (let k = 1; k < started.length; k++) assert.equal(started[k]!.index, started[k - 1]!.index + 1, 'consecutive indexes for a burst');

      await lab.until(() => lab.chans.every((ch) => ch.length === 5), 'every peer sent five ApplyMsgs');
      const expected = started.map((s) => ({ commandValid: true, command: s.c, commandIndex: s.index }));
      for (let i = 0; i < 3; i++) assert.deepEqual(lab.chans[i]!.drain(), expected, `peer ${i}'s ApplyMsgs are the commands, in order, at start()'s indexes`);
      const states = lab.rafts.map((r) => r!.getState());
      assert.ok(states.every((s) => s.term === term), `every peer reports term ${term} (${JSON.stringify(states)})`);
      assert.equal(states.filter((s) => s.isLeader).length, 1, 'exactly one peer says isLeader');

      // A Channel is also an async receiver, as applyCh is in Go.
      lab.rafts[l]!.start('c6');
      const next = lab.chans[follower]!.receive();
      await lab.until(() => lab.chans[l]!.length === 1, 'c6 applied on the leader');
      await lab.until(() => lab.chans[follower]!.length === 0, 'the waiting receive took c6');
      assert.equal((await next).command, 'c6', 'receive() resolves with the next ApplyMsg');
    } finally {
      await lab.shutdown();
    }
  });

  it('a crashed peer restarted from persister.copy() replays its log; commands made meanwhile reach it', async () => {
    const lab = new Lab();
    for (let i = 0; i < 3; i++) await lab.boot(i);
    try {
      await lab.until(() => lab.leader() !== null, 'a leader');
      let l = lab.leader()!;
      lab.rafts[l]!.start('a');
      await lab.until(() => lab.chans.every((ch) => ch.length === 1), "'a' everywhere");
      const victim = (l + 1) % 3;
      await lab.crash(victim);
      l = lab.leader()!;
      lab.rafts[l]!.start('b');
      await lab.until(() => lab.chans[l]!.length === 2, "'b' applied on the leader without the crashed peer");
      await lab.boot(victim);
      await lab.until(() => lab.chans[victim]!.length === 2, 'the restarted peer applied its log again');
      assert.deepEqual(commands(lab.chans[victim]!.drain()), ['a', 'b'], 'replayed in order');
      assert.deepEqual(commands(lab.chans[l]!.drain()), ['a', 'b'], "the leader's ApplyMsgs");
      const saved = await lab.persisters[victim]!.readRaftState();
      assert.ok(saved.hardState !== null && saved.hardState.term >= 1, `the persister holds the hard state (${JSON.stringify(saved.hardState)})`);
    } finally {
      await lab.shutdown();
    }
  });

  it('a lagging peer gets a snapshot ApplyMsg built from the service state, then the commands after it', async () => {
    const services: string[][] = IDS.map(() => []);
    const lab = new Lab((i) => ({
      snapshotEvery: 4,
      snapshot: () => services[i]!.slice(),
      applyCh: (m) => {
        if (m.snapshotValid) services[i] = (m.snapshot as string[]).slice();
        else if (m.commandValid) services[i]!.push(m.command!);
      },
    }));
    for (let i = 0; i < 3; i++) await lab.boot(i);
    try {
      await lab.until(() => lab.leader() !== null, 'a leader');
      const l = lab.leader()!;
      const lagger = (l + 1) % 3;
      lab.net.isolate(IDS[lagger]!);
      const cmds = Array.from({ length: 12 }, (_, k) => `x${k}`);
      for (const c of cmds) {
        assert.equal(lab.rafts[l]!.start(c).isLeader, true, `start(${c}) on the leader`);
        await lab.clock.advance(TICK);
      }
      await lab.until(() => services[l]!.length === 12, 'the majority applied everything');
      await lab.until(() => lab.rafts[l]!.node.status().firstIndex > 2, 'the leader compacted its log');
      lab.net.heal();
      await lab.until(() => services[lagger]!.length === 12, 'the lagging peer caught up');
      const msgs = lab.chans[lagger]!.drain();
      const snap = msgs.find((m) => m.snapshotValid);
      assert.ok(snap !== undefined, `the lagging peer got a snapshot ApplyMsg (${JSON.stringify(msgs)})`);
      assert.ok(snap.snapshotIndex! > 0, 'the snapshot says which index it covers');
      assert.equal(snap.snapshotTerm, lab.rafts[l]!.getState().term, "the snapshot carries its entry's term (one leader wrote them all)");
      assert.deepEqual(services[lagger], cmds, "the lagging peer's service state equals the commands in order");
      lab.rafts[l]!.start('after');
      await lab.until(() => services.every((s) => s.at(-1) === 'after'), 'a later command applies everywhere');
    } finally {
      await lab.shutdown();
    }
  });
});
