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
