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
