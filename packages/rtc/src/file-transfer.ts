/**
 * Files over a peer link: a `file-meta` frame on the control channel, then the bytes as numbered chunks on the
 * bulk channel, with backpressure so a large file never fills the SCTP buffers that heartbeats also need.
 * The two channels are not ordered with each other, so a receiver may see chunks before their `file-meta`;
 * it holds a bounded number of such early bytes. A transfer belongs to one connection: if the connection is
 * replaced (recovery), the sender's promise rejects and the receiver discards the partial file.
 * @module
 */
import { describe, PeerNotConnectedError, TransferAbortedError } from './errors.js';
import { encodeChunk, type ChunkFrame, type FileMetaFrame } from './frames.js';
import type { PeerLink } from './peer-connection.js';

/** What {@link WebRTCManager.sendFile} accepts: a browser `File`/`Blob`, or bytes. */
export type FileSource = Blob | ArrayBuffer | Uint8Array;

/** Progress of one transfer, sent or received. */
export interface FileProgress {
  id: number;
  name: string;
  /** Total size in bytes. */
  size: number;
  /** Bytes sent (handed to the bulk channel) or received so far. */
  bytes: number;
}

/** A file received completely. */
export interface ReceivedFile {
  id: number;
  name: string;
  mime: string;
  size: number;
  data: Uint8Array;
}

/** Options of one send. */
export interface FileSendOptions {
  /** MIME type announced to the receiver; defaults to the Blob's `type`, else `application/octet-stream`. */
  mime?: string;
  /** Called after every chunk handed to the channel. */
  onProgress?: (progress: FileProgress) => void;
}

/** Flow-control settings of the sender. */
export interface FileSendConfig {
  chunkBytes: number;
  /** Sending pauses while the bulk channel buffers more than this many bytes... */
  highWaterBytes: number;
  /** ...until it is back to this many. */
  lowWaterBytes: number;
  /** Poll interval while paused (for implementations that never fire `bufferedamountlow`). */
  pollMs: number;
}

/**
 * A sender gives the event loop a turn at least this often: when the channel drains fast enough that sending
 * never waits, the loop would otherwise run on microtasks alone and starve the sender's own timers (Raft
 * heartbeats among them) for the whole file.
 */
const YIELD_EVERY_BYTES = 1024 * 1024;

/**
 * One turn of the event loop, without a timer: browsers clamp nested `setTimeout(0)` to 4 ms, which on a fast
 * channel is several percent of a transfer. A MessageChannel message is a task of its own (timers due by then
 * still run); Node.js has `setImmediate`.
 */
const yieldToEventLoop: () => Promise<void> = typeof setImmediate === 'function'
  ? () => new Promise((resolve) => setImmediate(resolve))
  : (() => {
      const channel = new MessageChannel();
      const waiting: (() => void)[] = [];
      channel.port1.onmessage = () => waiting.shift()?.();
      return () => new Promise<void>((resolve) => { waiting.push(resolve); channel.port2.postMessage(null); });
    })();

function readerOf(source: FileSource): { size: number; mime: string; read(start: number, end: number): Promise<Uint8Array> } {
  if (source instanceof Uint8Array) return { size: source.byteLength, mime: '', read: async (s, e) => source.subarray(s, e) };
  if (source instanceof ArrayBuffer) return { size: source.byteLength, mime: '', read: async (s, e) => new Uint8Array(source, s, e - s) };
  // A Blob is read slice by slice, so a large File is never loaded whole.
  return { size: source.size, mime: source.type, read: async (s, e) => new Uint8Array(await source.slice(s, e).arrayBuffer()) };
}

/**
 * Sends `source` to the peer of `link` as file `id`.
 * @throws {PeerNotConnectedError} the link is not connected when the transfer starts.
 * @throws {TransferAbortedError} the connection went away, or the source could not be read.
 */
export async function sendFileOver(
  link: PeerLink, id: number, source: FileSource, name: string, options: FileSendOptions, config: FileSendConfig,
): Promise<void> {
  const reader = readerOf(source);
  const bulk = link.bulkChannel; // the transfer is bound to this connection
  if (link.state !== 'connected' || bulk?.readyState !== 'open') throw new PeerNotConnectedError(link.remoteId);
  const meta: FileMetaFrame = {
    type: 'file-meta', id, name, size: reader.size,
    mime: options.mime ?? (reader.mime || 'application/octet-stream'), chunkSize: config.chunkBytes,
  };
  if (!link.sendControl(meta)) throw new PeerNotConnectedError(link.remoteId);
  let sinceYield = 0;
  for (let index = 0, offset = 0; offset < reader.size; index++) {
    if (sinceYield >= YIELD_EVERY_BYTES) {
      sinceYield = 0;
      await yieldToEventLoop();
    }
    if (bulk.bufferedAmount > config.highWaterBytes) {
      sinceYield = 0;
      try {
        await link.waitForBulkDrain(bulk, config.lowWaterBytes, config.pollMs);
      } catch (e) {
        throw new TransferAbortedError(link.remoteId, id, describe(e));
      }
    }
    const end = Math.min(reader.size, offset + config.chunkBytes);
    let bytes: Uint8Array;
    try {
      bytes = await reader.read(offset, end);
    } catch (e) {
      link.sendControl({ type: 'file-abort', id });
      throw new TransferAbortedError(link.remoteId, id, `reading the source failed: ${describe(e)}`);
    }
    if (bulk !== link.bulkChannel || !link.sendBulk(encodeChunk(id, index, bytes))) {
      throw new TransferAbortedError(link.remoteId, id, 'the connection went away');
    }
    sinceYield += end - offset;
    offset = end;
    options.onProgress?.({ id, name, size: reader.size, bytes: offset });
  }
}

