/**
 * RoomMembership with real RaftNodes on the in-memory mesh, on fake time (tick 10 ms, election 10 ticks):
 * bootstrapping, learners promoted once caught up, a leaving leader, unreachable and departed peers, a room
 * that loses its majority at once, and simultaneous joins. Every wait is bounded in fake time, not real time.
 */
import { Rng } from '@raftrtc/raft/testing';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage, RaftNode, TimeoutError } from '@raftrtc/raft';
import { FakeTimers } from '../../raft/test/helpers/fake-timers.js';
import { MemoryMesh } from '../src/raft/memory-mesh.js';
import type { MembershipAction } from '../src/raft/membership-plan.js';
import { MeshHub } from '../src/raft/mesh-link.js';
import { RoomMembership, RoomMembershipStateError, seededStorage, type RoomMembershipOptions } from '../src/raft/room-membership.js';
import { Chat, type ChatNode } from './chat-fixture.ts';

const TICK = 10;
const GRACE = 500;
/** A grace period no test waits out: a removal seen with it did not wait for the grace period. */
const FOREVER = 3_600_000;


interface Peer {
  id: string;
  membership: RoomMembership<ChatNode>;
  chat: Chat;
  changes: MembershipAction[];
  bootstraps: number;
}

/** A room: peers on one in-memory mesh and one fake clock. */
class Room {
  readonly mesh = new MemoryMesh();
  readonly timers = new FakeTimers();
  readonly peers = new Map<string, Peer>();
  /** Peers in the room according to "signaling" (joined, not yet left). */
  readonly present = new Set<string>();

  constructor(readonly extra: Partial<RoomMembershipOptions<ChatNode>> = {}) {}

  /** Starts peer `id` (seeing `peersAtJoin`, default: everyone present) without opening any channel yet. */
  async start(id: string, peersAtJoin: string[] | null = [...this.present]): Promise<Peer> {
    const hub = new MeshHub(this.mesh.link(id));
    const peer: Peer = { id, membership: null as unknown as RoomMembership<ChatNode>, chat: new Chat(), changes: [], bootstraps: 0 };
    // Distinct election timeouts per peer: nodes on one fake clock would otherwise split their votes.
    const draw = ((this.peers.size * 7) % 10 + 0.5) / 10;
    peer.membership = new RoomMembership<ChatNode>({
      id, hub, timers: this.timers, peersAtJoin, graceMs: GRACE, bootstrapTimeoutMs: 300, checkIntervalMs: 20,
      retry: { initialMs: 20, maxMs: 200, maxAttempts: 6 },
      createNode: ({ voters, transport, seed }) => {
        peer.chat = new Chat();
        return new RaftNode<string, number>({
          id, voters, transport, storage: seed ? seededStorage(new MemoryStorage(), seed) : new MemoryStorage(), stateMachine: peer.chat, timers: this.timers,
          tickMs: TICK, electionTicks: 10, random: () => draw,
        });
      },
      ...this.extra,
    });
    peer.membership.on('change', (a) => peer.changes.push(a));
    peer.membership.on('bootstrap', () => { peer.bootstraps++; });
    this.peers.set(id, peer);
    this.present.add(id);
    await peer.membership.start();
    return peer;
  }

  /** Starts `id` and opens its channels to everyone present. */
  async join(id: string, peersAtJoin?: string[] | null): Promise<Peer> {
    const p = await this.start(id, peersAtJoin);
    this.mesh.connectAll(id);
    return p;
  }

  node(id: string): ChatNode {
    const n = this.peers.get(id)!.membership.node;
    assert.ok(n, `${id} has a node`);
    return n;
  }

  live(): Peer[] {
    return [...this.peers.values()].filter((p) => this.present.has(p.id));
  }

