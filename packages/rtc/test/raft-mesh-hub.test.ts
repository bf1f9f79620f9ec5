/** MeshHub (sharing the mesh's callbacks) and the RoomState message: routing, validation, anti-spoofing. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage, RaftNode, type StateMachine } from '@raftrtc/raft';
import { FakeTimers } from '../../raft/test/helpers/fake-timers.js';
import { MemoryMesh } from '../src/raft/memory-mesh.js';
import { MeshHub, ROOM_STATE_TYPE, validateRoomState, type MeshLink } from '../src/raft/mesh-link.js';
import { RoomMembership } from '../src/raft/room-membership.js';

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

const roomState = (from: string, to: string, extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ type: ROOM_STATE_TYPE, from, to, state: 'fresh', leader: null, voters: [], learners: [], ...extra });

describe('MeshHub', () => {
  it('fans every event out to every listener, even past one that throws', async () => {
    const mesh = new MemoryMesh();
    const hub = new MeshHub(mesh.link('a'));
    new MeshHub(mesh.link('b'));
    const seen: string[] = [];
    hub.on('connected', () => { throw new Error('a buggy listener'); });
    hub.on('connected', (p) => seen.push(`up ${p}`));
    const off = hub.on('disconnected', (p, why) => seen.push(`down ${p} ${why}`));
    mesh.connect('a', 'b');
    await settle();
    mesh.disconnect('a', 'b', 'failed');
    await settle();
    off();
    mesh.connect('a', 'b');
    await settle();
    mesh.disconnect('a', 'b', 'closed');
    await settle();
    assert.deepEqual(seen, ['up b', 'down b failed', 'up b'], 'both connects seen; the removed listener saw only the first disconnect');
  });

  it('tracks open channels and presence leaves, including a leave of a peer never connected', async () => {
    const mesh = new MemoryMesh();
    const hub = new MeshHub(mesh.link('a'));
    new MeshHub(mesh.link('b'));
    mesh.connect('a', 'b');
    await settle();
    assert.deepEqual(hub.connectedPeers(), ['b'], 'b is connected');
    mesh.leave('b');
    mesh.leave('ghost');
    await settle();
    assert.deepEqual(hub.connectedPeers(), [], 'b is gone');
    assert.deepEqual(hub.leftPeers().sort(), ['b', 'ghost'], 'both presence leaves are remembered');
  });

  it('reports why a send did not happen, and never throws', async () => {
    const throwing: MeshLink = {
      sendRaftMessage: () => { throw new RangeError('frame too large'); },
      setOnRaftMessage: () => {}, setOnPeerDisconnected: () => {},
      setOnPeerConnected: (cb) => queueMicrotask(() => cb('b')),
    };
    const hub = new MeshHub(throwing);
    assert.equal(hub.send('b', 'x'), 'not-connected', 'before the channel opens');
    await settle();
    assert.equal(hub.send('b', 'x'), 'refused', 'the mesh threw');
  });

  it('routes RoomState objects to room listeners and the rest to raft listeners; drops what comes before the channel opens', async () => {
    let deliver: ((from: string, m: unknown) => void) | null = null;
    let open: ((p: string) => void) | null = null;
    const link: MeshLink = {
      sendRaftMessage: () => true,
      setOnRaftMessage: (cb) => { deliver = cb; }, setOnPeerDisconnected: () => {}, setOnPeerConnected: (cb) => { open = cb; },
    };
    const hub = new MeshHub(link);
    const raft: unknown[] = [];
    const room: unknown[] = [];
    hub.on('raft', (_f, m) => raft.push(m));
    hub.on('room', (_f, m) => room.push(m));
    deliver!('b', 'too early');
    open!('b');
    deliver!('b', '{"type":"Heartbeat"}');
    deliver!('b', roomState('b', 'a'));
    assert.deepEqual(raft, ['{"type":"Heartbeat"}'], 'raft text went to raft listeners; the early message was dropped');
    assert.equal(room.length, 1, 'the RoomState went to room listeners');
  });
});

describe('RoomState', () => {
  it('validates every field', () => {
    assert.equal(validateRoomState(roomState('a', 'b')), null, 'a well-formed message');
    assert.equal(validateRoomState(roomState('a', 'b', { state: 'member', leader: 'a', voters: ['a', 'b'], learners: ['c'] })), null, 'a member');
    const bad: Array<[unknown, string]> = [
      [null, 'not an object'], [roomState('', 'b'), 'from/to'], [roomState('a', 'b', { state: 'king' }), 'state'],
      [roomState('a', 'b', { leader: 7 }), 'leader'], [roomState('a', 'b', { voters: 'a' }), 'voters/learners'],
      [roomState('a', 'b', { learners: Array.from({ length: 300 }, (_, i) => `p${i}`) }), 'voters/learners'],
    ];
    for (const [m, why] of bad) assert.equal(validateRoomState(m), why, `refused for ${why}`);
  });

  it('a membership refuses and counts malformed, misaddressed and spoofed RoomState messages', async () => {
    const timers = new FakeTimers();
    const mesh = new MemoryMesh();
    const hub = new MeshHub(mesh.link('a'));
    new MeshHub(mesh.link('b'));
    new MeshHub(mesh.link('c'));
    const sm: StateMachine = { apply: () => undefined, snapshot: () => null, restore: () => {} };
    const m = new RoomMembership({
      id: 'a', hub, timers, peersAtJoin: ['b'],
      createNode: ({ voters, transport }) => new RaftNode({ id: 'a', voters, transport, storage: new MemoryStorage(), stateMachine: sm, timers, tickMs: 10 }),
    });
    await m.start();
    mesh.connectAll('a');
    await timers.advance(10);
    mesh.inject('c', 'a', roomState('c', 'a', { state: 'waiting' }));
    mesh.inject('b', 'a', roomState('b', 'a', { state: 'queen' }));
    mesh.inject('b', 'a', roomState('b', 'c'));
    // c speaking for b: were it taken as c's own word, a would think a cluster exists and wait for it.
    mesh.inject('c', 'a', roomState('b', 'a', { state: 'member', leader: 'b', voters: ['b'] }));
    mesh.inject('b', 'a', roomState('b', 'a', { state: 'fresh' }));
    await timers.advance(100);
    assert.equal(m.stats.refused, 3, 'all three refused');
    assert.equal(m.state, 'member', 'a, lowest id among b (fresh) and c (waiting), founded the cluster');
    await m.close();
  });
});
