/**
 * File sharing in a room: a file goes to every connected peer at once, peer to peer over the mesh's `bulk`
 * channel (`WebRTCManager.sendFile`: `file-meta` on control, chunks with backpressure on bulk). Nothing goes
 * through Raft: files are not part of the replicated chat.
 *
 * The mesh checks sizes and order but carries no checksum, so this layer adds a small protocol of its own
 * on the control channel's `message` frames (JSON, like the room client's `hello`):
 *
 * - `file-hash { id, sha256 }`: the sender's SHA-256 of the file, sent once the transfer's id is known;
 * - `file-ack { id, ok }`: the receiver's verdict once the file is complete and checked;
 * - `file-cancel { id }`: the sender gave up (the mesh's own `file-abort` already made the receiver drop it).
 *
 * Received files become `Blob`s with an object URL for the download link; every URL is revoked on
 * {@link FileShare.remove} and {@link FileShare.close}.
 * @module
 */
import { DEFAULT_LIMITS, type FileProgress, type MeshHub, type ReceivedFile, type WebRTCManager } from '@raftrtc/rtc';
import { RoomError } from './errors.js';

/** Largest file shared: what every receiver accepts (`IncomingFiles` holds a file in memory until complete). */
export const MAX_SHARE_BYTES = DEFAULT_LIMITS.maxFileBytes;

/** Refusals of {@link FileShare.share}: `too_large`, `no_peers`, `closed`. */
export class FileShareError extends RoomError {}

/** One receiver of a file this peer shares. */
export interface FileTargetView {
  peerId: string;
  name: string;
  /**
   * `queued` (behind another file to the same peer), `sending`, `sent` (every byte handed to the channel),
   * `delivered` (the receiver checked it), `failed`, `cancelled`.
   */
  state: 'queued' | 'sending' | 'sent' | 'delivered' | 'failed' | 'cancelled';
  bytes: number;
  error?: string;
}

/** A file in the room's file list, sent or received by this peer. */
export interface SharedFileView {
  /** Stable list key. */
  key: string;
  direction: 'out' | 'in';
  /** Who sent it (this peer for `out`). */
  from: string;
  fromName: string;
  name: string;
  size: number;
  /** The MIME type the sender announced (`''` while receiving: it is known once complete). */
  mime: string;
  at: number;
  /**
   * `out`: `sending` while any receiver is queued or sending, then `done` (some received it), `failed` (none),
   * or `cancelled`. `in`: `receiving`, `done`, `failed`, `cancelled`.
   */
  state: 'sending' | 'receiving' | 'done' | 'failed' | 'cancelled';
  /** Bytes so far: received (`in`), or handed to the channels summed over every receiver (`out`). */
  bytes: number;
  /** What 100 % is: `size` (`in`), `size` × receivers (`out`). */
  total: number;
  /** `in`: the SHA-256 matched the sender's (true), did not (never: the file is then `failed`), or is not known yet (null). */
  verified: boolean | null;
  /** Receivers of an outgoing file (empty for `in`). */
  targets: FileTargetView[];
  /** The file's bytes: the picked `File` (`out`), the received blob (`in`, once done). For previews. */
  blob: Blob | null;
  /** Object URL of a received file, for its download link (`in`, once done). */
  url: string | null;
  error?: string;
}

export interface FilesView {
  files: SharedFileView[];
  /** Why the last {@link FileShare.shareAll} refused something, for people; null when it refused nothing. */
  notice: string | null;
}

/** What {@link FileShare} needs from the room. */
export interface FileShareOptions {
  manager: Pick<WebRTCManager, 'sendFile' | 'sendMessage' | 'connectedPeers' | 'setOnFile' | 'setOnFileProgress'>;
  hub: Pick<MeshHub, 'on'>;
  localId: string;
  localName: string;
  nameOf(peerId: string): string;
}

interface Target extends FileTargetView {
  /** The mesh's transfer id, once known (first progress). */
  wireId: number | null;
}

interface Outgoing {
  key: string;
  file: File;
  at: number;
  targets: Target[];
  abort: AbortController;
  sha256: Promise<string | null>;
}

interface Incoming {
  key: string;
  from: string;
  wireId: number;
  name: string;
  size: number;
  mime: string;
  at: number;
  bytes: number;
  state: 'receiving' | 'done' | 'failed' | 'cancelled';
  verified: boolean | null;
  expected: string | null;
  actual: string | null;
  blob: Blob | null;
  url: string | null;
  error?: string;
}

