/**
 * `@raftrtc/raft`: a complete Raft library for Node.js and browsers, with no runtime dependencies.
 * `RaftCore` is the deterministic state machine (etcd RawNode style); see `docs/raft-core.md`.
 * @module
 */
export * from './core/types.js';
export * from './core/errors.js';
export type * from './core/messages.js';
export { validateMessage } from './core/messages.js';
export { RaftCore, type RaftCoreOptions, type RaftStatus } from './core/raft.js';
export { mayOverlapWrite } from './core/parallel-write.js';
export type { Storage, StorageSizes, StorageState, StorageUpdate } from './node/storage.js';
export type { Transport } from './node/transport.js';
export {
  MAX_FORWARD_BATCH, MAX_FORWARD_CONF_CHANGES, NODE_MESSAGE_TYPES, isNodeMessage, validateNodeMessage,
  type ForwardConfMsg, type ForwardConfRespMsg, type ForwardMsg, type ForwardedProposal, type NodeMessage, type WireMessage,
} from './node/node-messages.js';
export { CodecError, DEFAULT_MAX_MESSAGE_BYTES, decodeMessage, encodeMessage, type CodecErrorReason, type DecodeOptions } from './node/codec.js';
export { MemoryStorage, type MemoryStorageOptions } from './node/memory-storage.js';
export { MemoryNetwork, MemoryTransport, type MemoryNetworkOptions, type MemoryNetworkStats } from './node/memory-transport.js';
export { realTimers, type TimerHandle, type Timers } from './node/timers.js';
export { TypedEmitter, type EventMap } from './node/emitter.js';
export { StoppedError, TimeoutError } from './node/errors.js';
export { AppliedIds, isNodeSnapshotData, isProposalData, type NodeSnapshotData, type ProposalData } from './node/applied-ids.js';
export {
  RaftNode, type RaftNodeEventMap, type RaftNodeOptions, type RaftNodeStatus, type StateMachine,
} from './node/raft-node.js';
export {
  RaftManager, RaftManagerStateError, type LogEntry, type NodeState, type RaftManagerOptions,
} from './facades/raft-manager.js';
/** The 6.824 lab's API as a namespace (`lab.make`, `lab.Persister`, `lab.Channel`, `lab.ApplyMsg`): `make` is too generic a name for the top level. */
export * as lab from './facades/lab.js';
export {
  NodeInstance, RaftInterface, WebRaftPayloadError,
  type RaftInterfaceEventMap, type RaftInterfaceOptions, type WebRaftApplyCallback, type WebRaftEntry, type WebRaftRefreshCallback,
} from './facades/webraft.js';
export {
  Raftq, RaftqOptionsError, RaftqPersistError, RaftRole,
  type PersistAgent, type RaftEventType, type RaftNodeId, type RaftqEventMap, type RaftqListener, type RaftqLog, type RaftqMessage,
  type RaftqNetworkEvent, type RaftqNode, type RaftqOptions, type RaftqReceivedEvent, type RaftqReplicated, type RaftqRoleChange,
  type UnsubscribeFunc,
} from './facades/raftq.js';
export { IndexedDBStorage, IndexedDBStorageError, StorageUnavailableError, type IndexedDBStorageOptions } from './node/indexeddb-storage.js';
