/**
 * Messages the node layer exchanges beside the core's: `Forward`, a follower's proposals handed to the
 * leader, and `ForwardConf`/`ForwardConfResp`, a follower's membership change or leadership transfer and
 * the leader's answer. They share the wire with core messages ({@link WireMessage}) so one transport carries both,
 * and the core never sees them.
 * @module
 */
import type { Message } from '../core/messages.js';
import type { ConfChange, NodeId } from '../core/types.js';

/** One proposal inside a {@link ForwardMsg}. `id` is unique and written into the entry. */
export interface ForwardedProposal { id: string; command: unknown }

/**
 * Proposals forwarded to the leader, batched: a follower under load sends one message per leader per turn
 * of the event loop, not one per proposal. Each proposal's id goes into its entry, so a forward that is
 * retried or duplicated by the network is applied once.
 */
export interface ForwardMsg { type: 'Forward'; from: NodeId; to: NodeId; proposals: ForwardedProposal[] }

/** Most proposals one Forward may carry; senders split larger batches. */
export const MAX_FORWARD_BATCH = 1024;

/**
 * A membership change (`op: 'change'`) or leadership transfer (`op: 'transfer'`) asked of the leader by a
 * follower. `id` is unique per request: the leader answers a retried request with its first answer.
 */
export type ForwardConfMsg =
  | { type: 'ForwardConf'; from: NodeId; to: NodeId; id: string; op: 'change'; changes: ConfChange[] }
  | { type: 'ForwardConf'; from: NodeId; to: NodeId; id: string; op: 'transfer'; target: NodeId };

/** Most changes one ForwardConf may carry (a joint change of a whole small cluster fits easily). */
export const MAX_FORWARD_CONF_CHANGES = 64;

/**
 * The leader's answer to a {@link ForwardConfMsg}: where it put the change (`index`, `term`; the follower
 * settles when it applies that entry), that it started the transfer (`index` 0), or the typed error it
 * refused with (`error.name` is the error class; `leader` for a `NotLeaderError`).
 */
export interface ForwardConfRespMsg {
  type: 'ForwardConfResp'; from: NodeId; to: NodeId; id: string;
  index: number; term: number;
  error?: { name: string; message: string; leader?: NodeId | null };
}

/** Every message of the node layer. */
export type NodeMessage = ForwardMsg | ForwardConfMsg | ForwardConfRespMsg;

/** The `type`s of {@link NodeMessage}s: a decoder validates these with {@link validateNodeMessage}. */
export const NODE_MESSAGE_TYPES: ReadonlySet<string> = new Set(['Forward', 'ForwardConf', 'ForwardConfResp']);

/** What a transport carries: core messages and node messages. */
export type WireMessage = Message | NodeMessage;

/** Whether `m` is a node-layer message (as opposed to one for the core). */
export function isNodeMessage(m: WireMessage): m is NodeMessage {
  return NODE_MESSAGE_TYPES.has(m.type);
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isReqId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 512;
const CHANGE_TYPES = new Set(['addVoter', 'addLearner', 'remove']);

const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;

/** Returns null when `m` is a well-formed node message, otherwise a short reason. */
export function validateNodeMessage(m: unknown): string | null {
  if (typeof m !== 'object' || m === null) return 'not an object';
  const o = m as Record<string, unknown>;
  if (!isId(o.from) || !isId(o.to)) return 'from/to';
  switch (o.type) {
    case 'Forward': {
      const ps = o.proposals;
      if (!Array.isArray(ps) || ps.length === 0 || ps.length > MAX_FORWARD_BATCH) return 'proposals';
      for (const p of ps as unknown[]) {
        const f = p as Record<string, unknown> | null;
        if (typeof f !== 'object' || f === null) return 'proposal';
        if (typeof f.id !== 'string' || f.id.length === 0 || f.id.length > 512) return 'proposal id';
        if (f.command === undefined || f.command === null) return 'proposal command';
      }
      return null;
    }
    case 'ForwardConf': {
      if (!isReqId(o.id)) return 'request id';
      if (o.op === 'transfer') return isId(o.target) ? null : 'transfer target';
      if (o.op !== 'change') return 'op';
      const cs = o.changes;
      if (!Array.isArray(cs) || cs.length === 0 || cs.length > MAX_FORWARD_CONF_CHANGES) return 'changes';
      for (const c of cs as unknown[]) {
        const ch = c as Record<string, unknown> | null;
        if (typeof ch !== 'object' || ch === null || !CHANGE_TYPES.has(ch.type as string) || !isId(ch.node)) return 'change';
      }
      return null;
    }
    case 'ForwardConfResp': {
      if (!isReqId(o.id)) return 'request id';
      if (!isIndex(o.index) || !isIndex(o.term)) return 'index/term';
      if (o.error === undefined) return null;
      const e = o.error as Record<string, unknown> | null;
      if (typeof e !== 'object' || e === null) return 'error';
      if (typeof e.name !== 'string' || e.name.length > 64 || typeof e.message !== 'string' || e.message.length > 1024) return 'error';
      if (e.leader !== undefined && e.leader !== null && !isId(e.leader)) return 'error leader';
      return null;
    }
    default:
      return 'unknown type';
  }
}
