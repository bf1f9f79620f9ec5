/**
 * Raft over real data channels: Node.js peers (node-datachannel) join a room through the real signaling
 * server, form one cluster with RoomMembership over WebRtcTransport, replicate chat, and survive their leader
 * leaving. Real time: every wait is a hang guard (`waitFor`), never a performance threshold.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { MemoryStorage, RaftNode } from '@raftrtc/raft';
import type { RaftRtcServer } from '@raftrtc/server';
import { WebRTCManager } from '../src/index.ts';
import { MeshHub } from '../src/raft/mesh-link.ts';
import { RoomMembership } from '../src/raft/room-membership.ts';
import { nodeOptions, releaseNodeDataChannel, startSignaling, token, waitFor } from './helpers.ts';
import { Chat, type ChatNode } from './chat-fixture.ts';

after(releaseNodeDataChannel);


interface RoomPeer {
  name: string;
  id: string;
  manager: WebRTCManager;
  membership: RoomMembership<ChatNode>;
  chat: Chat;
}

/** Joins `room` as the app would: hub before signaling, the presence list read once subscribed. */
async function joinRoom(server: RaftRtcServer, room: string, name: string): Promise<RoomPeer> {
  const t = await token(server, room, name);
  // Default mesh limits: large Raft messages must fit them through the transport's fragments.
  const manager = new WebRTCManager(t.peerId, nodeOptions(name));
  const hub = new MeshHub(manager);
  await manager.connectToCentrifugo(t.url, room, { token: t.token, subscriptionToken: t.subscriptionToken, iceServers: t.iceServers as RTCIceServer[] });
  const peer: RoomPeer = { name, id: t.peerId, manager, membership: null as unknown as RoomMembership<ChatNode>, chat: new Chat() };
  peer.membership = new RoomMembership<ChatNode>({
    id: t.peerId, hub, peersAtJoin: manager.peers().map((p) => p.id), graceMs: 3_000,
    createNode: ({ voters, transport }) => {
      peer.chat = new Chat();
      return new RaftNode<string, number>({
        id: t.peerId, voters, transport, storage: new MemoryStorage(), stateMachine: peer.chat, tickMs: 20, electionTicks: 10,
      });
    },
  });
  await peer.membership.start();
  return peer;
}

/** Whether `peers` form one cluster: the same leader, and exactly them as voters, on every peer. */
function oneCluster(peers: readonly RoomPeer[]): boolean {
  const want = peers.map((p) => p.id).sort().join(',');
  const leader = peers[0]!.membership.node?.leader ?? null;
  return leader !== null && peers.every((p) => {
    const n = p.membership.node;
    if (!n || n.leader !== leader) return false;
    const c = n.status().conf;
    return [...c.voters].sort().join(',') === want && c.learners.length === 0;
  });
}

const describeRoom = (peers: readonly RoomPeer[]): string => peers.map((p) => {
  const n = p.membership.node;
  if (!n) return `${p.name}: no node`;
  const st = n.status();
  return `${p.name}: ${p.membership.state} ${st.role} leader=${st.leader} voters=${st.conf.voters.length} learners=${st.conf.learners.length}`;
}).join('; ');

