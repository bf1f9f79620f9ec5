/**
 * `RaftManager` runs the WebRTC+RAFT document's own flow: managers wired to each other only through their
 * send callbacks (a fake data channel carrying `{ type: 'raft', message }` as JSON text, delivered
 * asynchronously), peers added when "the channel opens", a leader elected, `appendEntry` on the leader and
 * on a follower (forwarded, the seed's `client-message`), and the same committed log on every peer. Fake
 * timers: every wait is bounded in ticks.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RaftManager, RaftManagerStateError, type LogEntry, type NodeState } from '../src/facades/raft-manager.js';
import { MemoryStorage } from '../src/node/memory-storage.js';
import type { Storage } from '../src/node/storage.js';
import { FakeTimers } from './helpers/fake-timers.js';

const TICK = 10;
const ELECTION_TICKS = 10;
const MAX_TICKS = 50 * ELECTION_TICKS;

interface ChatMessage { type: 'message'; content: string; sender: string }

/** A room of managers whose only link is a fake data channel per pair; `open` decides which channels work. */
class Room {
  readonly clock = new FakeTimers();
  readonly managers = new Map<string, RaftManager<ChatMessage>>();
  readonly seen = new Map<string, LogEntry<ChatMessage>[]>();
  readonly states: string[] = [];
  readonly errors: unknown[] = [];
  /** Closed channels: no message crosses them. */
  readonly down = new Set<string>();

  create(id: string, join = false, storage?: Storage): RaftManager<ChatMessage> {
    const i = this.managers.size;
    const m = new RaftManager<ChatMessage>(id, {
      timers: this.clock, tickMs: TICK, electionTicks: ELECTION_TICKS, join, ...(storage ? { storage } : {}),
      // Staggered election timeouts: nodes on one fake clock would otherwise split votes.
      random: () => ((i % 4) + 0.5) / 5,
    });
    this.seen.set(id, []);
    m.setOnSendMessage((peerId, message) => {
      // The seed's sendRaftMessage: JSON over the data channel, delivered later, never inside send.
      const text = JSON.stringify({ type: 'raft', message });
      if (this.down.has(id) || this.down.has(peerId)) return;
      queueMicrotask(() => {
        const envelope = JSON.parse(text) as { type: string; message: unknown };
        if (envelope.type === 'raft') this.managers.get(peerId)?.handleMessage(envelope.message as never);
      });
    });
    m.setOnStateChange((state: NodeState, leader) => this.states.push(`${id}:${state}:${leader}`));
    m.setOnLogEntry((entry) => this.seen.get(id)!.push(entry));
    m.setOnError((err) => this.errors.push(err));
    this.managers.set(id, m);
    return m;
  }

  live(): RaftManager<ChatMessage>[] {
    return [...this.managers.values()].filter((m) => !this.down.has(m.nodeId));
  }

  /** The leader every live manager agrees on, or null. */
  leader(): RaftManager<ChatMessage> | null {
    const live = this.live();
    const leaders = live.filter((m) => m.isLeader());
    if (leaders.length !== 1) return null;
    return live.every((m) => m.getLeaderId() === leaders[0]!.nodeId) ? leaders[0]! : null;
  }

  async until(cond: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < MAX_TICKS && !cond(); i++) await this.clock.advance(TICK);
    assert.ok(cond(), `${what}: not reached within ${MAX_TICKS} ticks`);
  }

  async cleanup(): Promise<void> {
    for (const m of this.managers.values()) await m.cleanup();
    assert.equal(this.clock.pending, 0, 'cleanup() leaves no timer behind');
  }
}

const hello = (sender: string, content = 'Hello World'): ChatMessage => ({ type: 'message', content, sender });
const contents = (log: LogEntry<ChatMessage>[]): string[] => log.map((e) => `${e.data.sender}:${e.data.content}`);