type PeerFileMessage =
  | { kind: 'file-hash'; id: number; sha256: string }
  | { kind: 'file-ack'; id: number; ok: boolean }
  | { kind: 'file-cancel'; id: number };

const FILE_KINDS = new Set(['file-hash', 'file-ack', 'file-cancel']);
/** Hashes and cancels that arrived before the transfer's first chunk, kept per (peer, id); bounded against a noisy peer. */
const MAX_EARLY_NOTES = 64;

const isWireId = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 0xffffffff;

/** Validates one of this module's peer messages; null for anything else (including other kinds). */
function parseFileMessage(m: unknown): PeerFileMessage | null {
  if (typeof m !== 'object' || m === null) return null;
  const o = m as Record<string, unknown>;
  if (typeof o.kind !== 'string' || !FILE_KINDS.has(o.kind) || !isWireId(o.id)) return null;
  if (o.kind === 'file-hash') return typeof o.sha256 === 'string' && /^[0-9a-f]{64}$/.test(o.sha256) ? { kind: 'file-hash', id: o.id, sha256: o.sha256 } : null;
  if (o.kind === 'file-ack') return typeof o.ok === 'boolean' ? { kind: 'file-ack', id: o.id, ok: o.ok } : null;
  return { kind: 'file-cancel', id: o.id };
}

/** SHA-256 in hex, or null where WebCrypto is unavailable (a page served over plain http to another host). */
async function sha256Hex(data: BufferSource): Promise<string | null> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return null;
  const digest = new Uint8Array(await subtle.digest('SHA-256', data));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The type a received blob (and so its object URL) gets. The sender's claim is only shown: a peer announcing
 * `text/html` must not get a page rendered under this origin if someone opens the link in a tab. Raster
 * images keep their type (previews, and an image opened in a tab is inert); everything else downloads.
 */
export function safeBlobType(mime: string): string {
  return RASTER_IMAGE.test(mime) ? mime : 'application/octet-stream';
}

/** Raster image types browsers decode: the ones kept by {@link safeBlobType} and worth a preview. */
export const RASTER_IMAGE = /^image\/(png|jpeg|gif|webp|avif|bmp)$/;

/** A `Blob` whose every read fails: the source of a cancelled transfer (see {@link CancellableSource}). */
class CancelledRead extends Blob {
  override arrayBuffer(): Promise<ArrayBuffer> {
    return Promise.reject(new DOMException('The transfer was cancelled.', 'AbortError'));
  }
}

/**
 * The file as `sendFile` reads it, slice by slice, until `signal` aborts: the next read then fails, and the
 * mesh sends its `file-abort` (the receiver drops the partial file) and rejects with `TransferAbortedError`.
 */
class CancellableSource extends Blob {
  readonly #file: Blob;
  readonly #signal: AbortSignal;
  constructor(file: Blob, signal: AbortSignal) {
    super([file], { type: file.type });
    this.#file = file;
    this.#signal = signal;
  }
  override slice(start?: number, end?: number, contentType?: string): Blob {
    return this.#signal.aborted ? new CancelledRead([]) : this.#file.slice(start, end, contentType);
  }
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Sends files to every connected peer and receives theirs; publishes the list as an immutable
 * {@link FilesView} (same pattern as `RoomClient.subscribe`). One file at a time per receiver (the
 * receiver accepts at most `maxConcurrentFiles` at once, and they would share one channel anyway).
 */
export class FileShare {
  readonly #o: FileShareOptions;
  readonly #out = new Map<string, Outgoing>();
  readonly #in = new Map<string, Incoming>();
  /** Incoming keys in arrival order, with outgoing ones: the list order. */
  readonly #order: string[] = [];
  /** Per receiver: files waiting for the one in flight. */
  readonly #queues = new Map<string, { entry: Outgoing; target: Target }[]>();
  readonly #busy = new Set<string>();
  /** Connection epoch per peer: the mesh's transfer ids restart with a peer's new page, so keys include it. */
  readonly #epochs = new Map<string, number>();
  readonly #early = new Map<string, { sha256?: string; cancelled?: boolean }>();
  readonly #listeners = new Set<(view: FilesView) => void>();
  readonly #offs: (() => void)[] = [];
  #seq = 0;
  #closed = false;
  #queued = false;
  #notice: string | null = null;
  #view: FilesView = { files: [], notice: null };

