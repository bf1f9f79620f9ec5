/**
 * Data-channel framing. The `control` channel carries JSON text frames (chat, Raft, client messages, file
 * metadata, RTT pings); the `bulk` channel carries binary file chunks. Everything received is validated here
 * before it reaches the manager: a peer's garbage is refused with a reason, never thrown, so one bad peer
 * cannot break the receive loop.
 * @module
 */
import { FrameEncodeError, FrameTooLargeError } from './errors.js';

/** Default size limit of one control frame (UTF-8 bytes). Raft snapshots larger than this need a larger limit. */
export const DEFAULT_MAX_CONTROL_FRAME_BYTES = 256 * 1024;
/** Largest file name accepted in `file-meta`, in UTF-16 units. */
export const MAX_FILE_NAME_LENGTH = 255;
/** Largest MIME type accepted in `file-meta`. */
export const MAX_MIME_LENGTH = 127;
/** Size of a chunk header on the bulk channel: kind (1 byte), file id (u32), chunk index (u32). */
export const CHUNK_HEADER_BYTES = 9;
/** The only kind of bulk frame so far; a byte is reserved so the format can grow. */
const CHUNK_KIND = 1;

/** A chat text (the seed's legacy `{ type: 'message', content }`). */
export interface MessageFrame { type: 'message'; content: string }
/**
 * A Raft message: any JSON value (an object, or the Raft codec's text). The Raft transport validates it; this
 * layer only guarantees it is JSON and within the size limit.
 */
export interface RaftFrame { type: 'raft'; message: unknown }
/** A follower's chat message forwarded to the leader. */
export interface ClientMessageFrame { type: 'client-message'; message: unknown }
/** Announces a file whose chunks follow on the bulk channel under the same `id`. */
export interface FileMetaFrame { type: 'file-meta'; id: number; name: string; size: number; mime: string; chunkSize: number }
/** The sender gave up on file `id`; the receiver discards what it has. */
export interface FileAbortFrame { type: 'file-abort'; id: number }
/** RTT probe; the peer answers with a `pong` echoing `seq` and `ts` (the sender's clock). */
export interface PingFrame { type: 'ping'; seq: number; ts: number }
/** Answer to a {@link PingFrame}. */
export interface PongFrame { type: 'pong'; seq: number; ts: number }
/** The sender is leaving on purpose (`disconnect()` / `removePeer()`), as opposed to crashing. */
export interface ByeFrame { type: 'bye' }

/** Every frame of the control channel. */
export type ControlFrame =
  | MessageFrame | RaftFrame | ClientMessageFrame | FileMetaFrame | FileAbortFrame | PingFrame | PongFrame | ByeFrame;

/** One file chunk of the bulk channel. */
export interface ChunkFrame { fileId: number; index: number; data: Uint8Array }

/** Why a received frame was refused. `oversize` frames are never parsed. */
export type FrameRejectReason = 'oversize' | 'wrong-kind' | 'not-json' | 'malformed';

/** The outcome of decoding one received frame. */
export type DecodeResult<T> = { ok: true; frame: T } | { ok: false; reason: FrameRejectReason };

const isUint32 = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;
const isSafeNonNegative = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether the UTF-8 encoding of `text` exceeds `maxBytes`, encoding only when the UTF-16 length leaves it in doubt. */
export function exceedsUtf8Bytes(text: string, maxBytes: number): boolean {
  if (text.length > maxBytes) return true; // every UTF-16 unit is at least one UTF-8 byte
  if (text.length * 3 <= maxBytes) return false; // and at most three
  return new TextEncoder().encode(text).byteLength > maxBytes;
}

/**
 * Checks the shape of a parsed control frame. Unknown fields are tolerated (a newer peer may add some);
 * unknown types are not.
 */
