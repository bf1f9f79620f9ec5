/**
 * The replicated state the rtc tests and the browser harness give their rooms: a chat log of strings.
 * @module
 */
import type { Entry, RaftNode, StateMachine } from '@raftrtc/raft';

/** The room's replicated state: the chat log. */
export class Chat implements StateMachine<string, number> {
  log: string[] = [];
  apply(text: string, _e: Entry): number { return this.log.push(text); }
  snapshot(): unknown { return [...this.log]; }
  restore(data: unknown): void { this.log = [...(data as string[])]; }
}

/** A RaftNode replicating a {@link Chat}. */
export type ChatNode = RaftNode<string, number>;