  /** Advances fake time by ticks until `cond` holds; fails after `ms` of fake time. */
  async until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
    for (let t = 0; t <= ms; t += TICK) {
      if (cond()) return;
      await this.timers.advance(TICK);
    }
    assert.fail(`not within ${ms} ms of fake time: ${what}`);
  }

  /** The leader every live peer agrees on, if any. */
  leader(): string | null {
    const live = this.live();
    const l = this.node(live[0]!.id).leader;
    return l !== null && live.every((p) => p.membership.node?.leader === l) ? l : null;
  }

  /** Whether the leader's configuration is exactly `voters` (no learners) and every live peer applied it. */
  votersAre(voters: string[]): boolean {
    const l = this.leader();
    if (l === null) return false;
    const want = [...voters].sort().join(',');
    return this.live().every((p) => {
      const st = p.membership.node!.status();
      return [...st.conf.voters].sort().join(',') === want && st.conf.learners.length === 0;
    });
  }

  /** Closes every peer; no timer may be left behind. */
  async close(): Promise<void> {
    for (const p of this.peers.values()) await p.membership.close();
    await this.timers.advance(TICK);
    assert.equal(this.timers.pending, 0, 'no timer left after every peer closed');
  }
}

/** Every pair of chat logs agrees: one is a prefix of the other. */
function assertPrefixes(logs: Array<{ id: string; log: string[] }>): void {
  for (const a of logs) {
    for (const b of logs) {
      const n = Math.min(a.log.length, b.log.length);
      assert.deepEqual(a.log.slice(0, n), b.log.slice(0, n), `${a.id}'s and ${b.id}'s applied logs diverge`);
    }
  }
}

/** Proposes `texts` through `id` one after the other, advancing time while each is pending. */
async function chat(room: Room, id: string, texts: string[]): Promise<void> {
  for (const t of texts) {
    let done = false;
    let failure: unknown = null;
    room.node(id).propose(t).then(() => { done = true; }, (e: unknown) => { failure = e; done = true; });
    await room.until(() => done, `"${t}" applied on ${id}`);
    assert.equal(failure, null, `"${t}" was committed`);
  }
}

/** A room of `ids`, joined one after the other, each fully added before the next joins. */
async function roomOf(ids: string[], extra: Partial<RoomMembershipOptions<ChatNode>> = {}): Promise<Room> {
  const room = new Room(extra);
  for (const id of ids) {
    await room.join(id);
    await room.until(() => room.votersAre([...room.present]), `${id} promoted to voter`);
  }
  return room;
}

