/**
 * The messages Raft nodes exchange: a discriminated union on `type`, plain JSON, immutable once made.
 * A message answering another has a type ending in `Resp`. {@link validateMessage} is the single gate every
 * incoming message passes before the core looks at it, so a peer's garbage is dropped, never thrown.
 * @module
 */
import type { Entry, NodeId, Snapshot } from './types.js';

interface Base { from: NodeId; to: NodeId; term: number }

/** Pre-vote request (Raft thesis §9.6), sent with the term the sender would campaign in. */
export interface PreVoteMsg extends Base { type: 'PreVote'; lastIndex: number; lastTerm: number }
/** Vote request (Raft §5.2). `transfer` marks a campaign started by leadership transfer, which ignores leases. */
export interface VoteMsg extends Base { type: 'Vote'; lastIndex: number; lastTerm: number; transfer?: boolean }
export interface PreVoteRespMsg extends Base { type: 'PreVoteResp'; reject: boolean }
export interface VoteRespMsg extends Base { type: 'VoteResp'; reject: boolean }
/** AppendEntries (Raft §5.3); an empty `entries` still carries the commit index. */
export interface AppendMsg extends Base { type: 'Append'; prevIndex: number; prevTerm: number; entries: Entry[]; commit: number }
/**
 * Answer to Append or Snapshot. On success `index` is the last index known to match the leader. On
 * rejection `index` is the rejected `prevIndex` and (`hintIndex`, `hintTerm`) let the leader skip a whole
 * conflicting term per round trip.
 */
export interface AppendRespMsg extends Base { type: 'AppendResp'; index: number; reject: boolean; hintIndex: number; hintTerm: number }
/** Heartbeat; `ctx` is set when the round also confirms leadership for ReadIndex requests. */
export interface HeartbeatMsg extends Base { type: 'Heartbeat'; commit: number; ctx: number }
export interface HeartbeatRespMsg extends Base { type: 'HeartbeatResp'; ctx: number }
/** InstallSnapshot (Raft §7). */
export interface SnapshotMsg extends Base { type: 'Snapshot'; snapshot: Snapshot }
/** Leadership transfer: the receiver campaigns at once (Raft thesis §3.10). */
export interface TimeoutNowMsg extends Base { type: 'TimeoutNow' }
/** A follower's ReadIndex request forwarded to the leader. */
export interface ReadIndexMsg extends Base { type: 'ReadIndex'; context: unknown }
export interface ReadIndexRespMsg extends Base { type: 'ReadIndexResp'; index: number; context: unknown }

/** Every message a RaftCore sends or accepts. */
export type Message =
  | PreVoteMsg | VoteMsg | PreVoteRespMsg | VoteRespMsg
  | AppendMsg | AppendRespMsg | HeartbeatMsg | HeartbeatRespMsg
  | SnapshotMsg | TimeoutNowMsg | ReadIndexMsg | ReadIndexRespMsg;

export type MessageType = Message['type'];


const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;
const isIdList = (v: unknown): v is string[] => Array.isArray(v) && v.every(isId);

/** Checks a snapshot's shape; returns a reason when it is malformed. */
export function validateSnapshot(s: unknown): string | null {
  if (typeof s !== 'object' || s === null) return 'snapshot is not an object';
  const o = s as Record<string, unknown>;
  if (!isIndex(o.index) || !isIndex(o.term)) return 'snapshot index/term';
  const c = o.conf as Record<string, unknown> | null;
  if (typeof c !== 'object' || c === null || !isIdList(c.voters) || !isIdList(c.learners)) return 'snapshot conf';
  if (c.outgoing !== undefined && !isIdList(c.outgoing)) return 'snapshot conf outgoing';
  if (o.data === undefined) return 'snapshot without data';
  return null;
}

/** Checks a conf entry's data; returns a reason when it is malformed. */
export function validateConfData(d: unknown): string | null {
  if (typeof d !== 'object' || d === null) return 'conf data is not an object';
  const o = d as Record<string, unknown>;
  switch (o.op) {
    case 'bootstrap': return isIdList(o.voters) && o.voters.length > 0 ? null : 'bootstrap voters';
    case 'leaveJoint': return null;
    case 'change': {
      if (!Array.isArray(o.changes) || o.changes.length === 0) return 'conf changes';
      for (const ch of o.changes as unknown[]) {
        const c = ch as Record<string, unknown> | null;
        if (typeof c !== 'object' || c === null || !isId(c.node)) return 'conf change node';
        if (c.type !== 'addVoter' && c.type !== 'addLearner' && c.type !== 'remove') return 'conf change type';
      }
      return null;
    }
    default: return 'conf op';
  }
}

/**
 * Checks the entries of an Append: consecutive from `prevIndex + 1`, terms non-decreasing and never above
 * the message's term, well-formed conf entries. Returns a reason when malformed.
 */
function validateEntries(entries: unknown, prevIndex: number, prevTerm: number, term: number): string | null {
  if (!Array.isArray(entries)) return 'entries is not an array';
  let index = prevIndex;
  let lastTerm = prevTerm;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as Entry | null;
    if (typeof e !== 'object' || e === null) return 'entry is not an object';
    if (e.index !== ++index) return 'entries not consecutive';
    if (!isIndex(e.term) || e.term < lastTerm || e.term > term || e.term === 0) return 'entry term out of order';
    lastTerm = e.term;
    if (e.type === 'normal') { if (e.data === undefined) return 'entry without data'; }
    else if (e.type === 'conf') { const r = validateConfData(e.data); if (r) return r; }
    else return 'entry type';
  }
  return null;
}

/**
 * Returns null when `m` is a well-formed message, otherwise a short reason. It checks the shape only;
 * whether the message makes sense in the receiver's state is the core's business.
 */
export function validateMessage(m: unknown): string | null {
  if (typeof m !== 'object' || m === null) return 'not an object';
  const o = m as Record<string, unknown>;
  if (!isId(o.from) || !isId(o.to)) return 'from/to';
  if (!isIndex(o.term)) return 'term';
  switch (o.type) {
    case 'PreVote': case 'Vote':
      if (!isIndex(o.lastIndex) || !isIndex(o.lastTerm)) return 'lastIndex/lastTerm';
      if (o.transfer !== undefined && typeof o.transfer !== 'boolean') return 'transfer';
      return null;
    case 'PreVoteResp': case 'VoteResp':
      return typeof o.reject === 'boolean' ? null : 'reject';
    case 'Append':
      if (!isIndex(o.prevIndex) || !isIndex(o.prevTerm) || !isIndex(o.commit)) return 'prevIndex/prevTerm/commit';
      if (o.prevTerm > o.term) return 'prevTerm above term';
      return validateEntries(o.entries, o.prevIndex, o.prevTerm, o.term);
    case 'AppendResp':
      if (!isIndex(o.index) || !isIndex(o.hintIndex) || !isIndex(o.hintTerm)) return 'index/hint';
      return typeof o.reject === 'boolean' ? null : 'reject';
    case 'Heartbeat':
      return isIndex(o.commit) && isIndex(o.ctx) ? null : 'commit/ctx';
    case 'HeartbeatResp':
      return isIndex(o.ctx) ? null : 'ctx';
    case 'Snapshot':
      return validateSnapshot(o.snapshot);
    case 'TimeoutNow':
      return null;
    case 'ReadIndex':
      return o.context === undefined ? 'context' : null;
    case 'ReadIndexResp':
      return isIndex(o.index) && o.context !== undefined ? null : 'index/context';
    default:
      return 'unknown type';
  }
}