describe('RaftManager (the WebRTC+RAFT document)', () => {
  it('three peers: a leader emerges, appends on leader and follower reach every getLog in one order', async () => {
    const room = new Room();
    const ids = ['A', 'B', 'C'];
    for (const id of ids) room.create(id);
    // "Data channel opened → raft.addPeer(peerId)": every peer learns the other two in one go.
    for (const id of ids) for (const other of ids) if (other !== id) room.managers.get(id)!.addPeer(other);
    try {
      await room.until(() => room.leader() !== null, 'a leader elected');
      const leader = room.leader()!;
      const follower = room.live().find((m) => !m.isLeader())!;
      assert.equal(leader.getState(), 'leader', 'the leader reports state leader');
      assert.equal(follower.getState(), 'follower', 'a follower reports state follower');
      assert.ok(room.states.includes(`${leader.nodeId}:leader:${leader.nodeId}`), `setOnStateChange saw the leader (${room.states.join(', ')})`);

      // The seed's example: only the leader appends directly; a follower's message is forwarded.
      if (leader.isLeader()) void leader.appendEntry(hello(leader.nodeId));
      const fromFollower = follower.appendEntry(hello(follower.nodeId, 'from a follower'));
      let committed: LogEntry<ChatMessage> | null = null;
      void fromFollower.then((e) => { committed = e; });
      await room.until(() => room.live().every((m) => m.getLog().length === 2), 'every peer applied both messages');
      await room.until(() => committed !== null, "the follower's appendEntry resolved");

      const logA = room.managers.get('A')!.getLog();
      for (const m of room.live()) {
        assert.deepEqual(m.getLog(), logA, `${m.nodeId}'s getLog equals A's`);
        assert.deepEqual(room.seen.get(m.nodeId), logA, `${m.nodeId}'s setOnLogEntry saw the same entries in order`);
        assert.ok(m.getCommitIndex() >= logA[1]!.index, `${m.nodeId}'s commit index covers the entries (${m.getCommitIndex()})`);
      }
      assert.deepEqual(contents(logA).sort(), [`${leader.nodeId}:Hello World`, `${follower.nodeId}:from a follower`].sort(), 'both messages, once each');
      assert.ok(logA[0]!.index < logA[1]!.index, 'entries are in index order');
      assert.deepEqual(committed!, logA.find((e) => e.data.sender === follower.nodeId), 'appendEntry resolves with the committed entry');
      assert.deepEqual(room.errors, [], 'no errors reported');
    } finally {
      await room.cleanup();
    }
  });

  it('a peer joins a running room, and the leader leaving is survived (every member calls removePeer)', async () => {
    const room = new Room();
    const ids = ['A', 'B', 'C'];
    for (const id of ids) room.create(id);
    for (const id of ids) for (const other of ids) if (other !== id) room.managers.get(id)!.addPeer(other);
    try {
      await room.until(() => room.leader() !== null, 'a leader elected');
      void room.leader()!.appendEntry(hello('A', 'before D'));
      await room.until(() => room.live().every((m) => m.getLog().length === 1), 'the first message everywhere');

      // D joins: its channels open to everyone, and everyone's to D.
      const d = room.create('D', true);
      for (const id of ids) { room.managers.get(id)!.addPeer('D'); d.addPeer(id); }
      await room.until(() => d.getLog().length === 1, 'D caught up with the log');
      await room.until(() => room.leader() !== null && room.leader()!.raftNode.status().conf.voters.includes('D'), 'D became a voter');
      assert.deepEqual(d.getLog(), room.managers.get('A')!.getLog(), "D's log equals A's");

      // The leader's tab closes: its channels go down, the others call removePeer.
      const old = room.leader()!;
      room.down.add(old.nodeId);
      await old.cleanup();
      for (const m of room.live()) m.removePeer(old.nodeId);
      await room.until(() => room.leader() !== null, 'a new leader among the three left');
      const leader = room.leader()!;
      assert.notEqual(leader.nodeId, old.nodeId, 'a different leader');
      await room.until(() => !room.leader()!.raftNode.status().conf.voters.includes(old.nodeId), 'the old leader removed from the configuration');
      const follower = room.live().find((m) => !m.isLeader())!;
      void follower.appendEntry(hello(follower.nodeId, 'after the leader left'));
      await room.until(() => room.live().every((m) => m.getLog().length === 2), 'the new message everywhere');
      const ref = leader.getLog();
      for (const m of room.live()) assert.deepEqual(m.getLog(), ref, `${m.nodeId}'s log equals the leader's`);
    } finally {
      await room.cleanup();
    }
  });

  it('a peer restarted on its own storage comes back as the member it was, with the committed log', async () => {
    const room = new Room();
    const ids = ['A', 'B', 'C'];
    const disks = new Map(ids.map((id) => [id, new MemoryStorage()]));
    for (const id of ids) room.create(id, false, disks.get(id));
    const connect = (id: string): void => { for (const other of ids) if (other !== id) room.managers.get(id)!.addPeer(other); };
    ids.forEach(connect);
    try {
      await room.until(() => room.leader() !== null, 'a leader elected');
      void room.leader()!.appendEntry(hello('A', 'one'));
      await room.until(() => room.live().every((m) => m.getLog().length === 1), "'one' everywhere");
      const victim = room.live().find((m) => !m.isLeader())!;
      await victim.cleanup();
      room.managers.delete(victim.nodeId);
      void room.leader()!.appendEntry(hello('A', 'two'));
      await room.until(() => room.live().every((m) => m.getLog().length === 2), "'two' on the two left");
      // The restarted tab: the same id and storage; its channels open again.
      const back = room.create(victim.nodeId, false, disks.get(victim.nodeId)!.reopen());
      connect(victim.nodeId);
      await room.until(() => back.getLog().length === 2, 'the restarted peer has the whole log');
      assert.deepEqual(back.getLog(), room.leader()!.getLog(), "the restarted peer's log equals the leader's");
      assert.deepEqual([...room.leader()!.raftNode.status().conf.voters].sort(), ids, 'the configuration is unchanged');
    } finally {
      await room.cleanup();
    }
  });

  it('appendEntry right after addPeer (before the node started) waits for the start instead of failing', async () => {
    const room = new Room();
    const ids = ['A', 'B', 'C'];
    for (const id of ids) room.create(id);
    try {
      for (const id of ids) for (const other of ids) if (other !== id) room.managers.get(id)!.addPeer(other);
      const early = room.managers.get('B')!.appendEntry(hello('B', 'early'));
      let done = false;
      void early.then(() => { done = true; });
      await room.until(() => done && room.live().every((m) => m.getLog().length === 1), "the early message committed everywhere");
      assert.deepEqual(contents(room.managers.get('C')!.getLog()), ['B:early'], 'one entry, once');
      assert.deepEqual(room.errors, [], 'no errors reported');
    } finally {
      await room.cleanup();
    }
  });

  it('appendEntry before start rejects with a typed error; garbage and misaddressed messages are dropped', async () => {
    const room = new Room();
    const m = room.create('A');
    await assert.rejects(m.appendEntry(hello('A')), RaftManagerStateError, 'appendEntry before any peer or start()');
    assert.equal(m.getState(), 'follower', 'a new manager is a follower');
    assert.equal(m.getCommitIndex(), 0, 'nothing committed before start');
    // A lone peer forms a one-node cluster with start().
    await m.start();
    m.handleMessage('not json');
    m.handleMessage('{"type":"Vote","from":"X"}');
    await room.until(() => m.isLeader(), 'the lone node leads');
    const e = m.appendEntry(hello('A'));
    await room.until(() => m.getLog().length === 1, 'the entry committed');
    assert.equal((await e).data.content, 'Hello World', 'appendEntry resolves with the entry');
    await room.cleanup();
    await assert.rejects(m.appendEntry(hello('A')), RaftManagerStateError, 'appendEntry after cleanup');
  });
});