describe('RoomMembership: bootstrapping and growing a room', () => {
  it('the first peer bootstraps alone and leads; the second and third are added as learners, then promoted', async () => {
    const room = new Room();
    const a = await room.join('a');
    await room.until(() => room.node('a').isLeader, 'a leads its one-voter cluster');
    assert.equal(a.bootstraps, 1, 'a bootstrapped once');
    assert.deepEqual(room.node('a').status().conf.voters, ['a'], 'a is the only voter');
    await room.join('b');
    await room.until(() => room.votersAre(['a', 'b']), 'b promoted');
    await room.join('c');
    await room.until(() => room.votersAre(['a', 'b', 'c']), 'c promoted');
    assert.deepEqual(a.changes, [
      { type: 'addLearner', node: 'b' }, { type: 'promote', node: 'b' },
      { type: 'addLearner', node: 'c' }, { type: 'promote', node: 'c' },
    ], 'each newcomer went through learner to voter, one change at a time');
    for (const id of ['b', 'c']) assert.equal(room.peers.get(id)!.bootstraps, 0, `${id} did not bootstrap`);
    await room.close();
  });

  it('a late joiner receives the whole chat history', async () => {
    const room = await roomOf(['a', 'b']);
    await chat(room, 'b', ['hi', 'there']);
    await room.join('c');
    await room.until(() => room.votersAre(['a', 'b', 'c']), 'c promoted');
    await chat(room, 'c', ['late']);
    await room.until(() => room.live().every((p) => p.chat.log.length === 3), 'everyone applied 3 messages');
    for (const p of room.live()) assert.deepEqual(p.chat.log, ['hi', 'there', 'late'], `${p.id} has the whole history`);
    await room.close();
  });

  it('peers that join at the same moment form one cluster, founded by the lowest id', async () => {
    const room = new Room();
    // Each saw the others in the presence list; their channels open only after all started.
    for (const id of ['c', 'a', 'b']) await room.start(id, ['a', 'b', 'c'].filter((x) => x !== id));
    for (const id of ['a', 'b', 'c']) room.mesh.connectAll(id);
    await room.until(() => room.votersAre(['a', 'b', 'c']), 'one cluster of three');
    for (const p of room.live()) assert.equal(p.bootstraps, p.id === 'a' ? 1 : 0, `only a bootstrapped (${p.id}: ${p.bootstraps})`);
    await chat(room, 'c', ['one cluster']);
    await room.close();
  });

  it('peers that know nothing of each other at join (no presence list) still form one cluster after the timeout', async () => {
    const room = new Room();
    for (const id of ['b', 'c', 'a']) await room.start(id, null);
    for (const id of ['a', 'b', 'c']) room.mesh.connectAll(id);
    await room.until(() => room.votersAre(['a', 'b', 'c']), 'one cluster of three');
    assert.equal(room.live().reduce((n, p) => n + p.bootstraps, 0), 1, 'exactly one peer bootstrapped');
    await room.close();
  });

  it('a waiting peer whose founder vanished before adding it bootstraps once its presence left', async () => {
    const room = new Room();
    // b saw a in the presence list, but a never opens a channel: it is leaving while b joins.
    const b = await room.join('b', ['a']);
    await room.timers.advance(2000);
    assert.equal(b.membership.state, 'fresh', 'b waits for a as long as a is in the room: a may be a member');
    room.mesh.leave('a');
    await room.until(() => room.node('b').isLeader, 'b founds the cluster once a has left');
    assert.equal(b.bootstraps, 1, 'b bootstrapped once, replacing its waiting node');
    await chat(room, 'b', ['alone']);
    await room.close();
  });
});

