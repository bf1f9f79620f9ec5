/**
 * The room client, without any UI framework: `joinRoom` → {@link RoomClient} (send, retry, leave, subscribe).
 * @module
 */
export {
  MAX_EVENTS, RoomClient, databaseName, joinRoom,
  type ArchiveView, type JoinRoomOptions, type MessageView, type PeerRole, type PeerView, type RaftTuning, type RaftView, type RoomEvent,
  type RoomEventKind, type RoomPhase, type RoomView,
} from './room-client.js';
export { Chat, ChatCommandError, MAX_NAME_LENGTH, MAX_TEXT_LENGTH, validateChatCommand, type ChatCommand, type ChatMessage } from './chat.js';
export { ROOM_NAME, browserStore, createRoom, loadSession, type KeyValueStore, type RoomSession, type TokenAnswer } from './api.js';
export {
  ArchiveUnavailableError, InvalidInputError, RateLimitedError, RoomError, RoomFullError, RoomNotFoundError, SendError, SignalingUnavailableError, WrongPasswordError,
} from './errors.js';
export {
  FileShare, FileShareError, MAX_SHARE_BYTES, RASTER_IMAGE, formatBytes, safeBlobType, type FileShareOptions, type FileTargetView, type FilesView, type SharedFileView,
} from './files.js';
export { MediaError, RoomMedia, mediaError, type DeviceState, type MediaView, type RemoteMediaView, type RoomMediaOptions } from './media.js';