export function validateControlFrame(v: unknown, maxChunkBytes: number): ControlFrame | null {
  if (!isPlainObject(v)) return null;
  switch (v.type) {
    case 'message':
      return typeof v.content === 'string' ? { type: 'message', content: v.content } : null;
    case 'raft':
    case 'raft':
    case 'client-message':
      return v.message !== undefined ? { type: v.type, message: v.message } : null;
    case 'file-meta': {
      const { id, name, size, mime, chunkSize } = v;
      if (!isUint32(id) || !isSafeNonNegative(size)) return null;
      if (typeof name !== 'string' || name.length > MAX_FILE_NAME_LENGTH) return null;
      if (typeof mime !== 'string' || mime.length > MAX_MIME_LENGTH) return null;
      if (!Number.isInteger(chunkSize) || (chunkSize as number) < 1 || (chunkSize as number) > maxChunkBytes) return null;
      return { type: 'file-meta', id, name, size, mime, chunkSize: chunkSize as number };
    }
    case 'file-abort':
      return isUint32(v.id) ? { type: 'file-abort', id: v.id } : null;
    case 'ping':
    case 'pong':
      return isUint32(v.seq) && isFiniteNumber(v.ts) ? { type: v.type, seq: v.seq, ts: v.ts } : null;
    case 'bye':
      return { type: 'bye' };
    default:
      return null;
  }
}

/**
 * Decodes one message of the control channel. Binary data is refused: the control channel is text only,
 * so a binary message there is a confused or hostile peer.
 */
export function decodeControlFrame(data: unknown, maxBytes: number, maxChunkBytes: number): DecodeResult<ControlFrame> {
  if (typeof data !== 'string') return { ok: false, reason: 'wrong-kind' };
  if (exceedsUtf8Bytes(data, maxBytes)) return { ok: false, reason: 'oversize' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return { ok: false, reason: 'not-json' };
  }
  const frame = validateControlFrame(parsed, maxChunkBytes);
  return frame ? { ok: true, frame } : { ok: false, reason: 'malformed' };
}

/**
 * Encodes a control frame as JSON text.
 * @throws {FrameEncodeError} the frame is not JSON-serializable.
 * @throws {FrameTooLargeError} the text exceeds `maxBytes`.
 */
export function encodeControlFrame(frame: ControlFrame, maxBytes: number): string {
  let text: string;
  try {
    text = JSON.stringify(frame);
  } catch (cause) {
    throw new FrameEncodeError(`cannot encode a ${frame.type} frame as JSON`, { cause });
  }
  if (exceedsUtf8Bytes(text, maxBytes)) throw new FrameTooLargeError(new TextEncoder().encode(text).byteLength, maxBytes);
  return text;
}

/** Builds one bulk-channel chunk: the 9-byte header followed by `data`. */
export function encodeChunk(fileId: number, index: number, data: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(CHUNK_HEADER_BYTES + data.byteLength);
  const view = new DataView(out.buffer);
  view.setUint8(0, CHUNK_KIND);
  view.setUint32(1, fileId);
  view.setUint32(5, index);
  out.set(data, CHUNK_HEADER_BYTES);
  return out;
}

/** Views received binary data as bytes, whatever binary type the WebRTC implementation delivered. */
function asBytes(data: unknown): Uint8Array | null {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

/**
 * Decodes one message of the bulk channel. Text is refused (the bulk channel is binary only), and so is a
 * chunk whose payload exceeds `maxChunkBytes`.
 */
export function decodeChunk(data: unknown, maxChunkBytes: number): DecodeResult<ChunkFrame> {
  const bytes = asBytes(data);
  if (!bytes) return { ok: false, reason: 'wrong-kind' };
  if (bytes.byteLength > CHUNK_HEADER_BYTES + maxChunkBytes) return { ok: false, reason: 'oversize' };
  if (bytes.byteLength < CHUNK_HEADER_BYTES) return { ok: false, reason: 'malformed' };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint8(0) !== CHUNK_KIND) return { ok: false, reason: 'malformed' };
  return {
    ok: true,
    frame: { fileId: view.getUint32(1), index: view.getUint32(5), data: bytes.subarray(CHUNK_HEADER_BYTES) },
  };
}