describe('RoomMembership: peers going away', () => {
  it('a leaving leader hands over, is removed, and the chat continues with nothing committed lost', async () => {
    const room = await roomOf(['a', 'b', 'c']);
    await chat(room, 'b', ['m1', 'm2', 'm3']);
    const leader = room.leader()!;
    const leaving = room.peers.get(leader)!;
    const before = [...leaving.chat.log];
    let outcome: Awaited<ReturnType<RoomMembership['leave']>> | null = null;
    void leaving.membership.leave().then((o) => { outcome = o; });
    await room.until(() => outcome !== null, 'leave() finished');
    assert.ok(outcome!.transferredTo !== null && outcome!.transferredTo !== leader, `leadership handed over (to ${outcome!.transferredTo})`);
    assert.ok(outcome!.removed, 'the old leader saw itself removed before closing');
    room.mesh.leave(leader);
    room.present.delete(leader);
    const rest = ['a', 'b', 'c'].filter((x) => x !== leader);
    await room.until(() => room.votersAre(rest), 'two voters remain');
    const speaker = rest[0]!;
    await chat(room, speaker, ['after']);
    await room.until(() => room.live().every((p) => p.chat.log.length === 4), 'both survivors applied 4 messages');
    for (const p of room.live()) assert.deepEqual(p.chat.log, [...before, 'after'], `${p.id} kept every committed message`);
    await room.close();
  });

  it('a follower that leaves is removed at once, without waiting for the grace period', async () => {
    const room = await roomOf(['a', 'b', 'c'], { graceMs: FOREVER });
    const follower = ['a', 'b', 'c'].find((x) => x !== room.leader())!;
    let outcome: Awaited<ReturnType<RoomMembership['leave']>> | null = null;
    void room.peers.get(follower)!.membership.leave().then((o) => { outcome = o; });
    await room.until(() => outcome !== null, 'leave() finished');
    assert.deepEqual(outcome, { transferredTo: null, removed: true }, 'removed, nothing to hand over');
    await room.close();
  });

  it('a peer whose presence leaves is removed without waiting for the grace period', async () => {
    const room = await roomOf(['a', 'b', 'c'], { graceMs: FOREVER });
    const gone = ['a', 'b', 'c'].find((x) => x !== room.leader())!;
    await room.peers.get(gone)!.membership.close();
    room.mesh.leave(gone);
    room.present.delete(gone);
    await room.until(() => room.votersAre([...room.present]), `${gone} removed`);
    const l = room.leader()!;
    assert.deepEqual(room.peers.get(l)!.changes.at(-1), { type: 'remove', node: gone, why: 'left' }, 'removed because it left');
    await room.close();
  });

  it('a peer unreachable past the grace period is removed; one that comes back in time is kept', async () => {
    const room = await roomOf(['a', 'b', 'c']);
    const leader = room.leader()!;
    const [x, y] = ['a', 'b', 'c'].filter((p) => p !== leader) as [string, string];
    // x blinks: back well within the grace period.
    room.mesh.isolate(x, 'failed');
    await room.timers.advance(GRACE / 2);
    room.mesh.connectAll(x);
    await room.timers.advance(GRACE);
    assert.ok(room.votersAre(['a', 'b', 'c']), `${x} kept its place after coming back in time`);
    // y's network dies for good.
    room.mesh.isolate(y, 'failed');
    await room.timers.advance(GRACE / 2);
    assert.ok(room.node(leader).status().conf.voters.includes(y), `${y} is kept during the grace period`);
    await room.until(() => !room.node(leader).status().conf.voters.includes(y), `${y} removed after the grace period`);
    assert.deepEqual(room.peers.get(leader)!.changes.at(-1), { type: 'remove', node: y, why: 'unreachable' }, 'removed as unreachable');
    await chat(room, x, ['two left']);
    await room.close();
  });

  it('a removed peer whose network comes back is added again and catches up', async () => {
    const room = await roomOf(['a', 'b', 'c']);
    const leader = room.leader()!;
    const y = ['a', 'b', 'c'].find((p) => p !== leader)!;
    room.mesh.isolate(y, 'failed');
    await room.until(() => !room.node(leader).status().conf.voters.includes(y), `${y} removed`);
    await chat(room, leader, ['while away']);
    room.mesh.connectAll(y);
    await room.until(() => room.votersAre(['a', 'b', 'c']), `${y} is a voter again`);
    await room.until(() => room.peers.get(y)!.chat.log.includes('while away'), `${y} caught up`);
    await room.close();
  });
});

