/**
 * Messages the node layer exchanges beside the core's: today only `Forward`, a follower's proposal handed
 * to the leader. They share the wire with core messages ({@link WireMessage}) so one transport carries both,
 * and the core never sees them.
 * @module
 */
import type { Message } from '../core/messages.js';
import type { NodeId } from '../core/types.js';

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

/** Every message of the node layer. */
export type NodeMessage = ForwardMsg;

/** What a transport carries: core messages and node messages. */
export type WireMessage = Message | NodeMessage;

/** Whether `m` is a node-layer message (as opposed to one for the core). */
export function isNodeMessage(m: WireMessage): m is NodeMessage {
  return m.type === 'Forward';
}

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
    default:
      return 'unknown type';
  }
}
