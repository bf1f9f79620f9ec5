/**
 * The signaling payloads published on a room's channel (`room:<room>`), shared by the server (which refuses
 * anything else) and the mesh layer (which builds and checks them). Isomorphic: no Node.js imports, so a
 * browser bundle can use it through `@raftrtc/server/signaling-messages`.
 *
 * Signaling carries SDP, ICE candidates and presence only; Raft and chat never go through it. Every message
 * names its sender in `from`, which the server checks against the publisher's user id (the `sub` of its
 * connection token), so a receiver may trust `from` when the publication's `info.user` equals it.
 * `offer`, `answer`, `ice-candidate` and `peer-list` are addressed to one peer (`to`); the channel still
 * delivers them to every subscriber (as Centrifugo does), and receivers drop what is not addressed to them.
 * @module
 */

/** A peer's id: the `sub` of its connection token. */
export type PeerId = string;

/** Fields common to every signaling message. */
interface Base {
  /** The sender's peer id; must equal the publisher's user id. */
  readonly from: PeerId;
  /**
   * Optional attempt counter of the connection between the two peers: lets a receiver drop messages of an
   * older attempt (e.g. candidates of a connection it already replaced). Non-negative integer.
   */
  readonly generation?: number;
}

/** An SDP offer to one peer. */
export interface OfferMessage extends Base {
  readonly type: 'offer';
  readonly to: PeerId;
  readonly sdp: string;
}

/** An SDP answer to one peer. */
export interface AnswerMessage extends Base {
  readonly type: 'answer';
  readonly to: PeerId;
  readonly sdp: string;
}

/** The fields of an `RTCIceCandidateInit`. */
export interface IceCandidateInit {
  readonly candidate: string;
  readonly sdpMid?: string | null;
  readonly sdpMLineIndex?: number | null;
  readonly usernameFragment?: string | null;
}

/** A trickled ICE candidate for one peer; `candidate: null` means end of candidates. */
export interface IceCandidateMessage extends Base {
  readonly type: 'ice-candidate';
  readonly to: PeerId;
  readonly candidate: IceCandidateInit | null;
}

/** Announces the sender to everyone in the room (no `to`). */
export interface PeerJoinedMessage extends Base {
  readonly type: 'peer-joined';
  /** Display name, as in the connection token's `info.name`. */
  readonly name?: string;
}

/** The peers the sender knows in the room, sent to one peer (typically a newcomer). */
export interface PeerListMessage extends Base {
  readonly type: 'peer-list';
  readonly to: PeerId;
  readonly peers: readonly PeerId[];
}

/** Every payload allowed on a room channel. */
export type SignalingMessage = OfferMessage | AnswerMessage | IceCandidateMessage | PeerJoinedMessage | PeerListMessage;

/** The `type`s of {@link SignalingMessage}. */
export type SignalingType = SignalingMessage['type'];

/** The channel namespace of rooms: a room `r` is the channel `room:r`. */
export const ROOM_NAMESPACE = 'room';

/** Size caps, generous for real SDP and candidates; the publication itself is capped by the server (64 KB). */
export const SIGNALING_LIMITS = {
  peerIdLength: 128,
  sdpLength: 60_000,
  candidateLength: 2_048,
  sdpMidLength: 256,
  nameLength: 64,
  peers: 256,
} as const;

const PEER_ID = /^[A-Za-z0-9_.:-]+$/;

/** Whether `value` is a well-formed peer id (1–128 characters of `A–Z a–z 0–9 _ . : -`). */
export function isPeerId(value: unknown): value is PeerId {
  return typeof value === 'string' && value.length > 0 && value.length <= SIGNALING_LIMITS.peerIdLength && PEER_ID.test(value);
}

/** The result of {@link validateSignalingMessage}. */
export type SignalingValidation = { readonly ok: true; readonly message: SignalingMessage } | { readonly ok: false; readonly reason: string };