describe('RoomMembership: a room that loses its majority at once', () => {
  it('when the majority closed for good, the survivor commits nothing and a newcomer waits rather than found a second cluster', async () => {
    const room = await roomOf(['a', 'b', 'c']);
    await chat(room, 'b', ['kept']);
    const survivor = room.leader()!;
    const gone = ['a', 'b', 'c'].filter((p) => p !== survivor);
    for (const g of gone) {
      await room.peers.get(g)!.membership.close();
      room.mesh.leave(g);
      room.present.delete(g);
    }
    const commit = room.node(survivor).status().commit;
    let outcome: unknown = null;
    room.node(survivor).propose('lost cause').then(() => { outcome = 'committed'; }, (e: unknown) => { outcome = e; });
    const d = await room.join('d');
    await room.timers.advance(10 * GRACE);
    assert.equal(room.node(survivor).status().commit, commit, 'nothing committed without a majority');
    assert.ok(outcome instanceof TimeoutError, 'the proposal timed out');
    assert.deepEqual(room.peers.get(survivor)!.chat.log, ['kept'], 'the committed history is intact');
    assert.equal(d.membership.state, 'fresh', 'the newcomer waits for the existing cluster');
    assert.equal(d.bootstraps, 0, 'the newcomer did not found a second cluster');
    await room.close();
  });

  it('forceReset: the survivor of a majority gone for good continues alone from its state, and newcomers join it', async () => {
    const room = await roomOf(['a', 'b', 'c']);
    await chat(room, 'b', ['kept 1', 'kept 2']);
    const survivor = room.leader()!;
    const s = room.peers.get(survivor)!;
    await assert.rejects(s.membership.forceReset(s.chat.snapshot()), RoomMembershipStateError, 'refused while the others are connected');
    for (const g of ['a', 'b', 'c'].filter((p) => p !== survivor)) {
      await room.peers.get(g)!.membership.close();
      room.mesh.leave(g);
      room.present.delete(g);
    }
    await room.timers.advance(10 * TICK * 10);
    assert.equal(room.node(survivor).leader, null, 'stuck: no leader without a majority');
    await s.membership.forceReset(s.chat.snapshot());
    await room.until(() => room.node(survivor).isLeader, 'the survivor leads its new cluster');
    assert.deepEqual(room.node(survivor).status().conf.voters, [survivor], 'it is the only voter');
    assert.equal(s.bootstraps, 2, 'it founded twice: the room, then the reset');
    await chat(room, survivor, ['after reset']);
    await room.join('d');
    await room.until(() => room.votersAre([survivor, 'd']), 'the newcomer was added and promoted');
    await room.until(() => room.peers.get('d')!.chat.log.length === 3, 'the newcomer received the history');
    assert.deepEqual(room.peers.get('d')!.chat.log, ['kept 1', 'kept 2', 'after reset'], 'the history carried through the reset');
    await room.close();
  });

  it('the survivor commits nothing and loses nothing; when one peer comes back the room recovers', async () => {
    const room = await roomOf(['a', 'b', 'c']);
    await chat(room, 'a', ['before 1', 'before 2']);
    const survivor = room.leader()!;
    const [x, y] = ['a', 'b', 'c'].filter((p) => p !== survivor) as [string, string];
    const committed = [...room.peers.get(survivor)!.chat.log];
    // Two of three go dark together.
    room.mesh.isolate(x, 'failed');
    room.mesh.isolate(y, 'failed');
    let outcome: unknown = null;
    room.node(survivor).propose('during').then(() => { outcome = 'committed'; }, (e: unknown) => { outcome = e; });
    const commitBefore = room.node(survivor).status().commit;
    // Far past the grace period: the survivor tries to remove the dead, which needs the quorum it lacks.
    await room.timers.advance(4 * GRACE);
    const st = room.node(survivor).status();
    assert.equal(st.commit, commitBefore, 'no entry committed without a majority');
    assert.ok(outcome instanceof TimeoutError, 'the proposal made during the outage timed out (outcome unknown)');
    assert.deepEqual(room.peers.get(survivor)!.chat.log, committed, 'nothing applied, nothing lost');
    assert.ok(st.conf.voters.length >= 2, 'the survivor could not shrink the configuration to itself');
    // x's network comes back: with the survivor it is a majority again.
    room.mesh.connect(survivor, x);
    await room.until(() => {
      const l = room.node(survivor).leader;
      return l !== null && l === room.node(x).leader;
    }, 'a leader again');
    await chat(room, survivor, ['after']);
    await room.until(() => !room.node(survivor).status().conf.voters.includes(y), `${y}, still unreachable, removed`);
    for (const id of [survivor, x]) {
      const log = room.peers.get(id)!.chat.log;
      assert.deepEqual(log.slice(0, committed.length), committed, `${id} kept everything committed before the outage`);
      assert.ok(log.includes('after'), `${id} applied the message written after recovery`);
      assert.ok(log.filter((m) => m === 'during').length <= 1, `${id} applied the timed-out message at most once`);
    }
    await room.close();
  });
});

/**
 * One randomized run: peers join, leave gracefully, lose their network for a while and chat, in a seeded
 * order. At the end every network heals; the room must settle into one cluster of everyone present, every
 * committed message must be on every present peer exactly once, and all applied logs ever seen (departed
 * peers' too) must be prefixes of each other.
 */
