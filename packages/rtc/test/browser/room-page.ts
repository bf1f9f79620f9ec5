/**
 * The room page of the Chromium tests and the rtc benchmark, bundled by `harness.ts` and served by the real
 * `@raftrtc/server` (its `fallback`). It joins a room the way the app will: a token from
 * `POST /api/rooms/:room/token`, a `WebRTCManager` through `connectToCentrifugo`, then MeshHub +
 * WebRtcTransport + RaftNode + RoomMembership wired exactly as `raft-webrtc.test.ts` does in Node.js. Its
 * state and a few actions are exposed as `window.raftRoom` (see `room-api.ts`). Opened as
 * `/?room=<room>&name=<name>` it joins by itself, with Raft, for poking at by hand.
 * @module
 */
import { MemoryStorage, RaftNode } from '@raftrtc/raft';
import type { TokenResponse } from '@raftrtc/server'; // a type only: nothing of the server is bundled
import { DEFAULT_LIMITS, MeshHub, RoomMembership, WebRTCManager } from '../../src/index.ts';
import type { JoinOptions, JoinTimeline, RoomPageApi, RoomSnapshot, RoomWindow } from './room-api.ts';
import { Chat, type ChatNode } from '../chat-fixture.ts';


/** Ping and pong on the Raft slot of mesh-only pages (no Raft node there to mistake them for its own). */
interface Ping { ping: number; pad: string }
interface Pong { pong: number; pad: string }

const clock = (): number => performance.timeOrigin + performance.now();
const errorText = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

let manager: WebRTCManager | null = null;
let membership: RoomMembership<ChatNode> | null = null;
let chat = new Chat();
let peerId: string | null = null;
const errors: string[] = [];
const timeline: JoinTimeline = { startedAt: 0, subscribedAt: null, openedAt: {} };

let payload = new Uint8Array(0);
const pongWaiters = new Map<number, () => void>();
const fileWaiters = new Map<number, () => void>();

