/**
 * What the room page (`room-page.ts`) exposes on `window.raftRoom`, shared by the page and the Node.js side
 * that drives it (the Chromium tests and `bench/rtc.ts`). It names no DOM type, so the bench's own build
 * (`bench/tsconfig.build.json`, Node.js types only) compiles it too.
 *
 * Times called `…At` are milliseconds on the page's wall clock (`performance.timeOrigin + performance.now()`):
 * every page of one browser reads the same machine clock, so they compare across pages.
 * @module
 */

/** How a page joins. */
export interface JoinOptions {
  room: string;
  /** Display name sent with the token request. */
  name: string;
  /**
   * true: run the room's Raft cluster (RoomMembership + WebRtcTransport + RaftNode), as the app does.
   * false: the mesh alone, for the benchmark; the Raft slot then carries its ping/pong instead.
   */
  raft: boolean;
}

/** What a page knows about itself and its room; plain data, so it crosses `page.evaluate`. */
export interface RoomSnapshot {
  peerId: string | null;
  /** The membership's announced state (`fresh`, `waiting`, `member`, `leaving`); null without Raft. */
  membership: string | null;
  role: string | null;
  leader: string | null;
  term: number;
  commit: number;
  voters: string[];
  learners: string[];
  /** Peers whose control channel is open. */
  connected: string[];
  /** Every linked peer's link state and connection state (`connected/connected`), for failure messages. */
  links: Record<string, string>;
  /** Chat texts in the order this page applied them. */
  applied: string[];
  /**
   * Received payloads thrown away: the mesh's drops (malformed frames, stale or forged signaling) plus what
   * the Raft transport and the membership refused. Zero on a healthy mesh.
   */
  refused: number;
  /** Raft messages this page sent in fragments (longer than one data-channel message). */
  fragmented: number;
  /** Errors the page saw (membership and node `error` events, failed joins). */
  errors: string[];
}

/** When a page's join started and when each of its control channels first opened. */
export interface JoinTimeline {
  startedAt: number;
  /** When `connectToCentrifugo` resolved (subscribed, presence read). */
  subscribedAt: number | null;
  openedAt: Record<string, number>;
}

/** `window.raftRoom`. */
export interface RoomPageApi {
  /** Requests a token (`POST /api/rooms/:room/token`, creating the room) and joins through the mesh. */
  join(options: JoinOptions): Promise<{ peerId: string }>;
  snapshot(): RoomSnapshot;
  /** Proposes a chat text to the room's Raft cluster; resolves once committed and applied by the leader. */
  propose(text: string): Promise<void>;
  timeline(): JoinTimeline;
  /**
   * Mesh-only pages: `samples` round trips of a ping over `sendRaftMessage` to `peer`, which answers from its
   * Raft-slot listener; one at a time, after `warmup` unrecorded ones. Returns each round trip in ms.
   */
  ping(peer: string, samples: number, warmup: number, padBytes: number): Promise<number[]>;
  /** Fills the payload that `sendFileTimed` and `bareSendTimed` send: `bytes` random bytes. */
  makePayload(bytes: number): void;
  /** Sends the payload with `sendFile`; resolves with the ms until the receiver reported the whole file. */
  sendFileTimed(peer: string): Promise<number>;
  /** A bare `RTCPeerConnection` with one data channel, beside the mesh: the offer, once ICE gathering is done. */
  bareOffer(): Promise<string>;
  /** Answers a bare offer; resolves with the answer once ICE gathering is done. */
  bareAnswer(offerSdp: string): Promise<string>;
  /** Takes the bare answer and waits for the channel to open. */
  bareAccept(answerSdp: string): Promise<void>;
  /** Waits for the bare channel to open (the answering side). */
  bareOpen(): Promise<void>;
  /**
   * Sends the payload on the bare channel, in the chunk size and with the buffer watermarks the manager's
   * file sender uses; resolves with the ms until the receiver reported every byte.
   */
  bareSendTimed(): Promise<number>;
}

/** The page's global object as the Node.js side sees it inside `page.evaluate`. */
export interface RoomWindow {
  raftRoom?: RoomPageApi;
}