  constructor(options: FileShareOptions) {
    this.#o = options;
    const { manager, hub } = options;
    manager.setOnFileProgress((peer, p) => this.#onProgress(peer, p));
    manager.setOnFile((peer, f) => this.#onFile(peer, f));
    this.#offs.push(
      hub.on('connected', (peer) => { this.#epochs.set(peer, (this.#epochs.get(peer) ?? 0) + 1); }),
      hub.on('disconnected', (peer) => this.#onPeerGone(peer)),
    );
  }

  /** The latest list. */
  get view(): FilesView {
    return this.#view;
  }

  /** Calls `listener` with every new view; returns the unsubscribe function (fits `useSyncExternalStore`). */
  subscribe = (listener: (view: FilesView) => void): (() => void) => {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  };

  /**
   * Sends `file` to every peer connected right now. Returns the list key.
   * @throws {FileShareError} `too_large` (over {@link MAX_SHARE_BYTES}), `no_peers`, or `closed`.
   */
  share(file: File): string {
    if (this.#closed) throw new FileShareError('closed', 'You left this room.');
    if (file.size > MAX_SHARE_BYTES) {
      throw new FileShareError('too_large', `“${file.name}” is ${formatBytes(file.size)}; files of at most ${formatBytes(MAX_SHARE_BYTES)} can be shared.`);
    }
    const peers = this.#o.manager.connectedPeers();
    if (peers.length === 0) throw new FileShareError('no_peers', 'No one else is connected yet: the file would reach nobody.');
    const entry: Outgoing = {
      key: `out.${++this.#seq}`, file, at: Date.now(), abort: new AbortController(),
      targets: peers.map((peerId) => ({ peerId, name: this.#o.nameOf(peerId), state: 'queued', bytes: 0, wireId: null })),
      sha256: file.arrayBuffer().then(sha256Hex).catch(() => null),
    };
    this.#out.set(entry.key, entry);
    this.#order.push(entry.key);
    for (const target of entry.targets) {
      const q = this.#queues.get(target.peerId) ?? [];
      q.push({ entry, target });
      this.#queues.set(target.peerId, q);
      void this.#pump(target.peerId);
    }
    this.#changed();
    return entry.key;
  }

  /**
   * Shares each of `files` (picked or dropped together) as {@link share} does; what it refuses is not thrown
   * but told in {@link FilesView.notice}, and the others are sent anyway.
   */
  shareAll(files: Iterable<File>): void {
    const refused: string[] = [];
    for (const file of files) {
      try {
        this.share(file);
      } catch (err) {
        if (!(err instanceof FileShareError)) throw err;
        if (!refused.includes(err.message)) refused.push(err.message);
      }
    }
    this.#notice = refused.length > 0 ? refused.join(' ') : null;
    this.#changed();
  }

  /** Clears {@link FilesView.notice} (the person dismissed it). */
  dismissNotice(): void {
    this.#notice = null;
    this.#changed();
  }

  /** Stops sending an outgoing file to everyone who does not have it yet. */
  cancel(key: string): void {
    const entry = this.#out.get(key);
    if (!entry || entry.abort.signal.aborted) return;
    entry.abort.abort();
    for (const t of entry.targets) {
      if (t.state !== 'queued' && t.state !== 'sending') continue;
      if (t.state === 'sending' && t.wireId !== null) this.#tell(t.peerId, { kind: 'file-cancel', id: t.wireId });
      t.state = 'cancelled';
    }
    this.#changed();
  }

  /** Takes a file off the list (cancelling it if it is being sent) and frees its object URL. */
  remove(key: string): void {
    this.cancel(key);
    const incoming = this.#in.get(key);
    if (incoming?.url) URL.revokeObjectURL(incoming.url);
    this.#out.delete(key);
    this.#in.delete(key);
    const at = this.#order.indexOf(key);
    if (at >= 0) this.#order.splice(at, 1);
    this.#changed();
  }

  /**
   * Handles a peer's `message` payload (already parsed JSON) if it is one of this module's kinds.
   * @returns whether it was (a malformed one of ours counts, and is ignored).
   */
  handlePeerMessage(from: string, payload: unknown): boolean {
    const kind = (payload as { kind?: unknown } | null)?.kind;
    if (typeof kind !== 'string' || !FILE_KINDS.has(kind)) return false;
    const m = parseFileMessage(payload);
    if (!m || this.#closed) return true;
    if (m.kind === 'file-ack') {
      for (const entry of this.#out.values()) {
        const t = entry.targets.find((x) => x.peerId === from && x.wireId === m.id);
        if (!t || t.state === 'cancelled') continue;
        t.state = m.ok ? 'delivered' : 'failed';
        if (!m.ok) t.error = 'The copy that arrived was damaged (checksum mismatch).';
        this.#changed();
      }
      return true;
    }
    const key = this.#inKey(from, m.id);
    const incoming = this.#in.get(key);
    if (!incoming) {
      const note = this.#early.get(key) ?? {};
      if (m.kind === 'file-hash') note.sha256 = m.sha256;
      else note.cancelled = true;
      this.#early.set(key, note);
      if (this.#early.size > MAX_EARLY_NOTES) this.#early.delete(this.#early.keys().next().value!);
      return true;
    }
    if (m.kind === 'file-hash') {
      incoming.expected = m.sha256;
      this.#verify(incoming);
    } else if (incoming.state === 'receiving') {
      incoming.state = 'cancelled';
      incoming.error = `${this.#o.nameOf(from)} cancelled it.`;
      this.#changed();
    }
    return true;
  }

  /** Stops every transfer and revokes every object URL; the list stays readable but frozen. */
  close(): void {
    if (this.#closed) return;
    for (const key of this.#out.keys()) this.cancel(key);
    this.#closed = true;
    for (const off of this.#offs) off();
    this.#o.manager.setOnFile(null);
    this.#o.manager.setOnFileProgress(null);
    for (const f of this.#in.values()) {
      if (f.url) URL.revokeObjectURL(f.url);
      f.url = null;
      if (f.state === 'receiving') { f.state = 'failed'; f.error = 'You left the room.'; }
    }
    this.#queues.clear();
    this.#changed();
  }

  // ---- Sending -----------------------------------------------------------------------------------------

  async #pump(peer: string): Promise<void> {
    if (this.#busy.has(peer)) return;
    const job = this.#queues.get(peer)?.shift();
    if (!job) return;
    this.#busy.add(peer);
    try {
      await this.#sendTo(job.entry, job.target);
    } finally {
      this.#busy.delete(peer);
      void this.#pump(peer);
    }
  }

  async #sendTo(entry: Outgoing, t: Target): Promise<void> {
    if (t.state !== 'queued') return; // cancelled, or its peer went away while it waited
    t.state = 'sending';
    this.#changed();
    const sha256 = await entry.sha256;
    if (t.state !== 'sending') return; // cancelled, or its peer went away, while the file was being hashed
    const announce = (id: number): void => {
      if (t.wireId !== null) return;
      t.wireId = id;
      if (sha256 !== null) this.#tell(t.peerId, { kind: 'file-hash', id, sha256 });
    };
    try {
      const source = new CancellableSource(entry.file, entry.abort.signal);
      const sent = await this.#o.manager.sendFile(t.peerId, source, entry.file.name, {
        onProgress: (p) => {
          announce(p.id);
          t.bytes = p.bytes;
          this.#changed();
        },
      });
      announce(sent.id); // an empty file has no progress
      t.bytes = entry.file.size;
      if (t.state === 'sending') t.state = 'sent';
    } catch (err) {
      if (t.state === 'sending') {
        t.state = entry.abort.signal.aborted ? 'cancelled' : 'failed';
        if (t.state === 'failed') t.error = `The connection to ${t.name} broke off (${errorText(err)}).`;
      }
    }
    this.#changed();
  }

  #tell(peer: string, m: PeerFileMessage): void {
    this.#o.manager.sendMessage(peer, JSON.stringify(m));
  }

  // ---- Receiving ---------------------------------------------------------------------------------------

  #inKey(peer: string, id: number): string {
    return `in.${peer}.${this.#epochs.get(peer) ?? 0}.${id}`;
  }

  #incoming(peer: string, id: number, name: string, size: number): Incoming {
    const key = this.#inKey(peer, id);
    let f = this.#in.get(key);
    if (f) return f;
    const note = this.#early.get(key);
    this.#early.delete(key);
    f = {
      key, from: peer, wireId: id, name, size, mime: '', at: Date.now(), bytes: 0, state: 'receiving',
      verified: null, expected: note?.sha256 ?? null, actual: null, blob: null, url: null,
    };
    if (note?.cancelled) { f.state = 'cancelled'; f.error = `${this.#o.nameOf(peer)} cancelled it.`; }
    this.#in.set(key, f);
    this.#order.push(key);
    return f;
  }

  #onProgress(peer: string, p: FileProgress): void {
    if (this.#closed) return;
    const f = this.#incoming(peer, p.id, p.name, p.size);
    if (f.state !== 'receiving') return;
    f.bytes = p.bytes;
    this.#changed();
  }

  #onFile(peer: string, received: ReceivedFile): void {
    if (this.#closed) return;
    const f = this.#incoming(peer, received.id, received.name, received.size);
    if (f.state !== 'receiving') return;
    f.bytes = received.size;
    f.mime = received.mime;
    f.state = 'done';
    // The mesh hands over a fresh array per file; its buffer is a plain ArrayBuffer.
    const data = received.data as Uint8Array<ArrayBuffer>;
    f.blob = new Blob([data], { type: safeBlobType(received.mime) });
    f.url = URL.createObjectURL(f.blob);
    this.#changed();
    void sha256Hex(data).then((hex) => {
      f.actual = hex;
      this.#verify(f);
    }, () => {});
  }

  /** Compares once both hashes are known; answers the sender either way. */
  #verify(f: Incoming): void {
    if (f.state !== 'done' || f.expected === null || f.actual === null || f.verified !== null) return;
    f.verified = f.expected === f.actual;
    if (!f.verified) {
      f.state = 'failed';
      f.error = 'The file arrived damaged (its SHA-256 differs from the sender’s) and was discarded.';
      if (f.url) URL.revokeObjectURL(f.url);
      f.url = null;
      f.blob = null;
    }
    this.#tell(f.from, { kind: 'file-ack', id: f.wireId, ok: f.verified });
    this.#changed();
  }

  #onPeerGone(peer: string): void {
    // The mesh discards a partial file whose connection went away (there is no resume).
    for (const f of this.#in.values()) {
      if (f.from === peer && f.state === 'receiving') {
        f.state = 'failed';
        f.error = `The connection to ${this.#o.nameOf(peer)} broke off.`;
      }
    }
    for (const { target } of this.#queues.get(peer) ?? []) {
      target.state = 'failed';
      target.error = `${target.name} is no longer connected.`;
    }
    this.#queues.delete(peer);
    this.#changed();
  }

  // ---- View --------------------------------------------------------------------------------------------

  #changed(): void {
    if (this.#queued) return;
    this.#queued = true;
    queueMicrotask(() => {
      this.#queued = false;
      const files = this.#order.map((key) => this.#viewOf(key)).filter((v): v is SharedFileView => v !== null);
      this.#view = { files, notice: this.#notice };
      for (const l of this.#listeners) l(this.#view);
    });
  }

  #viewOf(key: string): SharedFileView | null {
    const o = this.#out.get(key);
    if (o) {
      const targets = o.targets.map(({ wireId: _, ...t }) => ({ ...t }));
      const states = targets.map((t) => t.state);
      const state: SharedFileView['state'] = states.some((s) => s === 'queued' || s === 'sending') ? 'sending'
        : states.some((s) => s === 'sent' || s === 'delivered') ? 'done'
        : states.some((s) => s === 'failed') ? 'failed' : 'cancelled';
      return {
        key, direction: 'out', from: this.#o.localId, fromName: this.#o.localName, name: o.file.name, size: o.file.size,
        mime: o.file.type, at: o.at, state, bytes: targets.reduce((n, t) => n + t.bytes, 0), total: o.file.size * targets.length,
        verified: null, targets, blob: o.file, url: null,
      };
    }
    const f = this.#in.get(key);
    if (!f) return null;
    return {
      key, direction: 'in', from: f.from, fromName: this.#o.nameOf(f.from), name: f.name, size: f.size, mime: f.mime, at: f.at,
      state: f.state, bytes: f.bytes, total: f.size, verified: f.verified, targets: [], blob: f.blob, url: f.url,
      ...(f.error ? { error: f.error } : {}),
    };
  }
}

/** `512 B`, `3.4 KiB`, `12 MiB`: sizes in binary units, one decimal below ten. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${v >= 10 || Number.isInteger(v) ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}
