/**
 * `@raftrtc/rtc`: the WebRTC full mesh of a RaftRTC room, for browsers and Node.js. `WebRTCManager` is the entry
 * point; see `docs/rtc.md` for the design (negotiation, channels, framing, recovery, limits).
 * @module
 */
export {
  DEFAULT_LIMITS, DEFAULT_TIMING, WebRTCManager,
  type CentrifugoAuth, type DisconnectReason, type DropReason, type ManagerLimits, type ManagerStats, type ManagerTiming, type PeerInfo,
  type SentFile, type WebRTCManagerOptions,
} from './webrtc-manager.js';
export {
  FrameEncodeError, FrameTooLargeError, ManagerStateError, MediaUnavailableError, PeerNotConnectedError, RtcError,
  SignalingError, TransferAbortedError,
} from './errors.js';
export type { FileProgress, FileSendOptions, FileSource, ReceivedFile } from './file-transfer.js';
export {
  DEFAULT_MAX_CONTROL_FRAME_BYTES, decodeChunk, decodeControlFrame, encodeChunk, encodeControlFrame, validateControlFrame,
  type ChunkFrame, type ControlFrame, type DecodeResult, type FrameRejectReason,
} from './frames.js';
export type { LinkState, LinkTiming, PeerLinkInfo, RTCPeerConnectionConstructor } from './peer-connection.js';
export {
  CentrifugeSignaling, DEFAULT_PUBLISH_RATE, validateSignalingMessage,
  type CentrifugeSignalingOptions, type PublishRate, type IceCandidateInit, type Signaling, type SignalingHandlers, type SignalingMessage,
} from './signaling.js';
export type { Logger } from './logger.js';
export {
  MeshHub, MAX_ROOM_MEMBERS, ROOM_STATE_TYPE, validateRoomState,
  type MeshHubListeners, type MeshLink, type MeshSendResult, type PeerDisconnectReason, type RoomPeerState, type RoomStateMessage,
} from './raft/mesh-link.js';
export {
  DEFAULT_FRAGMENT_CHARS, DEFAULT_RTC_MAX_MESSAGE_BYTES, WebRtcTransport, type WebRtcTransportOptions, type WebRtcTransportStats,
} from './raft/webrtc-transport.js';
export {
  RoomMembership, RoomMembershipStateError, seededStorage,
  type LeaveOutcome, type RetryOptions, type RoomMembershipEventMap, type RoomMembershipOptions, type RoomMembershipStats,
} from './raft/room-membership.js';
export {
  actionKey, planBootstrap, planHandOver, planMembership,
  type BootstrapDecision, type BootstrapView, type DownPeer, type MembershipAction, type MembershipView,
} from './raft/membership-plan.js';
export { MemoryMesh, MemoryMeshFrameError, type MemoryMeshOptions, type MemoryMeshStats } from './raft/memory-mesh.js';
