/**
 * One simulated node: its core (while it is up), its durable store, which outlives crashes, and its
 * state machine, which does not.
 * @module
 */
import type { Entry, NodeId, Role } from '../core/types.js';
import type { StateMachine } from './state-machine.js';
import type { DurableStore } from './storage.js';
import type { CoreLike, CoreStatus } from './types.js';

/** A linearizable read asked of a node through `Simulation.readIndex`. */
export interface ReadRecord {
  context: unknown;
  askedAt: number;
  /** The read point from the core's answer; null until it answers. */
  index: number | null;
  /** When the state machine had applied `index` and the read was served; null until then. */
  servedAt: number | null;
}

/** A read waiting for its answer or for the state machine to catch up. */
export interface PendingRead<SM> {
  key: string;
  record: ReadRecord;
  onServed: ((stateMachine: SM, index: number) => void) | undefined;
}

/**
 * A node as tests and visualizers see it. Read-only: change a node through the `Simulation`, which keeps
 * the invariant checker and the observer informed.
 */
export interface NodeView<SM extends StateMachine = StateMachine> {
  readonly id: NodeId;
  /** Whether the node is up (not crashed). */
  readonly alive: boolean;
  /** Bumped at every crash and every start; messages addressed to an older incarnation are discarded. */
  readonly incarnation: number;
  /** The live core, null while crashed. */
  readonly core: CoreLike | null;
  /** Role and term as of the node's last Ready (null role while crashed). */
  readonly role: Role | null;
  readonly term: number;
  /** The core's status, null while crashed. */
  status(): CoreStatus | null;
  /** Index of the last entry the state machine holds (applied, or restored from a snapshot). */
  readonly applied: number;
  /** Entries applied since the node last started, after any snapshot it was restored from. */
  readonly appliedEntries: readonly Entry[];
  readonly stateMachine: SM;
  /** What Ready handling made durable. */
  readonly durable: DurableStore;
  /** Reads asked of this incarnation, in order. */
  readonly reads: readonly ReadRecord[];
}

/** The simulation's own record of a node; the simulation alone mutates it. */
export class SimNode<SM extends StateMachine> implements NodeView<SM> {
  core: CoreLike | null = null;
  incarnation = 0;
  role: Role | null = null;
  term = 0;
  applied = 0;
  appliedEntries: Entry[] = [];
  reads: ReadRecord[] = [];
  /** Reads not yet served, oldest first. */
  pending: PendingRead<SM>[] = [];
  /** A Ready's write is under way (with `diskMs`): no further Ready until it is done. */
  writing = false;

  constructor(
    readonly id: NodeId,
    readonly durable: DurableStore,
    public stateMachine: SM,
  ) {}

  get alive(): boolean {
    return this.core !== null;
  }

  status(): CoreStatus | null {
    return this.core ? this.core.status() : null;
  }
}