/** Limits of a receiver. */
export interface IncomingLimits {
  /** Largest file accepted (the receiver holds it in memory until complete). */
  maxFileBytes: number;
  /** Files from one peer in progress at once. */
  maxConcurrentFiles: number;
  /** Bytes of chunks held while their `file-meta` has not arrived. */
  maxEarlyBytes: number;
}

/** Why the receiver dropped something. */
export type IncomingDropReason = 'file-refused' | 'file-malformed' | 'file-overflow';

/** What a receiver reports. */
export interface IncomingEvents {
  file(file: ReceivedFile): void;
  progress(progress: FileProgress): void;
  dropped(reason: IncomingDropReason): void;
}

interface Transfer { meta: FileMetaFrame; parts: Uint8Array[]; bytes: number; nextIndex: number }

/** Refused file ids remembered so their chunks are dropped quietly instead of filling the early buffer. */
const MAX_REFUSED_IDS = 64;

/** Reassembles the files one peer sends over one connection. */
export class IncomingFiles {
  readonly #limits: IncomingLimits;
  readonly #events: IncomingEvents;
  readonly #transfers = new Map<number, Transfer>();
  readonly #early = new Map<number, ChunkFrame[]>();
  #earlyBytes = 0;
  readonly #refused: number[] = [];

  constructor(limits: IncomingLimits, events: IncomingEvents) {
    this.#limits = limits;
    this.#events = events;
  }

  /** Starts a transfer announced by `file-meta`. */
  onMeta(meta: FileMetaFrame): void {
    if (this.#transfers.delete(meta.id)) return this.#refuse(meta.id, 'file-malformed'); // ids are never reused
    if (meta.size > this.#limits.maxFileBytes || this.#transfers.size >= this.#limits.maxConcurrentFiles) {
      return this.#refuse(meta.id, 'file-refused');
    }
    const t: Transfer = { meta, parts: [], bytes: 0, nextIndex: 0 };
    this.#transfers.set(meta.id, t);
    if (meta.size === 0) return this.#complete(t);
    const early = this.#early.get(meta.id);
    if (early) {
      this.#early.delete(meta.id);
      for (const c of early) {
        this.#earlyBytes -= c.data.byteLength;
        this.onChunk(c);
      }
    }
  }

  /** The sender gave up on a file. */
  onAbort(id: number): void {
    this.#transfers.delete(id);
    this.#dropEarly(id);
  }

  /** Adds one chunk; completes the file on its last byte. */
  onChunk(chunk: ChunkFrame): void {
    if (this.#refused.includes(chunk.fileId)) return;
    const t = this.#transfers.get(chunk.fileId);
    if (!t) return this.#holdEarly(chunk);
    const { meta } = t;
    const len = chunk.data.byteLength;
    const last = t.bytes + len === meta.size;
    // The bulk channel is ordered and reliable, so anything but the next full chunk (or the exact tail) is a
    // broken or hostile sender: the whole file is dropped rather than delivered wrong.
    if (chunk.index !== t.nextIndex || len === 0 || t.bytes + len > meta.size || (len !== meta.chunkSize && !last)) {
      this.#transfers.delete(meta.id);
      return this.#refuse(meta.id, 'file-malformed');
    }
    t.parts.push(chunk.data.slice()); // copy: some implementations reuse the receive buffer
    t.bytes += len;
    t.nextIndex++;
    this.#events.progress({ id: meta.id, name: meta.name, size: meta.size, bytes: t.bytes });
    if (last) this.#complete(t);
  }

  /** Discards every partial file (the connection they belonged to is gone). */
  clear(): void {
    this.#transfers.clear();
    this.#early.clear();
    this.#earlyBytes = 0;
  }

  #complete(t: Transfer): void {
    this.#transfers.delete(t.meta.id);
    const data = new Uint8Array(t.meta.size);
    let at = 0;
    for (const p of t.parts) {
      data.set(p, at);
      at += p.byteLength;
    }
    const { id, name, mime, size } = t.meta;
    this.#events.file({ id, name, mime, size, data });
  }

  #holdEarly(chunk: ChunkFrame): void {
    if (this.#earlyBytes + chunk.data.byteLength > this.#limits.maxEarlyBytes) return this.#events.dropped('file-overflow');
    const list = this.#early.get(chunk.fileId) ?? [];
    list.push({ ...chunk, data: chunk.data.slice() });
    this.#early.set(chunk.fileId, list);
    this.#earlyBytes += chunk.data.byteLength;
  }

  #dropEarly(id: number): void {
    for (const c of this.#early.get(id) ?? []) this.#earlyBytes -= c.data.byteLength;
    this.#early.delete(id);
  }

  #refuse(id: number, reason: IncomingDropReason): void {
    this.#dropEarly(id);
    this.#refused.push(id);
    if (this.#refused.length > MAX_REFUSED_IDS) this.#refused.shift();
    this.#events.dropped(reason);
  }
}