async function requestToken(room: string, name: string): Promise<TokenResponse> {
  const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, create: true }),
  });
  if (!res.ok) throw new Error(`token request answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as TokenResponse;
}

function connected(): WebRTCManager {
  if (!manager) throw new Error('join first');
  return manager;
}

async function join({ room, name, raft }: JoinOptions): Promise<{ peerId: string }> {
  if (manager) throw new Error('this page already joined');
  timeline.startedAt = clock();
  const t = await requestToken(room, name);
  peerId = t.peerId;
  // Default limits: the transport sends long Raft messages in fragments that fit Chromium's 256 KiB messages.
  const m = new WebRTCManager(t.peerId);
  manager = m;
  // The hub takes over the manager's Raft-slot and peer callbacks, so it exists before signaling starts.
  const h = new MeshHub(m);
  h.on('connected', (peer) => { timeline.openedAt[peer] ??= clock(); });
  m.setOnFile((from, file) => { m.sendMessage(from, JSON.stringify({ received: file.id, size: file.size })); });
  m.setOnMessage((_from, content) => {
    const { received } = JSON.parse(content) as { received: number };
    fileWaiters.get(received)?.();
  });
  if (!raft) {
    h.on('raft', (from, message) => {
      const p = message as Partial<Ping & Pong>;
      if (typeof p.ping === 'number') m.sendRaftMessage(from, { pong: p.ping, pad: p.pad ?? '' } satisfies Pong);
      else if (typeof p.pong === 'number') pongWaiters.get(p.pong)?.();
    });
  }
  await m.connectToCentrifugo(t.url, room, { token: t.token, subscriptionToken: t.subscriptionToken, iceServers: t.iceServers as RTCIceServer[] });
  timeline.subscribedAt = clock();
  if (!raft) return { peerId: t.peerId };

  const id = t.peerId;
  membership = new RoomMembership<ChatNode>({
    id, hub: h, peersAtJoin: m.peers().map((p) => p.id),
    createNode: ({ voters, transport }) => {
      chat = new Chat();
      // 50 ms ticks (elections after 0.5-1 s of silence): several pages share two cores, and a renderer that
      // misses a few 20 ms ticks under that load would start needless elections. Proposals wait up to 20 s
      // (default 2.5 s here): a guard against hangs on a loaded machine, not a latency bound.
      const node = new RaftNode<string, number>({
        id, voters, transport, storage: new MemoryStorage(), stateMachine: chat, tickMs: 50, electionTicks: 10, proposalTimeoutMs: 20_000,
      });
      node.on('error', (e) => errors.push(`node: ${errorText(e)}`));
      return node;
    },
  });
  membership.on('error', (e) => errors.push(`membership: ${errorText(e)}`));
  await membership.start();
  return { peerId: id };
}

function snapshot(): RoomSnapshot {
  const node = membership?.node ?? null;
  const st = node?.status() ?? null;
  const t = membership?.transport?.stats;
  return {
    peerId,
    membership: membership?.state ?? null,
    role: st?.role ?? null,
    leader: st?.leader ?? null,
    term: st?.term ?? 0,
    commit: st?.commit ?? 0,
    voters: st ? [...st.conf.voters] : [],
    learners: st ? [...st.conf.learners] : [],
    connected: manager?.connectedPeers() ?? [],
    links: Object.fromEntries((manager?.peers() ?? []).map((p) => [p.id, `${p.state}/${p.connectionState}`])),
    applied: [...chat.log],
    refused: (manager?.stats().droppedTotal ?? 0) + (t ? t.malformed + t.oversized + t.misaddressed + t.incomplete : 0) + (membership?.stats.refused ?? 0),
    fragmented: t?.fragmented ?? 0,
    errors: [...errors],
  };
}

async function propose(text: string): Promise<void> {
  const node = membership?.node;
  if (!node) throw new Error('no Raft node: join with raft first');
  await node.propose(text);
}

async function ping(peer: string, samples: number, warmup: number, padBytes: number): Promise<number[]> {
  const m = connected();
  const pad = 'x'.repeat(padBytes);
  const rtts: number[] = [];
  for (let seq = 0; seq < warmup + samples; seq++) {
    const answered = new Promise<void>((resolve) => pongWaiters.set(seq, resolve));
    const t0 = performance.now();
    if (!m.sendRaftMessage(peer, { ping: seq, pad } satisfies Ping)) throw new Error(`${peer} is not connected`);
    await answered;
    if (seq >= warmup) rtts.push(performance.now() - t0);
    pongWaiters.delete(seq);
  }
  return rtts;
}

function makePayload(bytes: number): void {
  payload = new Uint8Array(bytes);
  // getRandomValues fills at most 64 KiB per call. Random bytes: nothing on the way may compress them.
  for (let at = 0; at < bytes; at += 65_536) crypto.getRandomValues(payload.subarray(at, Math.min(bytes, at + 65_536)));
}

async function sendFileTimed(peer: string): Promise<number> {
  const m = connected();
  // The receiver reports the file by its id, which sendFile tells only when it resolves; the report cannot
  // come before the last chunk was handed over, so the first progress call (after the first chunk) is in time.
  const wait: { received?: Promise<void> } = {};
  const t0 = performance.now();
  const { id } = await m.sendFile(peer, payload, 'bench.bin', {
    onProgress: (p) => { wait.received ??= new Promise<void>((resolve) => fileWaiters.set(p.id, resolve)); },
  });
  if (!wait.received) throw new Error('sendFile reported no progress: the payload is empty');
  await wait.received;
  fileWaiters.delete(id);
  return performance.now() - t0;
}

interface Bare {
  pc: RTCPeerConnection;
  channel: RTCDataChannel;
  opened: Promise<void>;
  /** Set while this side waits for the receiver's report. */
  onDone: (() => void) | null;
}
let bare: Bare | null = null;

function makeBare(): Bare {
  const pc = new RTCPeerConnection({ iceServers: [] });
  // Negotiated, so both sides have it at once; ordered and reliable like the manager's bulk channel.
  const channel = pc.createDataChannel('bare', { negotiated: true, id: 0 });
  channel.binaryType = 'arraybuffer';
  const opened = new Promise<void>((resolve) => channel.addEventListener('open', () => resolve(), { once: true }));
  const b: Bare = { pc, channel, opened, onDone: null };
  // A text frame announces how many bytes follow; the receiver reports `done` on the same channel.
  let expected = 0;
  let received = 0;
  channel.onmessage = (e: MessageEvent<string | ArrayBuffer>) => {
    if (typeof e.data === 'string') {
      if (e.data === 'done') b.onDone?.();
      else { expected = Number(e.data); received = 0; }
      return;
    }
    received += e.data.byteLength;
    if (received === expected) channel.send('done');
  };
  return b;
}

/** The local description once ICE gathering completed: no trickling to relay for a one-off connection. */
async function gathered(pc: RTCPeerConnection): Promise<string> {
  if (pc.iceGatheringState !== 'complete') {
    await new Promise<void>((resolve) => pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    }));
  }
  return pc.localDescription!.sdp;
}

async function bareOffer(): Promise<string> {
  bare = makeBare();
  await bare.pc.setLocalDescription(await bare.pc.createOffer());
  return gathered(bare.pc);
}

async function bareAnswer(offerSdp: string): Promise<string> {
  bare = makeBare();
  await bare.pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
  await bare.pc.setLocalDescription(await bare.pc.createAnswer());
  return gathered(bare.pc);
}

async function bareAccept(answerSdp: string): Promise<void> {
  if (!bare) throw new Error('bareOffer first');
  await bare.pc.setRemoteDescription({ type: 'answer', sdp: answerSdp });
  await bare.opened;
}

async function bareOpen(): Promise<void> {
  if (!bare) throw new Error('bareAnswer first');
  await bare.opened;
}

async function bareSendTimed(): Promise<number> {
  if (!bare) throw new Error('no bare channel');
  const b = bare;
  const { channel } = b;
  // The manager's own file-sending parameters, so the comparison is of everything else it does.
  const chunk = DEFAULT_LIMITS.fileChunkBytes;
  channel.bufferedAmountLowThreshold = DEFAULT_LIMITS.bulkLowWaterBytes;
  const done = new Promise<void>((resolve) => { b.onDone = resolve; });
  const t0 = performance.now();
  channel.send(String(payload.byteLength));
  for (let at = 0; at < payload.byteLength; at += chunk) {
    if (channel.bufferedAmount > DEFAULT_LIMITS.bulkHighWaterBytes) {
      await new Promise<void>((resolve) => channel.addEventListener('bufferedamountlow', () => resolve(), { once: true }));
    }
    channel.send(payload.subarray(at, Math.min(payload.byteLength, at + chunk)));
  }
  await done;
  b.onDone = null;
  return performance.now() - t0;
}

const api: RoomPageApi = {
  join, snapshot, propose, timeline: () => structuredClone(timeline), ping, makePayload, sendFileTimed,
  bareOffer, bareAnswer, bareAccept, bareOpen, bareSendTimed,
};
(globalThis as RoomWindow).raftRoom = api;

const params = new URLSearchParams(location.search);
const room = params.get('room');
const name = params.get('name');
if (room && name) {
  join({ room, name, raft: true }).catch((e: unknown) => errors.push(`join: ${errorText(e)}`));
}
