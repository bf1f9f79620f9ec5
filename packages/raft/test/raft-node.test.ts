/**
 * RaftNode end to end: three nodes over MemoryTransport and MemoryStorage, on fake timers (time moves only
 * when the test says; every wait is bounded in ticks, never in wall-clock time), plus a few real-timer
 * runs that check outcomes only.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfChangeError, NotLeaderError } from '../src/core/errors.js';
import { decodeMessage, encodeMessage } from '../src/node/codec.js';
import { validateNodeMessage } from '../src/node/node-messages.js';
import { StoppedError, TimeoutError } from '../src/node/errors.js';
import { MemoryStorage } from '../src/node/memory-storage.js';
import type { StorageSizes } from '../src/node/storage.js';
import { realTimers } from '../src/node/timers.js';
import { FakeTimers, flush } from './helpers/fake-timers.js';
import { MemoryNetwork } from '../src/node/memory-transport.js';
import { RaftNode } from '../src/node/raft-node.js';
import {
  Cluster, ELECTION_TICKS, IDS, Kv, TICK, put, settle, until, type Extra, type Node,
} from './helpers/node-cluster.js';

async function withCluster(body: (c: Cluster, clock: FakeTimers) => Promise<void>, extra: Extra = {}): Promise<void> {
  const clock = new FakeTimers();
  const c = new Cluster(clock, extra);
  try {
    await c.startAll();
    await until(clock, () => c.leader() !== null, 'a leader elected');
    await body(c, clock);
  } finally {
    await c.stopAll();
  }
  assert.equal(clock.pending, 0, 'stop() leaves no timer behind');
}

describe('RaftNode on fake timers', () => {
  it('elects one leader, and emits role events', async () => {
    const clock = new FakeTimers();
    const c = new Cluster(clock);
    const events: string[] = [];
    const joins: string[] = [];
    c.onNode = (n) => {
      n.on('leader', () => events.push(`${n.id}:leader`));
      n.on('start election', () => events.push(`${n.id}:election`));
      n.on('join', (id) => joins.push(`${n.id}:${id}`));
    };
    await c.startAll();
    await until(clock, () => c.leader() !== null, 'a leader elected');
    const leader = c.leader()!;
    assert.ok(events.includes(`${leader.id}:leader`), `the leader emitted 'leader' (events: ${events.join(', ')})`);
    assert.ok(events.includes(`${leader.id}:election`), `the leader emitted 'start election' (events: ${events.join(', ')})`);
    assert.equal(joins.length, 9, `each node saw the three bootstrap voters join (${joins.join(', ')})`);
    const st = leader.status();
    assert.equal(st.role, 'leader');
    assert.deepEqual([...st.conf.voters].sort(), IDS);
    await c.stopAll();
    assert.equal(clock.pending, 0, 'stop() leaves no timer behind');
  });

  it('replicates proposals made on the leader and on followers; each settles with its result', () => withCluster(async (c, clock) => {
    const leader = c.leader()!;
    const [f1, f2] = c.followers() as [Node, Node];
    const r1 = await settle(clock, leader.propose(put('a', 'L1')), 'leader proposal');
    assert.equal(r1.error, undefined, 'leader proposal succeeds');
    assert.equal(r1.value, undefined, 'no previous value');
    const r2 = await settle(clock, f1.propose(put('a', 'F1')), 'follower proposal');
    assert.equal(r2.error, undefined, 'forwarded proposal succeeds');
    assert.equal(r2.value, 'L1', 'the result is the state machine result');
    const many = [leader, f1, f2].flatMap((n, i) => Array.from({ length: 10 }, (_, j) => n.propose(put(`k${i}.${j}`, `v${i}.${j}`))));
    const all = await settle(clock, Promise.all(many), 'thirty proposals');
    assert.equal(all.error, undefined, 'all thirty proposals succeed');
    await until(clock, () => [...c.machines.values()].every((m) => m.data.size === 31), 'every node applied everything');
    for (const [id, m] of c.machines) {
      assert.equal(m.data.get('a'), 'F1', `${id} holds the last write`);
      assert.equal(m.data.get('k2.9'), 'v2.9', `${id} holds a follower's write`);
    }
  }));

  it('applies a duplicated forward once', () => withCluster(async (c, clock) => {
    // The network delivers every Forward three times.
    c.net.filter = (m) => {
      if (m.type === 'Forward') for (let i = 0; i < 2; i++) c.net.sendRaw(m.to, encodeMessage(m));
      return true;
    };
    const f = c.followers()[0]!;
    const res = await settle(clock, Promise.all([f.propose(put('x', 'dup1')), f.propose(put('y', 'dup2'))]), 'forwarded proposals');
    assert.equal(res.error, undefined, 'both succeed');
    await until(clock, () => [...c.machines.values()].every((m) => m.data.has('y')), 'replicated');
    for (const [id, m] of c.machines) {
      assert.equal(m.appliedCount.get('dup1'), 1, `${id} applied dup1 once`);
      assert.equal(m.appliedCount.get('dup2'), 1, `${id} applied dup2 once`);
    }
  }));

  it('batches forwards: a burst of follower proposals travels in few messages', () => withCluster(async (c, clock) => {
    let forwards = 0;
    c.net.filter = (m) => { if (m.type === 'Forward') forwards++; return true; };
    const f = c.followers()[0]!;
    const N = 100;
    const all = await settle(clock, Promise.all(Array.from({ length: N }, (_, i) => f.propose(put(`b${i}`, `b${i}`)))), 'burst on a follower');
    assert.equal(all.error, undefined, 'every forwarded proposal succeeds');
    assert.ok(forwards >= 1 && forwards < 5, `${forwards} Forward messages for ${N} proposals`);
  }));

  it('retries a forward the network lost', () => withCluster(async (c, clock) => {
    let dropped = 0;
    c.net.filter = (m) => !(m.type === 'Forward' && dropped++ < 1);
    const f = c.followers()[0]!;
    const res = await settle(clock, f.propose(put('lost', 'once')), 'proposal whose first forward is lost');
    assert.equal(res.error, undefined, 'it succeeds after a retry');
    assert.equal(dropped, 2, 'the first forward was dropped and a second went through');
  }));

  it('rejects with NotLeaderError on a follower when forwarding is off', () => withCluster(async (c, clock) => {
    const f = c.followers()[0]!;
    const res = await settle(clock, f.propose(put('a', 'b')), 'follower proposal');
    assert.ok(res.error instanceof NotLeaderError, `NotLeaderError expected, got ${String(res.error)}`);
    assert.equal((res.error as NotLeaderError).leader, c.leader()!.id, 'it names the leader');
  }, { forwardProposals: false }));

  it('a state machine that refuses a command rejects that proposal only', () => withCluster(async (c, clock) => {
    const leader = c.leader()!;
    const bad = await settle(clock, leader.propose({ op: 'fail' }), 'refused proposal');
    assert.ok(bad.error instanceof Error && bad.error.message.includes('refused'), 'the apply error reaches the proposer');
    const ok = await settle(clock, leader.propose(put('after', 'fine')), 'next proposal');
    assert.equal(ok.error, undefined, 'the node keeps going');
  }));

  it('reads are linearizable on leader and followers', () => withCluster(async (c, clock) => {
    const leader = c.leader()!;
    for (const [i, n] of [leader, ...c.followers()].entries()) {
      const w = await settle(clock, n.propose(put('r', `v${i}`)), 'write');
      assert.equal(w.error, undefined, 'write succeeds');
      for (const reader of c.nodes.values()) {
        const r = await settle(clock, reader.read('r'), `read on ${reader.id}`);
        assert.equal(r.value, `v${i}`, `${reader.id} reads the write acknowledged on ${n.id}`);
      }
    }
  }));

  it('a crashed follower restarts from its storage and catches up, also through a snapshot', () => withCluster(async (c, clock) => {
    const leader = c.leader()!;
    const victim = c.followers()[0]!.id;
    for (let i = 0; i < 5; i++) assert.equal((await settle(clock, leader.propose(put(`a${i}`, `a${i}`)), 'write')).error, undefined, 'write ok');
    await c.stop(victim);
    for (let i = 0; i < 30; i++) assert.equal((await settle(clock, leader.propose(put(`b${i}`, `b${i}`)), 'write while down')).error, undefined, 'write ok');
    assert.ok(leader.status().firstIndex > 10, `the leader compacted its log (first index ${leader.status().firstIndex})`);
    const node = await c.start(victim);
    await until(clock, () => c.machines.get(victim)!.data.size === 35, 'the restarted node caught up');
    assert.ok(c.machines.get(victim)!.restores >= 1, 'it was brought up to date by a snapshot');
    assert.equal(c.machines.get(victim)!.data.get('b29'), 'b29');
    const r = await settle(clock, node.read('a0'), 'read on the restarted node');
    assert.equal(r.value, 'a0', 'state from before the crash is there');
  }, { snapshotEvery: 8 }));

  it('a whole cluster restarts from storage with everything acknowledged', () => withCluster(async (c, clock) => {
    const leader = c.leader()!;
    for (let i = 0; i < 12; i++) assert.equal((await settle(clock, leader.propose(put(`k${i}`, `v${i}`)), 'write')).error, undefined, 'write ok');
    await c.stopAll();
    await c.startAll();
    await until(clock, () => c.leader() !== null, 'a leader after the restart');
    await until(clock, () => [...c.machines.values()].every((m) => m.data.size === 12), 'state restored on every node');
    const r = await settle(clock, c.followers()[0]!.read('k11'), 'read after restart');
    assert.equal(r.value, 'v11');
    // Proposal ids of the new incarnation must not collide with the old one's (dedup would swallow them).
    for (const n of c.nodes.values()) {
      const w = await settle(clock, n.propose(put(`after-${n.id}`, 'x')), `write on ${n.id} after restart`);
      assert.equal(w.error, undefined, `a write on ${n.id} after the restart applies`);
    }
  }, { snapshotEvery: 5 }));

  it('proposals and reads time out with TimeoutError under a full partition', () => withCluster(async (c, clock) => {
    const leader = c.leader()!;
    const follower = c.followers()[0]!;
    c.net.partition(['n1'], ['n2'], ['n3']);
    const p1 = settle(clock, leader.propose(put('p', 'on-leader')), 'leader proposal');
    const p2 = settle(clock, follower.propose(put('p', 'on-follower')), 'follower proposal');
    const p3 = settle(clock, follower.read('p'), 'follower read');
    for (const [what, p] of [['leader proposal', p1], ['follower proposal', p2], ['read', p3]] as const) {
      const r = await p;
      assert.ok(r.error instanceof TimeoutError, `${what}: TimeoutError expected, got ${String(r.error)}`);
    }
    assert.equal(c.machines.get(leader.id)!.data.has('p'), false, 'nothing was applied');
  }, { proposalTimeoutMs: 3 * ELECTION_TICKS * TICK }));

  it('makes one storage save per Ready: a burst of proposals needs far fewer saves', () => withCluster(async (c, clock) => {
    const leader = c.leader()!;
    const before = leader.status().saves;
    const N = 200;
    const all = await settle(clock, Promise.all(Array.from({ length: N }, (_, i) => leader.propose(put(`g${i}`, `g${i}`)))), 'burst');
    assert.equal(all.error, undefined, 'every proposal succeeds');
    const saves = leader.status().saves - before;
    assert.ok(saves < N / 10, `${saves} saves for ${N} proposals: one save per Ready, not per proposal`);
    assert.equal(c.storages.get(leader.id)!.saves, leader.status().saves, 'the storage saw exactly the saves the node counted');
  }));

  it('membership: a learner joins, is promoted, and another node is removed', () => withCluster(async (c, clock) => {
    const leader = c.leader()!;
    const joins: string[] = [];
    const leaves: string[] = [];
    leader.on('join', (id, as) => joins.push(`${id}:${as}`));
    leader.on('leave', (id) => leaves.push(id));
    c.ids.push('n4');
    const n4 = await c.start('n4', { voters: [] });
    assert.equal((await settle(clock, leader.addLearner('n4'), 'add learner')).error, undefined, 'learner added');
    await until(clock, () => n4.status().commit >= leader.status().commit, 'the learner catches up');
    assert.equal((await settle(clock, leader.addVoter('n4'), 'promote')).error, undefined, 'promoted');
    const other = c.followers().find((n) => n.id !== 'n4')!;
    assert.equal((await settle(clock, leader.removeNode(other.id), 'remove')).error, undefined, 'removed');
    assert.deepEqual(joins, ['n4:learner', 'n4:voter']);
    assert.deepEqual(leaves, [other.id]);
    assert.deepEqual([...leader.status().conf.voters].sort(), IDS.filter((i) => i !== other.id).concat('n4').sort());
    const w = await settle(clock, n4.propose(put('from', 'n4')), 'the new voter proposes');
    assert.equal(w.error, undefined, 'the new member can write');
    const res = await settle(clock, c.followers()[0]!.changeMembership([{ type: 'addVoter', node: 'n9' }, { type: 'remove', node: 'n9' }]), 'invalid change on a follower');
    assert.ok(res.error instanceof ConfChangeError, `the leader's refusal comes back typed, got ${String(res.error)}`);
  }, {}));

  it('transfers leadership', () => withCluster(async (c, clock) => {
    const target = c.followers()[0]!;
    const r = await settle(clock, c.leader()!.transferLeadership(target.id), 'transfer');
    assert.equal(r.error, undefined, 'transfer completes');
    await until(clock, () => c.leader()?.id === target.id, 'everyone follows the new leader');
  }));

  it("emits 'heartbeat timeout', 'start election', 'apply', 'updated' and 'refresh'", async () => {
    const clock = new FakeTimers();
    const c = new Cluster(clock, { snapshotEvery: 5 });
    const seen = new Map<string, string[]>();
    const log = (id: string, what: string): void => { seen.set(id, [...(seen.get(id) ?? []), what]); };
    c.onNode = (n) => {
      n.on('heartbeat timeout', () => log(n.id, 'heartbeat timeout'));
      n.on('start election', () => log(n.id, 'start election'));
      n.on('apply', (cmd) => log(n.id, `apply ${cmd.op === 'put' ? cmd.value : cmd.op}`));
      n.on('updated', () => log(n.id, 'updated'));
      n.on('refresh', (index, term) => log(n.id, `refresh ${index}@${term}`));
    };
    try {
      await c.startAll();
      await until(clock, () => c.leader() !== null, 'a leader elected');
      const leader = c.leader()!;
      const lagging = c.followers()[0]!.id;
      c.net.isolate(lagging);
      for (let i = 0; i < 8; i++) assert.equal((await settle(clock, leader.propose(put(`k${i}`, `v${i}`)), 'write')).error, undefined, 'write ok');
      await until(clock, () => (seen.get(lagging) ?? []).includes('heartbeat timeout'), 'the isolated follower times out');
      c.net.heal();
      await until(clock, () => c.machines.get(lagging)!.data.size === 8, 'the isolated follower catches up');
      const ev = seen.get(lagging)!;
      const refresh = ev.find((e) => e.startsWith('refresh '));
      assert.ok(refresh !== undefined, `the lagging follower was refreshed by a snapshot (${ev.join(', ')})`);
      // Every entry was written by the one leader, so the snapshot's entry carries the leader's term.
      const [index, term] = refresh.slice('refresh '.length).split('@').map(Number) as [number, number];
      assert.ok(index >= 5, `refresh carries the snapshot's index (${refresh})`);
      assert.equal(term, leader.status().term, `refresh carries the snapshot's term (${refresh})`);
      assert.ok(seen.get(leader.id)!.includes('apply v7'), 'the leader emitted apply');
      assert.ok(seen.get(leader.id)!.includes('updated'), 'the leader emitted updated');
      assert.ok([...seen.values()].some((e) => e.includes('start election')), 'someone started an election');
    } finally {
      await c.stopAll();
    }
    assert.equal(clock.pending, 0, 'no timer left');
  });

  it('stop() during start() waits for the load before closing storage, and starts nothing', async () => {
    const clock = new FakeTimers();
    const storage = new MemoryStorage();
    const calls: string[] = [];
    let finishLoad: () => void = () => {};
    const load = storage.load.bind(storage);
    storage.load = async () => {
      calls.push('load');
      await new Promise<void>((resolve) => { finishLoad = resolve; });
      calls.push('loaded');
      return load();
    };
    const close = storage.close.bind(storage);
    storage.close = async () => { calls.push('close'); await close(); };
    const node = new RaftNode({
      id: 'n1', voters: ['n1'], storage, transport: new MemoryNetwork().transport('n1'), timers: clock,
      stateMachine: new Kv(),
    });
    const started = node.start();
    const stopped = node.stop();
    await flush();
    assert.deepEqual(calls, ['load'], 'storage not closed while its load is in flight');
    finishLoad();
    await started;
    await stopped;
    assert.deepEqual(calls, ['load', 'loaded', 'close'], 'closed after the load');
    assert.equal(clock.pending, 0, 'no timer was started');
    await assert.rejects(node.propose(put('a', 'b')), StoppedError);
  });

  it('a failing storage stops the node with an error event', async () => {
    const clock = new FakeTimers();
    const c = new Cluster(clock);
    const errors: unknown[] = [];
    c.onNode = (n) => { n.on('error', (e) => errors.push(e)); };
    await c.startAll();
    await until(clock, () => c.leader() !== null, 'a leader elected');
    const leader = c.leader()!;
    const storage = c.storages.get(leader.id)!;
    storage.save = () => Promise.reject(new Error('disk full'));
    const p = leader.propose(put('a', 'b'));
    const r = await settle(clock, p, 'proposal on a failing disk');
    assert.ok(r.error instanceof StoppedError, `the proposal fails with StoppedError, got ${String(r.error)}`);
    assert.ok(errors.some((e) => e instanceof Error && e.message === 'disk full'), 'the storage error was emitted');
    await assert.rejects(leader.propose(put('a', 'c')), StoppedError);
    await c.stopAll();
    assert.equal(clock.pending, 0, 'no timer left');
  });

  it('stop() rejects what is pending with StoppedError', async () => {
    const clock = new FakeTimers();
    const c = new Cluster(clock);
    await c.startAll();
    c.net.partition(['n1'], ['n2'], ['n3']);
    const n1 = c.nodes.get('n1')!;
    const p = n1.propose(put('a', 'b'));
    const r = n1.read('a');
    await c.stopAll();
    await assert.rejects(p, StoppedError);
    await assert.rejects(r, StoppedError);
    await assert.rejects(n1.propose(put('a', 'c')), StoppedError);
    assert.equal(clock.pending, 0, 'no timer left');
  });
});

describe('RaftNode: membership changes and transfers from followers', () => {
  it('a follower adds a learner, promotes it and removes a node; each settles once applied on the follower', () => withCluster(async (c, clock) => {
    const f = c.followers()[0]!;
    const seen: string[] = [];
    f.on('join', (id, as) => seen.push(`join ${id}:${as}`));
    f.on('leave', (id) => seen.push(`leave ${id}`));
    c.ids.push('n4');
    const n4 = await c.start('n4', { voters: [] });
    const checkApplied = (what: string) => (): void => { assert.ok(seen.includes(what), `settled after the follower applied "${what}" (${seen.join(', ')})`); };
    assert.equal((await settle(clock, f.addLearner('n4').then(checkApplied('join n4:learner')), 'forwarded addLearner')).error, undefined, 'learner added');
    await until(clock, () => n4.status().commit >= c.leader()!.status().commit, 'the learner catches up');
    assert.equal((await settle(clock, f.addVoter('n4').then(checkApplied('join n4:voter')), 'forwarded addVoter')).error, undefined, 'promoted');
    const other = c.followers().find((n) => n.id !== f.id && n.id !== 'n4')!;
    assert.equal((await settle(clock, f.removeNode(other.id).then(checkApplied(`leave ${other.id}`)), 'forwarded removeNode')).error, undefined, 'removed');
    assert.deepEqual(seen, ['join n4:learner', 'join n4:voter', `leave ${other.id}`], 'each change applied once, in order');
    assert.deepEqual([...f.status().conf.voters].sort(), IDS.filter((i) => i !== other.id).concat('n4').sort(), 'the follower sees the new configuration');
  }));

  it('a follower transfers leadership, also to itself; the leader refuses a non-voter with a typed error', () => withCluster(async (c, clock) => {
    const [f1, f2] = c.followers() as [Node, Node];
    const r = await settle(clock, f1.transferLeadership(f2.id), 'forwarded transfer');
    assert.equal(r.error, undefined, 'the transfer completes');
    assert.equal(f1.leader, f2.id, 'settled once the follower sees the target lead');
    await until(clock, () => c.leader()?.id === f2.id, 'everyone follows the new leader');
    const self = await settle(clock, f1.transferLeadership(f1.id), 'transfer to the caller itself');
    assert.equal(self.error, undefined, 'a follower can take over leadership');
    assert.equal(f1.isLeader, true, 'it leads');
    const bad = await settle(clock, c.followers()[0]!.transferLeadership('n9'), 'transfer to a non-member');
    assert.ok(bad.error instanceof ConfChangeError, `ConfChangeError expected, got ${String(bad.error)}`);
  }));

  it('a lost answer is retried: the leader repeats its first answer and the change applies once', () => withCluster(async (c, clock) => {
    let lost = 0;
    let asked = 0;
    c.net.filter = (m) => {
      if (m.type === 'ForwardConf') asked++;
      return !(m.type === 'ForwardConfResp' && lost++ < 1);
    };
    const f = c.followers()[0]!;
    let joins = 0;
    f.on('join', (id) => { if (id === 'n4') joins++; });
    const r = await settle(clock, f.addLearner('n4'), 'forwarded addLearner whose answer is lost');
    assert.equal(r.error, undefined, 'it settles after the retry');
    assert.ok(asked >= 2, `the request was sent again (${asked} times)`);
    assert.equal(joins, 1, 'the change applied once');
  }));

  it('rejects with NotLeaderError when forwarding is off', () => withCluster(async (c, clock) => {
    const f = c.followers()[0]!;
    for (const [what, call] of [['addVoter', () => f.addVoter('n4')], ['transferLeadership', () => f.transferLeadership(f.id)]] as const) {
      const r = await settle(clock, call(), what);
      assert.ok(r.error instanceof NotLeaderError, `${what}: NotLeaderError expected, got ${String(r.error)}`);
      assert.equal((r.error as NotLeaderError).leader, c.leader()!.id, `${what}: it names the leader`);
    }
  }, { forwardProposals: false }));

  it('rejects with TimeoutError when no leader takes the request in time', () => withCluster(async (c, clock) => {
    const f = c.followers()[0]!;
    c.net.isolate(f.id);
    const r1 = await settle(clock, f.addVoter('n4'), 'change on an isolated follower');
    assert.ok(r1.error instanceof TimeoutError, `TimeoutError expected, got ${String(r1.error)}`);
    const r2 = await settle(clock, f.transferLeadership(c.followers().find((n) => n.id !== f.id)!.id), 'transfer from an isolated follower');
    assert.ok(r2.error instanceof TimeoutError, `TimeoutError expected, got ${String(r2.error)}`);
    assert.equal(f.status().conf.voters.includes('n4'), false, 'nothing changed');
  }, { proposalTimeoutMs: 3 * ELECTION_TICKS * TICK }));

  it('validateNodeMessage and the codec check ForwardConf and ForwardConfResp', () => {
    const ok = [
      { type: 'ForwardConf', from: 'a', to: 'b', id: 'a.x.1', op: 'change', changes: [{ type: 'addVoter', node: 'c' }] },
      { type: 'ForwardConf', from: 'a', to: 'b', id: 'a.x.2', op: 'transfer', target: 'c' },
      { type: 'ForwardConfResp', from: 'b', to: 'a', id: 'a.x.1', index: 7, term: 2 },
      { type: 'ForwardConfResp', from: 'b', to: 'a', id: 'a.x.1', index: 0, term: 0, error: { name: 'ConfChangeError', message: 'no' } },
    ];
    for (const m of ok) {
      assert.equal(validateNodeMessage(m), null, `valid: ${JSON.stringify(m)}`);
      assert.deepEqual(decodeMessage(JSON.stringify(m)), m, 'the codec passes it');
    }
    const bad = [
      { type: 'ForwardConf', from: 'a', to: 'b', id: '', op: 'transfer', target: 'c' },
      { type: 'ForwardConf', from: 'a', to: 'b', id: 'i', op: 'change', changes: [] },
      { type: 'ForwardConf', from: 'a', to: 'b', id: 'i', op: 'change', changes: [{ type: 'promote', node: 'c' }] },
      { type: 'ForwardConf', from: 'a', to: 'b', id: 'i', op: 'transfer' },
      { type: 'ForwardConf', from: 'a', to: 'b', id: 'i', op: 'other' },
      { type: 'ForwardConfResp', from: 'b', to: 'a', id: 'i', index: -1, term: 0 },
      { type: 'ForwardConfResp', from: 'b', to: 'a', id: 'i', index: 1, term: 1, error: { name: 7, message: 'x' } },
    ];
    for (const m of bad) {
      assert.notEqual(validateNodeMessage(m), null, `invalid: ${JSON.stringify(m)}`);
      assert.throws(() => decodeMessage(JSON.stringify(m)), /malformed/, 'the codec refuses it');
    }
  });
});

describe('RaftNode lease reads', () => {
  // With the cluster's timing (10 ticks of 10 ms, drift bound 2 ticks) a lease lasts 7 ticks after a quorum answered.
  const lease: Extra = { readMode: 'lease' };

  it('serves a lease read on the leader without any message while the lease is fresh', () => withCluster(async (c, clock) => {
    const leader = c.leader()!;
    assert.equal((await settle(clock, leader.propose(put('l', 'v1')), 'write')).error, undefined, 'write ok');
    await clock.advance(2 * TICK);
    let sent = 0;
    c.net.filter = () => { sent++; return true; };
    let value: unknown = 'unsettled';
    void leader.read('l').then((v) => { value = v; });
    await flush();
    assert.equal(value, 'v1', 'the lease read answered without time passing');
    assert.equal(sent, 0, `no message was needed (${sent} sent)`);
    // Contrast: a ReadIndex read asks the followers first.
    value = 'unsettled';
    void leader.read('l', { lease: false }).then((v) => { value = v; });
    await flush();
    assert.ok(sent > 0, 'a ReadIndex read sends a heartbeat round');
    assert.equal((await settle(clock, leader.read('l', { lease: false }), 'index read')).value, 'v1', 'the ReadIndex read agrees');
  }, lease));

  it('falls back to ReadIndex when no quorum answered within the lease', () => withCluster(async (c, clock) => {
    const leader = c.leader()!;
    assert.equal((await settle(clock, leader.propose(put('l', 'v1')), 'write')).error, undefined, 'write ok');
    // The followers hear the leader, but their answers are lost for 8 ticks: longer than the lease, shorter
    // than check-quorum's election timeout, so the leader is still leader and must not trust its lease.
    c.net.filter = (m) => !(m.to === leader.id && (m.type === 'HeartbeatResp' || m.type === 'AppendResp'));
    await clock.advance(8 * TICK);
    assert.ok(leader.isLeader, 'the leader has not stepped down');
    let sent = 0;
    c.net.filter = () => { sent++; return true; };
    // The in-memory network delivers within one flush, so the fallback is told apart by its messages.
    const p = leader.read('l', { lease: true });
    await flush();
    assert.ok(sent > 0, `a stale lease does not serve the read: the fallback sent a heartbeat round (${sent} messages)`);
    assert.equal((await settle(clock, p, 'fallback read')).value, 'v1', 'the ReadIndex fallback answers');
    // Once answers flow again the lease is back.
    await clock.advance(2 * TICK);
    sent = 0;
    let value: unknown = 'unsettled';
    void leader.read('l').then((v) => { value = v; });
    await flush();
    assert.equal(value, 'v1', 'the renewed lease serves the read at once');
    assert.equal(sent, 0, 'without messages');
  }, lease));

  it('a leader that started a leadership transfer serves no lease read in that term', () => withCluster(async (c, clock) => {
    const leader = c.leader()!;
    assert.equal((await settle(clock, leader.propose(put('l', 'v1')), 'write')).error, undefined, 'write ok');
    await clock.advance(2 * TICK);
    // The target never gets TimeoutNow, so the transfer does not happen, but it could have: the lease is void.
    c.net.filter = (m) => m.type !== 'TimeoutNow';
    void leader.transferLeadership(c.followers()[0]!.id).catch(() => {});
    await flush();
    let sent = 0;
    c.net.filter = (m) => { sent++; return m.type !== 'TimeoutNow'; };
    const r = leader.read('l');
    await flush();
    assert.ok(sent > 0, `the read took a ReadIndex round (${sent} messages)`);
    assert.equal((await settle(clock, r, 'read during a transfer')).value, 'v1', 'and answered');
  }, lease));

  it('a partitioned old leader never serves a lease read after its lease expired', () => withCluster(async (c, clock) => {
    const old = c.leader()!;
    assert.equal((await settle(clock, old.propose(put('l', 'v1')), 'write')).error, undefined, 'write ok');
    await clock.advance(2 * TICK);
    c.net.isolate(old.id);
    await clock.advance(8 * TICK);
    assert.ok(old.isLeader, 'the isolated leader still believes it leads');
    const results: unknown[] = [];
    const reads = [old.read('l'), old.read('l', { lease: true })].map((p) => p.then((v) => results.push(v), (e: unknown) => results.push(e)));
    await flush();
    assert.equal(results.length, 0, 'no lease read is served once the lease expired');
    // The majority elects a new leader and overwrites the value.
    const others = [...c.nodes.values()].filter((n) => n.id !== old.id);
    await until(clock, () => others.some((n) => n.isLeader), 'the majority elects a new leader');
    const fresh = others.find((n) => n.isLeader)!;
    assert.equal((await settle(clock, fresh.propose(put('l', 'v2')), 'write on the new leader')).error, undefined, 'write ok');
    // Whatever the old leader answers in the end (after a timeout or after the heal), it is never v1.
    c.net.heal();
    await settle(clock, Promise.all(reads), 'the old leader\'s reads settle');
    for (const r of results) assert.ok(r === 'v2' || r instanceof TimeoutError, `never the stale v1 (got ${String(r)})`);
    const after = await settle(clock, old.read('l', { lease: true }), 'read on the old leader after the heal');
    assert.equal(after.value, 'v2', 'after the heal it reads the new value');
  }, { ...lease, proposalTimeoutMs: 3 * ELECTION_TICKS * TICK }));
});

describe('RaftNode on real timers (outcomes only)', () => {
  it('elects, replicates, reads and stops without leaving anything running', async () => {
    const c = new Cluster(realTimers, { tickMs: 5, proposalTimeoutMs: 30_000 });
    await c.startAll();
    // No fixed wait: a proposal on any node resolves once some leader commits it.
    const results = await Promise.all([...c.nodes.values()].map((n, i) => n.propose(put(`k${i}`, `v${i}`))));
    assert.deepEqual(results, [undefined, undefined, undefined], 'three first writes');
    const read = await c.nodes.get('n3')!.read('k0');
    assert.equal(read, 'v0', 'a linearizable read sees the write');
    // Group commit under real load: a disk that takes a while makes each save carry many proposals.
    const slow = new Cluster(realTimers, { tickMs: 5, proposalTimeoutMs: 30_000 });
    for (const id of slow.ids) slow.storages.set(id, new MemoryStorage({ latencyMs: 2 }));
    await slow.startAll();
    await slow.nodes.get('n1')!.propose(put('warm', 'up'));
    const n1 = slow.nodes.get('n1')!;
    const before = n1.status().saves;
    const N = 300;
    await Promise.all(Array.from({ length: N }, (_, i) => n1.propose(put(`s${i}`, `s${i}`))));
    const saves = n1.status().saves - before;
    assert.ok(saves < N / 3, `${saves} saves for ${N} concurrent proposals on n1`);
    await slow.stopAll();
    await c.stopAll();
    const timers = process.getActiveResourcesInfo().filter((r) => r === 'Timeout');
    assert.equal(timers.length, 0, `no timer left after stop (${timers.length})`);
  });
});

describe('RaftNode: when to compact (Raft thesis §5.1.1)', () => {
  /** MemoryStorage that reports sizes the test sets, and counts compactions. */
  class SizedStorage extends MemoryStorage {
    reported: StorageSizes | undefined = undefined;
    compactions = 0;
    sizes?: () => StorageSizes = () => this.reported!;
    override async compact(snapshot: Parameters<MemoryStorage['compact']>[0]): Promise<void> {
      this.compactions++;
      return super.compact(snapshot);
    }
  }

  async function lone(storage: SizedStorage, clock: FakeTimers): Promise<Node> {
    const node: Node = new RaftNode({ id: 'a', voters: ['a'], storage, transport: new MemoryNetwork().transport('a'), stateMachine: new Kv(), timers: clock, tickMs: TICK, electionTicks: ELECTION_TICKS, snapshotEvery: 5 });
    await node.start();
    await clock.advance(3 * ELECTION_TICKS * TICK);
    assert.ok(node.isLeader, 'a lone voter leads');
    return node;
  }
  const write = async (node: Node, clock: FakeTimers, n: number) => {
    for (let i = 0; i < n; i++) { const p = node.propose(put('k', `v${i}`)); await clock.advance(TICK); await p; }
  };

  it('without sizes from storage: every snapshotEvery entries', async () => {
    const clock = new FakeTimers();
    const storage = new SizedStorage();
    storage.sizes = undefined;
    const node = await lone(storage, clock);
    await write(node, clock, 12);
    assert.equal(storage.compactions, 2, 'twelve entries (and the leader\'s empty one) past two marks of five');
    await node.stop();
  });

  it('with sizes: only once the log written since the last snapshot is as large as that snapshot', async () => {
    const clock = new FakeTimers();
    const storage = new SizedStorage();
    storage.reported = { logBytes: 100, snapshotBytes: 1_000 };
    const node = await lone(storage, clock);
    await write(node, clock, 12);
    assert.equal(storage.compactions, 0, 'a small log next to a big snapshot: no compaction however many entries');
    storage.reported = { logBytes: 1_000, snapshotBytes: 1_000 };
    await write(node, clock, 1);
    assert.equal(storage.compactions, 1, 'the log caught up with the snapshot: compacted');
    await node.stop();
  });
});
