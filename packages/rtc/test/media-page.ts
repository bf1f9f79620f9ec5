/**
 * The page of `chromium-media.test.ts`, bundled by that test: a bare `WebRTCManager` (the browser's own
 * RTCPeerConnection and WebSocket) with camera and microphone from Chromium's fake devices. Exposed as
 * `window.mediaTest`.
 * @module
 */
import { WebRTCManager } from '../src/index.ts';

/** What the test passes to {@link MediaTestApi.join}: the token endpoint's answer. */
export interface MediaJoin {
  url: string;
  room: string;
  peerId: string;
  token: string;
  subscriptionToken: string;
}

/** A remote stream as the page sees it: its tracks and whether its video decodes. */
export interface RemoteStream {
  peer: string;
  kinds: string[];
  /** `videoWidth` of a `<video>` playing the stream: non-zero once frames decode. */
  videoWidth: number;
  /** Each track's kind, `muted` and `readyState`, for failure messages. */
  tracks: string[];
}

/** The page's state for the test. */
export interface MediaSnapshot {
  connected: string[];
  streams: RemoteStream[];
  messages: string[];
  collisions: number;
  errors: string[];
}

/** `window.mediaTest`. */
export interface MediaTestApi {
  join(j: MediaJoin): Promise<void>;
  enable(video: boolean, audio: boolean): Promise<void>;
  send(peer: string, text: string): boolean;
  snapshot(): MediaSnapshot;
  debug(peer: string): Promise<string[]>;
}

let manager: WebRTCManager | null = null;
const streams = new Map<string, { stream: MediaStream; video: HTMLVideoElement }>();
const messages: string[] = [];
const errors: string[] = [];

const api: MediaTestApi = {
  async join(j) {
    const log = (msg: string, f?: Record<string, unknown>) => console.log(`${performance.now().toFixed(0)} ${msg} ${JSON.stringify(f ?? {})}`);
    const m = new WebRTCManager(j.peerId, { logger: { debug: log, info: log, warn: (msg, f) => errors.push(`${msg} ${JSON.stringify(f)}`) } });
    manager = m;
    m.setOnMessage((_from, text) => messages.push(text));
    m.setOnStream((peer, stream) => {
      const video = document.createElement('video');
      video.muted = true;
      video.autoplay = true;
      video.srcObject = stream;
      document.body.append(video);
      video.play().catch((e: unknown) => errors.push(`play: ${String(e)}`));
      streams.set(peer, { stream, video });
    });
    await m.connectToCentrifugo(j.url, j.room, { token: j.token, subscriptionToken: j.subscriptionToken });
  },
  async enable(video, audio) {
    await Promise.all([manager!.enableVideo(video), manager!.enableAudio(audio)]);
  },
  send: (peer, text) => manager!.sendMessage(peer, text),
  async debug(peer: string) {
    const pc = manager!.peerConnection(peer)!;
    const tr = pc.getTransceivers().map((t) => `${t.mid}:${t.receiver.track.kind}:${t.direction}/${t.currentDirection}:send=${t.sender.track?.id.slice(0, 4) ?? '-'}:recv=${t.receiver.track.id.slice(0, 4)}`);
    const stats: string[] = [];
    (await pc.getStats()).forEach((r: { type: string; mid?: string; kind?: string; packetsReceived?: number; packetsSent?: number }) => {
      if (r.type === 'inbound-rtp') stats.push(`in ${r.kind} mid=${r.mid} pkts=${r.packetsReceived}`);
      if (r.type === 'outbound-rtp') stats.push(`out ${r.kind} mid=${r.mid} pkts=${r.packetsSent}`);
    });
    return [...tr, ...stats, `streams ${[...streams.values()].map((s) => s.stream.getTracks().map((t) => t.id.slice(0, 4)).join('+')).join(' ')}`];
  },
  snapshot: () => ({
    connected: manager?.connectedPeers() ?? [],
    streams: [...streams].map(([peer, s]) => ({
      peer,
      kinds: s.stream.getTracks().map((t) => t.kind).sort(),
      videoWidth: s.video.videoWidth,
      tracks: s.stream.getTracks().map((t) => `${t.kind}:${t.muted ? 'muted' : 'live'}:${t.readyState}`),
    })),
    messages: [...messages],
    collisions: manager?.stats().collisions ?? 0,
    errors: [...errors],
  }),
};

(globalThis as unknown as { mediaTest: MediaTestApi }).mediaTest = api;
