/**
 * What the views draw, whatever feeds them: the simulated cluster (`cluster.ts`) or a live room
 * (`live.ts`). The views (stage, logs, node card, summary, feed) read a {@link ClusterSource} and nothing
 * else; the simulation's own controls talk to the simulated `Cluster` directly.
 * @module
 */
import type { NodeId } from '@raftrtc/raft';
import type { MessageKind } from './messages.js';

/** Time units of a source: virtual ms for the simulation, `Date.now()` ms for a live room. */
export type Millis = number;

/** One copy of a message on its way, as drawn. */
export interface Flight {
  /** Unique for the page's lifetime, to key its drawing. */
  readonly id: number;
  readonly kind: MessageKind;
  /** Answers another message (drawn as a ring). */
  readonly reply: boolean;
  /** A refused vote or append (slashed). */
  readonly refusal: boolean;
  /** Entries carried (a square with the count). */
  readonly entries: number;
  /** Its tooltip, e.g. `Append n1 → n3 · term 2 · …`. */
  readonly label: string;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly sentAt: Millis;
  /** When it reaches the end of its path: the receiver, or the cut that stops it. */
  readonly endAt: Millis;
  /** The fraction of the link its path covers: 1 up to the receiver, less when a cut stops it. */
  readonly reach: number;
  /** When it was lost; null while it is on its way or delivered. */
  lostAt: Millis | null;
}

/** One cell of a log row. */
export interface LogCell {
  readonly index: number;
  readonly term: number;
  /** `noop`: a new leader's empty entry; `conf`: a configuration change. */
  readonly kind: 'normal' | 'noop' | 'conf';
  /** What it carries, e.g. `x = 3` or `Ada: hello`. */
  readonly label: string;
}

/** A node as drawn. */
export interface NodeState {
  readonly id: NodeId;
  /** The name shown for it: the id in a simulation, the person's name in a room. */
  readonly name: string;
  /** Whether its state is known and running (false: crashed, or a live peer that reports nothing). */
  readonly alive: boolean;
  /** The role as drawn: `leader`, `follower`, `candidate`, `pre-candidate`, `learner`, `crashed`, `unknown`. */
  readonly shown: string;
  /** Cut off from every other node. */
  readonly isolated: boolean;
  /** A word under its badge (e.g. `isolated`, `status 3 s old`), or empty. */
  readonly note: string;
  readonly term: number;
  readonly vote: NodeId | null;
  readonly leader: NodeId | null;
  readonly commit: number;
  readonly applied: number;
  /** The log cells known: the whole durable log in a simulation, its tail in a live room. */
  readonly entries: readonly LogCell[];
  readonly snapshot: { readonly index: number; readonly term: number } | null;
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** The state machine's state in one line (`x=1 y=2`, …), or why it is unknown. */
  readonly stateText: string;
  /** A leader's view of its followers' logs; null on other nodes and where unknown. */
  readonly progress: Readonly<Record<NodeId, { readonly match: number }>> | null;
}

/** What an event in the feed is about; it picks the event's colour. */
export type EventTone = 'leader' | 'election' | 'fault' | 'network' | 'request' | 'error';

/** An entry of the event feed, at time `at` (the source's units). */
export interface ClusterEvent {
  readonly at: Millis;
  readonly text: string;
  readonly tone: EventTone;
}

/** What the views read. */
export interface ClusterSource {
  /** Node ids in ring order. A live room's change as peers come and go: a new array each time. */
  readonly ids: readonly NodeId[];
  /** The time on screen. */
  readonly time: Millis;
  /** How long a lost message takes to fade out, in the source's units. */
  readonly fadeMs: Millis;
  /** The state of node `id` (one of `ids`). */
  node(id: NodeId): NodeState;
  /** The leader of the highest term, or null. */
  leader(): NodeId | null;
  /** The highest committed index known. */
  committed(): number;
  /** The messages on their way, and lost ones still fading out. */
  inFlight(): Iterable<Flight>;
  /** Whether messages between `a` and `b` are blocked (isolation aside). */
  isCut(a: NodeId, b: NodeId): boolean;
  /** Subscribes to the event feed; returns the unsubscribe function. */
  onEvent(listener: (event: ClusterEvent) => void): () => void;
  /** How the feed prints an event's time. */
  timeLabel(at: Millis): string;
}
