/**
 * `@raftrtc/raft-node`: the Node.js-only parts of RaftRTC (durable file storage).
 * @module
 */
export * from './file-storage.js';
