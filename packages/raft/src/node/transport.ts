/**
 * How a {@link RaftNode} reaches its peers. Every implementation runs the shared conformance suite
 * (`packages/raft/test/conformance/transport.ts`).
 * @module
 */
import type { NodeId } from '../core/types.js';
import type { WireMessage } from './node-messages.js';

/**
 * A best-effort message channel between nodes, like the network Raft assumes: messages may be lost,
 * delayed or reordered, never forged by the transport itself. `send` never throws for an unreachable peer
 * and never blocks; implementations bound their queues and drop what does not fit. Messages cross the wire
 * through the shared codec (`codec.ts`), so garbage never reaches `onMessage`. A transport carries the node
 * layer's messages (`Forward`) as well as the core's.
 */
export interface Transport {
  /** This node's id. */
  readonly id: NodeId;
  /** Starts delivering messages addressed to this node to `onMessage`. */
  start(onMessage: (message: WireMessage) => void): Promise<void>;
  /** Sends `message` to `message.to`. */
  send(message: WireMessage): void;
  /** Stops sending and receiving; pending messages may be lost. */
  close(): Promise<void>;
}