async function randomRun(seed: number): Promise<void> {
  const members = (peers: Peer[]): number => peers.filter((p) => p.membership.state === 'member').length;
  const rnd = new Rng(seed);
  const room = new Room();
  const committed: string[] = [];
  const offline = new Set<string>();
  const busy = new Set<string>();
  let next = 0;
  const spawn = async (): Promise<void> => {
    const id = `p${next++}`;
    await room.join(id);
    // Links to offline peers stay down until they heal.
    for (const o of offline) room.mesh.disconnect(id, o, 'failed');
  };
  await spawn();
  for (let step = 0; step < 40; step++) {
    const live = room.live().filter((p) => !busy.has(p.id));
    const pick = live[rnd.int(live.length)];
    const r = rnd.int(100);
    if (r < 20 && room.present.size < 6) {
      await spawn();
    } else if (r < 30 && pick && offline.size === 0 && (pick.membership.state !== 'member' || members(live) > 1)) {
      // Only with every network up, and never the last member: a leave while another member is
      // unreachable can take the room's majority with it for good, and a room whose members all left
      // starts a new history (both are covered above and in docs/rtc-raft.md); here every loss must heal.
      busy.add(pick.id);
      void pick.membership.leave().then(() => {
        room.mesh.leave(pick.id);
        room.present.delete(pick.id);
        busy.delete(pick.id);
      });
    } else if (r < 45 && pick && !offline.has(pick.id) && busy.size === 0) {
      offline.add(pick.id);
      room.mesh.isolate(pick.id, 'failed');
    } else if (r < 60 && offline.size > 0) {
      const back = [...offline][rnd.int(offline.size)]!;
      offline.delete(back);
      for (const p of room.present) if (p !== back && !offline.has(p)) room.mesh.connect(back, p);
    } else if (pick && pick.membership.node) {
      const text = `s${seed}.m${step}`;
      pick.membership.node.propose(text).then(() => { committed.push(text); }, () => {});
    }
    await room.timers.advance(10 + rnd.int(4) * 100);
  }
  for (const o of offline) for (const p of room.present) if (p !== o) room.mesh.connect(o, p);
  offline.clear();
  await room.until(() => busy.size === 0, 'every leave() finished', 60_000);
  try {
    await room.until(() => room.votersAre([...room.present]), `one cluster of ${[...room.present].join(',')}`, 60_000);
  } catch (err) {
    // What each peer believes is what a failure here needs to be understood.
    for (const p of room.live()) {
      const st = p.membership.node!.status();
      console.error(`${p.id}: ${p.membership.state} ${st.role} leader=${st.leader} term=${st.term} conf=${JSON.stringify(st.conf)} commit=${st.commit}`);
    }
    throw err;
  }
  const last = `s${seed}.final`;
  await chat(room, room.live()[0]!.id, [last]);
  await room.until(() => room.live().every((p) => p.chat.log.includes(last)), 'every present peer applied the final message', 60_000);
  for (const p of room.live()) {
    for (const m of committed) assert.equal(p.chat.log.filter((x) => x === m).length, 1, `${p.id} has committed ${m} exactly once`);
  }
  assertPrefixes([...room.peers.values()].map((p) => ({ id: p.id, log: p.chat.log })));
  await room.close();
}

describe('RoomMembership: randomized joins, leaves and network failures', () => {
  const base = process.env.SEED !== undefined && process.env.SEED !== '' ? Number(process.env.SEED) : 1;
  const runs = process.env.SEED ? 1 : 12;
  for (let i = 0; i < runs; i++) {
    const seed = base + i;
    it(`seed ${seed}: one cluster, no committed message lost, applied logs are prefixes of each other`, async () => {
      try {
        await randomRun(seed);
      } catch (err) {
        console.error(`randomized room run failed: replay with SEED=${seed}`);
        throw err;
      }
    });
  }
});
