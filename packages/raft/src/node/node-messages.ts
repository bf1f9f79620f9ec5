/**
 * Messages the node layer exchanges beside the core's: today only `Forward`, a follower's proposal handed
 * to the leader. They share the wire with core messages ({@link WireMessage}) so one transport carries both,
 * and the core never sees them.
 * @module
 */
import type { Message } from '../core/messages.js';
import type { NodeId } from '../core/types.js';

/**
 * A proposal forwarded to the leader. `id` is the proposal's unique id, written into the entry, so a
 * forward that is retried or duplicated by the network is applied once.
 */
export interface ForwardMsg { type: 'Forward'; from: NodeId; to: NodeId; id: string; command: unknown }

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
    case 'Forward':
      if (typeof o.id !== 'string' || o.id.length === 0 || o.id.length > 512) return 'id';
      return o.command === undefined || o.command === null ? 'command' : null;
    default:
      return 'unknown type';
  }
}
