// Shared by the mesh tests: a real signaling server on loopback, Node.js peers on node-datachannel, event
// recorders and polling waits. `RTC_DEBUG=1` logs what the managers do.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import nodeDataChannel from 'node-datachannel';
import { RTCPeerConnection as NdcPeerConnection } from 'node-datachannel/polyfill';
import { WebSocket } from 'ws';
import { createServer, type RaftRtcServer, type ServerOptions, type TokenResponse } from '@raftrtc/server';
import {
  WebRTCManager, type DisconnectReason, type Logger, type ReceivedFile, type RTCPeerConnectionConstructor, type WebRTCManagerOptions,
} from '../src/index.ts';

// RTC_DEBUG=2 adds libdatachannel's own log.
if (process.env.RTC_DEBUG === '2') {
  nodeDataChannel.initLogger('Debug', (level, message) => console.error(`${(performance.now() / 1000).toFixed(3)} ndc ${level} ${message}`));
}

/** node-datachannel's polyfill, typed as the DOM constructor it implements. */
export const NodeRTCPeerConnection = NdcPeerConnection as unknown as RTCPeerConnectionConstructor;

/** Starts a signaling server on 127.0.0.1 (an ephemeral port unless `port` is given). */
export async function startSignaling(options: ServerOptions = {}, port = 0): Promise<RaftRtcServer> {
  const server = createServer({ logLevel: 'error', ...options });
  await server.listen(port, '127.0.0.1');
  return server;
}

/** Asks the server for a token to `room` (creating it). */
export async function token(server: RaftRtcServer, room: string, name: string): Promise<TokenResponse> {
  const res = await fetch(`${server.url}/api/rooms/${encodeURIComponent(room)}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, create: true }),
  });
  assert.equal(res.status, 200, `token request for ${name} answered ${res.status}: ${await res.clone().text()}`);
  return (await res.json()) as TokenResponse;
}

function debugLogger(name: string): Partial<Logger> | undefined {
  if (!process.env.RTC_DEBUG) return undefined;
  const line = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
    console.error(`${(performance.now() / 1000).toFixed(3)} ${name} ${level} ${msg} ${fields ? JSON.stringify(fields) : ''}`);
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}

/** Everything a manager reported, in order. */
export interface Recorder {
  connected: string[];
  disconnected: { peer: string; reason: DisconnectReason }[];
  messages: { from: string; content: string }[];
  raft: { from: string; message: unknown }[];
  client: { from: string; message: unknown }[];
  files: { from: string; file: ReceivedFile }[];
}

/** A joined peer: its manager, id, display name and recorder. */
export interface TestPeer {
  name: string;
  id: string;
  manager: WebRTCManager;
  rec: Recorder;
}

/** Options for Node.js peers; timing shortened so recovery tests finish quickly. */
export function nodeOptions(name: string, extra: WebRTCManagerOptions = {}): WebRTCManagerOptions {
  const logger = debugLogger(name);
  return {
    RTCPeerConnection: NodeRTCPeerConnection,
    WebSocket,
    rtcConfiguration: { bindAddress: '127.0.0.1' },
    ...(logger ? { logger } : {}),
    ...extra,
    timing: { connectTimeoutMs: 4_000, disconnectedGraceMs: 1_000, pingIntervalMs: 250, pingTimeoutMs: 4_000, restartBaseDelayMs: 200, ...extra.timing },
  };
}

/** Creates a manager with a recorder attached (not connected yet). */
export function makePeer(id: string, name: string, extra: WebRTCManagerOptions = {}): TestPeer {
  const manager = new WebRTCManager(id, nodeOptions(name, extra));
  const rec: Recorder = { connected: [], disconnected: [], messages: [], raft: [], client: [], files: [] };
  manager.setOnPeerConnected((peer) => rec.connected.push(peer));
  manager.setOnPeerDisconnected((peer, reason) => rec.disconnected.push({ peer, reason }));
  manager.setOnMessage((from, content) => rec.messages.push({ from, content }));
  manager.setOnRaftMessage((from, message) => rec.raft.push({ from, message }));
  manager.setOnClientMessage((from, message) => rec.client.push({ from, message }));
  manager.setOnFile((from, file) => rec.files.push({ from, file }));
  return { name, id, manager, rec };
}

/** Gets a token and joins `room` through the real server. */
export async function joinPeer(server: RaftRtcServer, room: string, name: string, extra: WebRTCManagerOptions = {}): Promise<TestPeer> {
  const t = await token(server, room, name);
  const peer = makePeer(t.peerId, name, extra);
  await peer.manager.connectToCentrifugo(t.url, room, {
    token: t.token, subscriptionToken: t.subscriptionToken, iceServers: t.iceServers as RTCIceServer[],
  });
  return peer;
}

/** Polls `cond` every 10 ms; fails with `what` if it is not true within `timeoutMs` (a hang guard, not a threshold). */
export async function waitFor(cond: () => boolean, what: () => string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Whether every peer's manager has an open control channel to every other peer. */
export function meshComplete(peers: readonly TestPeer[]): boolean {
  return peers.every((p) => peers.every((q) => q === p || p.manager.peerState(q.id) === 'connected'));
}

/** Describes which pairs are not connected yet, for failure messages. */
export function meshReport(peers: readonly TestPeer[]): string {
  return peers.map((p) => `${p.name}: ${peers.filter((q) => q !== p).map((q) => `${q.name}=${p.manager.peerState(q.id)}`).join(' ')}`).join('; ');
}

/** Waits until the mesh among `peers` is complete. */
export async function waitForMesh(peers: readonly TestPeer[]): Promise<void> {
  await waitFor(() => meshComplete(peers), () => `a full mesh (${meshReport(peers)})`);
}

/** SHA-256 of bytes, hex. */
export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Disconnects every peer, closes the server, and releases node-datachannel's threads so the process can exit
 * (after the goodbye linger of the managers' last connections).
 */
export async function shutdown(peers: readonly TestPeer[], server: RaftRtcServer | null): Promise<void> {
  for (const p of peers) p.manager.disconnect();
  await new Promise((r) => setTimeout(r, 300));
  if (server) await server.close();
}

/** Frees node-datachannel once per test file, after every connection is closed. */
export function releaseNodeDataChannel(): void {
  nodeDataChannel.cleanup();
}
