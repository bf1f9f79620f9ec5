/**
 * `@raftrtc/raft/testing`: a deterministic, virtual-time simulator for Raft clusters (seeded network
 * faults, crashes and restarts, with Raft's safety properties checked after every event), an MIT 6.824
 * style lab harness on top of it, and a linearizability checker for client histories.
 * @module
 */
export { Rng } from './rng.js';
export { EventQueue, type Scheduled } from './event-queue.js';
export {
  Network, NetworkStats, DEFAULT_NETWORK,
  type NetworkConfig, type DropReason, type Traffic, type Delivery, type Transmission,
} from './network.js';
export { DurableStore, type Restore } from './storage.js';
export {
  KvStateMachine, isKvCommand,
  type StateMachine, type StateMachineFactory, type KvCommand, type KvApplied,
} from './state-machine.js';
export { InvariantChecker, PROPERTIES } from './invariants.js';
export { InvariantViolation, SimulationError, type RunInfo } from './errors.js';
export type { CoreLike, CoreStatus, CoreOptions, CoreConstructor, SimObserver } from './types.js';
export type { NodeView, ReadRecord } from './sim-node.js';
export { Simulation, type SimulationOptions, type StepResult } from './simulation.js';
export { LabConfig, LabFailure, LabStateMachine, type LabOptions, type LabSummary } from './lab.js';
export * from './linearizability.js';
export * from './kv-model.js';
