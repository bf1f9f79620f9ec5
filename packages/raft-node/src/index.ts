/**
 * `@raftrtc/raft-node`: the Node.js-only parts of RaftRTC (durable file storage, a TCP transport).
 * @module
 */
export * from './file-storage.js';
export * from './tcp-transport.js';
export * from './records.js';