const ALLOWED_KEYS: Record<SignalingType, ReadonlySet<string>> = {
  offer: new Set(['type', 'from', 'to', 'generation', 'sdp']),
  answer: new Set(['type', 'from', 'to', 'generation', 'sdp']),
  'ice-candidate': new Set(['type', 'from', 'to', 'generation', 'candidate']),
  'peer-joined': new Set(['type', 'from', 'generation', 'name']),
  'peer-list': new Set(['type', 'from', 'to', 'generation', 'peers']),
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function boundedString(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length <= max;
}

function checkCandidate(value: unknown): string | null {
  if (value === null) return null;
  if (!isRecord(value)) return 'candidate must be an object or null';
  for (const key of Object.keys(value)) {
    if (key !== 'candidate' && key !== 'sdpMid' && key !== 'sdpMLineIndex' && key !== 'usernameFragment') return `candidate has an unknown field ${JSON.stringify(key)}`;
  }
  if (!boundedString(value.candidate, SIGNALING_LIMITS.candidateLength)) return `candidate.candidate must be a string of at most ${SIGNALING_LIMITS.candidateLength} characters`;
  if (value.sdpMid !== undefined && value.sdpMid !== null && !boundedString(value.sdpMid, SIGNALING_LIMITS.sdpMidLength)) return 'candidate.sdpMid must be a short string or null';
  if (value.sdpMLineIndex !== undefined && value.sdpMLineIndex !== null && !(Number.isInteger(value.sdpMLineIndex) && (value.sdpMLineIndex as number) >= 0 && (value.sdpMLineIndex as number) < 65536)) {
    return 'candidate.sdpMLineIndex must be an integer in 0..65535 or null';
  }
  if (value.usernameFragment !== undefined && value.usernameFragment !== null && !boundedString(value.usernameFragment, SIGNALING_LIMITS.sdpMidLength)) {
    return 'candidate.usernameFragment must be a short string or null';
  }
  return null;
}

/**
 * Checks that `value` is exactly one of the {@link SignalingMessage} shapes: known `type`, well-formed peer
 * ids, fields within {@link SIGNALING_LIMITS}, no fields beyond the shape. Does not check `from` against a
 * publisher; the server does that.
 */
export function validateSignalingMessage(value: unknown): SignalingValidation {
  const fail = (reason: string): SignalingValidation => ({ ok: false, reason });
  if (!isRecord(value)) return fail('a signaling message is a JSON object');
  const type = value.type;
  if (typeof type !== 'string' || !Object.hasOwn(ALLOWED_KEYS, type)) {
    return fail(`type must be one of ${Object.keys(ALLOWED_KEYS).join(', ')}`);
  }
  const allowed = ALLOWED_KEYS[type as SignalingType];
  for (const key of Object.keys(value)) if (!allowed.has(key)) return fail(`${type} has an unknown field ${JSON.stringify(key)}`);
  if (!isPeerId(value.from)) return fail('from must be a peer id');
  if (value.generation !== undefined && !(Number.isSafeInteger(value.generation) && (value.generation as number) >= 0)) {
    return fail('generation must be a non-negative integer');
  }
  if (type !== 'peer-joined' && !isPeerId(value.to)) return fail(`${type} needs to: a peer id`);
  switch (type as SignalingType) {
    case 'offer':
    case 'answer':
      if (!boundedString(value.sdp, SIGNALING_LIMITS.sdpLength) || value.sdp.length === 0) return fail(`sdp must be a non-empty string of at most ${SIGNALING_LIMITS.sdpLength} characters`);
      break;
    case 'ice-candidate': {
      const problem = checkCandidate(value.candidate);
      if (problem) return fail(problem);
      break;
    }
    case 'peer-joined':
      if (value.name !== undefined && !boundedString(value.name, SIGNALING_LIMITS.nameLength)) return fail(`name must be a string of at most ${SIGNALING_LIMITS.nameLength} characters`);
      break;
    case 'peer-list':
      if (!Array.isArray(value.peers) || value.peers.length > SIGNALING_LIMITS.peers || !value.peers.every(isPeerId)) {
        return fail(`peers must be an array of at most ${SIGNALING_LIMITS.peers} peer ids`);
      }
      break;
  }
  return { ok: true, message: value as unknown as SignalingMessage };
}

/** Whether `value` is a valid {@link SignalingMessage}. */
export function isSignalingMessage(value: unknown): value is SignalingMessage {
  return validateSignalingMessage(value).ok;
}

/** The channel of room `room`. */
export function roomChannel(room: string): string {
  return `${ROOM_NAMESPACE}:${room}`;
}
