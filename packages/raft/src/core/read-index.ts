/**
 * ReadIndex (Raft thesis §6.4): linearizable reads without writing to the log. The leader records its
 * commit index for each request, then confirms it is still leader with a heartbeat round that a quorum
 * answers. Each round is numbered; a follower's answer to round `n` also confirms every earlier round,
 * since it was sent after them, so confirmed requests always form a prefix of the queue.
 * @module
 */
import { isQuorum } from './quorum.js';
import type { ConfState, NodeId } from './types.js';

/** A read waiting for its leadership confirmation; `from` is the node that asked (maybe the leader). */
export interface PendingRead { seq: number; index: number; from: NodeId; context: unknown }

export class ReadIndexQueue {
  private seq = 0;
  private queue: PendingRead[] = [];
  /** Per voter, the highest round it has answered. */
  private acked = new Map<NodeId, number>();

  get pending(): number { return this.queue.length; }

  /** Registers a read at commit index `index`; returns the round number the next heartbeat must carry. */
  add(index: number, from: NodeId, context: unknown): number {
    this.queue.push({ seq: ++this.seq, index, from, context });
    return this.seq;
  }

  /** The round to put in heartbeats now: the newest, or 0 when nothing waits. */
  currentRound(): number { return this.queue.length ? this.seq : 0; }

  /** Records that `id` answered round `round`, and returns the reads this confirms, oldest first. */
  ack(id: NodeId, round: number, conf: ConfState, self: NodeId): PendingRead[] {
    if (round <= (this.acked.get(id) ?? 0)) return [];
    this.acked.set(id, round);
    let n = 0;
    while (n < this.queue.length) {
      const s = this.queue[n].seq;
      if (!isQuorum(conf, (v) => v === self || (this.acked.get(v) ?? 0) >= s)) break;
      n++;
    }
    return n ? this.queue.splice(0, n) : [];
  }

  /** Forgets every pending read, as on losing leadership (their askers retry). */
  clear(): void { this.queue = []; this.acked.clear(); }
}
