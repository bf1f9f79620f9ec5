/**
 * How the visualizer classifies Raft messages: the families they are coloured by, and the words used to
 * describe them. Each family's colour is the stylesheet's `--msg-<kind>`.
 * @module
 */
import type { Message } from '@raftrtc/raft';

/** The families messages are drawn in. */
export type MessageKind = 'prevote' | 'vote' | 'append' | 'heartbeat' | 'snapshot' | 'transfer' | 'read' | 'forward';

/** Every family, in legend order, with its legend text. */
export const MESSAGE_KINDS: readonly { kind: MessageKind; label: string; types: string }[] = [
  { kind: 'prevote', label: 'Pre-vote', types: 'PreVote, PreVoteResp' },
  { kind: 'vote', label: 'Vote', types: 'Vote, VoteResp' },
  { kind: 'append', label: 'Append entries', types: 'Append, AppendResp' },
  { kind: 'heartbeat', label: 'Heartbeat', types: 'Heartbeat, HeartbeatResp' },
  { kind: 'snapshot', label: 'Snapshot', types: 'Snapshot' },
  { kind: 'transfer', label: 'Timeout now', types: 'TimeoutNow (leadership transfer)' },
  { kind: 'read', label: 'Read index', types: 'ReadIndex, ReadIndexResp' },
  { kind: 'forward', label: 'Forward', types: 'Forward, ForwardConf, ForwardConfResp: a follower hands proposals and changes to the leader (RaftNode, live rooms only)' },
];

/** The family `m` is drawn in. */
export function kindOf(m: Message): MessageKind {
  return kindOfType(m.type);
}

/** The family a message of wire type `type` is drawn in (core and node-layer messages alike). */
export function kindOfType(type: string): MessageKind {
  switch (type) {
    case 'PreVote': case 'PreVoteResp': return 'prevote';
    case 'Vote': case 'VoteResp': return 'vote';
    // An AppendResp also answers a Snapshot, but it reports log progress, which is what appends are about.
    case 'Append': case 'AppendResp': return 'append';
    case 'Heartbeat': case 'HeartbeatResp': return 'heartbeat';
    case 'Snapshot': return 'snapshot';
    case 'TimeoutNow': return 'transfer';
    case 'ReadIndex': case 'ReadIndexResp': return 'read';
    default: return 'forward';
  }
}

/** Whether `m` answers another message. */
export function isReply(m: Message): boolean {
  return m.type.endsWith('Resp');
}

/** Whether `m` is a refusal: a vote not granted, or an append whose consistency check failed. */
export function isRefusal(m: Message): boolean {
  return 'reject' in m && m.reject;
}

/** Number of log entries `m` carries. */
export function entryCount(m: Message): number {
  return m.type === 'Append' ? m.entries.length : 0;
}

/** A one-line description of `m` for tooltips, e.g. `Append n1 → n3 · term 2 · entries 4–5 · commit 3`. */
export function describe(m: Message): string {
  const head = `${m.type} ${m.from} → ${m.to} · term ${m.term}`;
  switch (m.type) {
    case 'PreVote': case 'Vote':
      return `${head} · last log ${m.lastIndex}@${m.lastTerm}`;
    case 'PreVoteResp': case 'VoteResp':
      return `${head} · ${m.reject ? 'refused' : 'granted'}`;
    case 'Append': {
      const n = m.entries.length;
      const range = n === 0 ? 'no entries' : n === 1 ? `entry ${m.prevIndex + 1}` : `entries ${m.prevIndex + 1}–${m.prevIndex + n}`;
      return `${head} · after ${m.prevIndex}@${m.prevTerm} · ${range} · commit ${m.commit}`;
    }
    case 'AppendResp':
      return m.reject ? `${head} · refused at ${m.index}, hint ${m.hintIndex}@${m.hintTerm}` : `${head} · matches up to ${m.index}`;
    case 'Heartbeat':
      return `${head} · commit ${m.commit}`;
    case 'Snapshot':
      return `${head} · up to index ${m.snapshot.index}@${m.snapshot.term}`;
    case 'ReadIndexResp':
      return `${head} · read at ${m.index}`;
    case 'HeartbeatResp': case 'TimeoutNow': case 'ReadIndex':
      return head;
  }
}
