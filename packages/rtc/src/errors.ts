/**
 * Typed errors of `@raftrtc/rtc`. Every error thrown or rejected by the public API is one of these, so callers
 * can branch on `instanceof` instead of parsing messages.
 * @module
 */

/** Base class of every error this package throws. */
export class RtcError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A frame would exceed the configured size limit of its channel; nothing was sent. */
export class FrameTooLargeError extends RtcError {
  readonly bytes: number;
  readonly maxBytes: number;
  constructor(bytes: number, maxBytes: number) {
    super(`frame of ${bytes} bytes exceeds the limit of ${maxBytes} bytes`);
    this.bytes = bytes;
    this.maxBytes = maxBytes;
  }
}

/** A value could not be encoded as a frame (not JSON-serializable: a cycle, a BigInt, ...). */
export class FrameEncodeError extends RtcError {}

/** The operation needs an open data channel to the peer, and there is none. */
export class PeerNotConnectedError extends RtcError {
  readonly peerId: string;
  constructor(peerId: string) {
    super(`peer ${peerId} is not connected`);
    this.peerId = peerId;
  }
}

/** A file transfer stopped before its last byte: the connection went away, or the manager was disconnected. */
export class TransferAbortedError extends RtcError {
  readonly peerId: string;
  readonly fileId: number;
  constructor(peerId: string, fileId: number, why: string) {
    super(`file ${fileId} to ${peerId} aborted: ${why}`);
    this.peerId = peerId;
    this.fileId = fileId;
  }
}

/** Signaling failed: the server refused the connection or subscription, or a publish failed. */
export class SignalingError extends RtcError {}

/** The manager is in the wrong state for the call (already connected, or disconnected for good). */
export class ManagerStateError extends RtcError {}

/** No media API is available (Node.js, or a browser without `navigator.mediaDevices`). */
export class MediaUnavailableError extends RtcError {}

/** A short description of an unknown thrown value, for logs and error messages. */
export function describe(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'object' && e !== null && 'message' in e) return String((e as { message: unknown }).message);
  return String(e);
}