test('three peers over real data channels form one cluster, chat, and survive their leader leaving', async () => {
  const server = await startSignaling();
  const peers: RoomPeer[] = [];
  try {
    for (const name of ['ann', 'bob', 'cyd']) {
      peers.push(await joinRoom(server, 'raft-room', name));
      await waitFor(() => oneCluster(peers), () => `one cluster of ${peers.length} (${describeRoom(peers)})`);
    }
    const [ann, bob, cyd] = peers as [RoomPeer, RoomPeer, RoomPeer];
    assert.equal(peers.filter((p) => p.membership.node!.isLeader).length, 1, 'one leader, elected over data channels');
    assert.equal(ann.membership.state, 'member', 'the first peer founded the cluster and stayed in it');
    await cyd.membership.node!.propose('hello from cyd');
    await bob.membership.node!.propose('hello from bob');
    // Larger than a data channel message may be (and than the mesh's default control frame): sent in fragments.
    const big = `"big" ${'ü✓'.repeat(150_000)}`;
    await bob.membership.node!.propose(big);
    await waitFor(() => peers.every((p) => p.chat.log.length === 3), () => 'every peer to apply the three messages');
    for (const p of peers) assert.deepEqual(p.chat.log, ['hello from cyd', 'hello from bob', big], `${p.name} has the chat in commit order`);
    assert.ok(peers.some((p) => p.membership.transport!.stats.fragmented > 0), 'the big message crossed in fragments');

    const leader = peers.find((p) => p.membership.node!.isLeader)!;
    const outcome = await leader.membership.leave();
    leader.manager.disconnect();
    assert.ok(outcome.transferredTo !== null, `the leaving leader handed over (${JSON.stringify(outcome)})`);
    assert.ok(outcome.removed, 'the leaving leader saw itself removed');
    const rest = peers.filter((p) => p !== leader);
    await waitFor(() => oneCluster(rest), () => `one cluster of the two who stayed (${describeRoom(rest)})`);
    await rest[1]!.membership.node!.propose('after the leader left');
    await waitFor(() => rest.every((p) => p.chat.log.length === 4), () => 'both survivors to apply the fourth message');
    for (const p of rest) assert.deepEqual(p.chat.log, ['hello from cyd', 'hello from bob', big, 'after the leader left'], `${p.name} lost nothing`);
    for (const p of rest) {
      const s = p.manager.stats();
      assert.equal(s.droppedTotal, 0, `${p.name}'s mesh dropped nothing: ${JSON.stringify(s.dropped)}`);
      const t = p.membership.transport!.stats;
      assert.equal(t.malformed + t.oversized + t.misaddressed + t.refused, 0, `${p.name}'s transport refused nothing: ${JSON.stringify(t)}`);
    }
  } finally {
    for (const p of peers) await p.membership.close();
    for (const p of peers) p.manager.disconnect();
    await new Promise((r) => setTimeout(r, 300));
    await server.close();
  }
});

test('a follower whose page closes without leave() is removed when its goodbye arrives, and the chat goes on', async () => {
  const server = await startSignaling();
  const peers: RoomPeer[] = [];
  try {
    for (const name of ['dee', 'eve', 'fay']) {
      peers.push(await joinRoom(server, 'raft-crash', name));
      await waitFor(() => oneCluster(peers), () => `one cluster of ${peers.length} (${describeRoom(peers)})`);
    }
    const gone = peers.find((p) => !p.membership.node!.isLeader)!;
    // The tab closes: the mesh says goodbye (the others see `left`), but the membership never ran leave().
    gone.manager.disconnect();
    await gone.membership.close();
    const rest = peers.filter((p) => p !== gone);
    await waitFor(() => oneCluster(rest), () => `the two who stayed, without ${gone.name} (${describeRoom(rest)})`);
    await rest[0]!.membership.node!.propose('still here');
    await waitFor(() => rest.every((p) => p.chat.log.includes('still here')), () => 'both survivors to apply the message');
  } finally {
    for (const p of peers) await p.membership.close();
    for (const p of peers) p.manager.disconnect();
    await new Promise((r) => setTimeout(r, 300));
    await server.close();
  }
});

test('five peers joining at once over real data channels form one cluster with one leader, and commit in one order', async () => {
  const server = await startSignaling();
  const peers: RoomPeer[] = [];
  try {
    // All at once: the bootstrap rule must still leave exactly one founder.
    peers.push(...await Promise.all(['p1', 'p2', 'p3', 'p4', 'p5'].map((name) => joinRoom(server, 'raft-five', name))));
    await waitFor(() => oneCluster(peers), () => `one cluster of five (${describeRoom(peers)})`);
    assert.equal(peers.filter((p) => p.membership.node!.isLeader).length, 1, 'one leader among five, elected over data channels');
    await Promise.all(peers.map((p, i) => p.membership.node!.propose(`from ${p.name} #${i}`)));
    await waitFor(() => peers.every((p) => p.chat.log.length === 5), () => `every peer to apply five messages (${peers.map((p) => p.chat.log.length).join(',')})`);
    for (const p of peers) assert.deepEqual(p.chat.log, peers[0]!.chat.log, `${p.name} applied the same messages in the same order`);
  } finally {
    for (const p of peers) await p.membership.close();
    for (const p of peers) p.manager.disconnect();
    await new Promise((r) => setTimeout(r, 300));
    await server.close();
  }
});
