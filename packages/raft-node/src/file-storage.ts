/**
 * `FileStorage`: durable Raft storage in a directory, for Node.js.
 *
 * Layout of the directory:
 * - `log-<seq>-<firstIndex>.seg`: the log, an append-only sequence of segments. `seq` orders them (16
 *   digits, so names sort); `firstIndex` is the first entry index the segment was opened for, for people
 *   reading a listing. A segment is rolled once it passes `segmentBytes`.
 * - `snapshot.snap`: the newest snapshot, replaced atomically (written to `snapshot.snap.tmp`, fsynced,
 *   renamed, directory fsynced).
 * - `LOCK`: the pid of the process that has the directory open.
 *
 * Every record, in segments and in the snapshot file, is framed as `[length u32le][crc u32le][payload]`,
 * where `crc` is the CRC-32 of the four length bytes followed by the payload, and the payload is one kind byte
 * followed by UTF-8 JSON.
 *
 * One `save()` appends exactly one log record, `{ e?: entries, h?: hardState }`, and fsyncs once, unless all
 * it carries is a new commit index (which a restarted node can relearn, so it is not worth an fsync). The
 * entries record carries its own truncation ("the stored entries from `e[0].index` on are replaced by these"),
 * so truncation and the replacing entries become durable together: a crash can never leave a truncation
 * without the entries that justified it, nor a hard state whose `commit` points past entries that did not
 * land. A torn write can only lose the one save that had not resolved yet.
 * @module
 */
import { mkdir, open, readdir, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import { resolve, join } from 'node:path';
import {
  RaftError, UsageError, type Entry, type HardState, type Snapshot, type Storage, type StorageSizes, type StorageState, type StorageUpdate,
} from '@raftrtc/raft';
import { decodeRecord, encodeRecord, encodeRecordInSlices, validRecordAfter } from './records.js';

export interface FileStorageOptions {
  /** A segment is closed and a new one started once it reaches this many bytes. Default 64 MiB. */
  segmentBytes?: number;
  /**
   * Whether to fsync. Default true; false only for tests and benchmarks that measure something else, since
   * without it an acknowledged write can be lost on power failure.
   */
  fsync?: boolean;
}

/** The directory holds data that cannot be read back as written: a record fails its CRC or does not parse. */
export class StorageCorruptionError extends RaftError {
  readonly file: string;
  readonly offset: number;
  constructor(file: string, offset: number, reason: string) {
    super(`storage corrupted: ${file} at byte ${offset}: ${reason}`);
    this.file = file;
    this.offset = offset;
  }
}

/**
 * An earlier write or fsync failed, so what is on disk is unknown (after a failed fsync the kernel may have
 * dropped the dirty pages): this handle refuses every further write. Reopening the directory recovers.
 */
export class StorageFailedError extends RaftError {}

/** Another `FileStorage` (in this process or another live one) has the directory open. */
export class StorageLockedError extends RaftError {
  readonly dir: string;
  constructor(dir: string, holder: string) {
    super(`storage directory ${dir} is already in use by ${holder}`);
    this.dir = dir;
  }
}

const KIND_LOG = 1;
const KIND_SNAPSHOT = 2;
const SNAPSHOT_FILE = 'snapshot.snap';
const LOCK_FILE = 'LOCK';
const SEGMENT_RE = /^log-(\d{16})-(\d{16})\.seg$/;
const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

/** Directories open in this process: a second FileStorage on one directory would interleave appends. */
const openDirs = new Set<string>();

interface LogRecord { e?: Entry[]; h?: HardState }
interface SnapshotRecord {
  snapshot: Snapshot;
  /**
   * Entries in segments with a smaller seq are void. A snapshot delivered by `save()` replaces the whole log,
   * and this makes that replacement take effect the moment the snapshot file is renamed, whether or not the
   * log write that follows it lands.
   */
  logSeq: number;
  /**
   * The hard state and entries of the `save()` that installed the snapshot, so that the install is atomic:
   * replayed right before segment `logSeq`. `compact()` leaves them out, as that save has then long resolved
   * and its log record carries them.
   */
  h?: HardState;
  e?: Entry[];
}

interface Segment {
  seq: number;
  name: string;
  /** Highest entry index any record in the segment wrote (0 for none or void): whether compaction covers it. */
  maxIndex: number;
}

function segmentName(seq: number, firstIndex: number): string {
  return `log-${String(seq).padStart(16, '0')}-${String(firstIndex).padStart(16, '0')}.seg`;
}

/**
 * Durable {@link Storage} in a directory. `load()` first (it takes the directory lock and
 * recovers a torn tail), then `save()`/`compact()` one at a time, then `close()`.
 */
export class FileStorage implements Storage {
  readonly dir: string;
  private readonly segmentBytes: number;
  private readonly doFsync: boolean;
  private loaded = false;
  private closed = false;
  private locked = false;
  private failure: unknown = null;
  private segments: Segment[] = [];
  private active: FileHandle | null = null;
  private activeSize = 0;
  private nextSeq = 1;
  private logSeq = 0;
  private hardState: HardState | null = null;
  /** Bytes of log records written since the newest snapshot, and that snapshot's bytes (`sizes()`). */
  private logBytes = 0;
  private snapshotBytes = 0;
  /** `hardState` moved only its commit index since the last record, so it is not on disk yet. */
  private hardStateUnwritten = false;
  private snapIndex = 0;
  private lastIndex = 0;
  /** Serialises calls, so a caller that does not await still gets them applied in order. */
  private queue: Promise<unknown> = Promise.resolve();
  /** The compaction under way (its file write runs outside `queue`). */
  private compaction: Promise<unknown> = Promise.resolve();

  constructor(dir: string, options: FileStorageOptions = {}) {
    this.dir = resolve(dir);
    this.segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.doFsync = options.fsync ?? true;
  }

  load(): Promise<StorageState> {
    return this.serial(() => this.doLoad());
  }

  save(update: StorageUpdate): Promise<void> {
    return this.serial(() => this.guard(() => this.doSave(update)));
  }

  /**
   * Writes the snapshot beside the log and then switches to it. The long part (serialising and fsyncing a
   * whole state machine) runs alongside `save()`s, so appends do not stall behind it; only the switch — the
   * rename and dropping covered segments — waits its turn. One compaction at a time.
   */
  compact(snapshot: Snapshot): Promise<void> {
    const run = this.compaction.then(() => this.doCompact(snapshot));
    this.compaction = run.catch(() => undefined);
    return run;
  }

  /** Log bytes written since the newest snapshot, and its size: RaftNode compacts once the first reaches the second. */
  sizes(): StorageSizes {
    return { logBytes: this.logBytes, snapshotBytes: this.snapshotBytes };
  }

  close(): Promise<void> {
    // A compaction's file write runs outside `queue`: let it finish and switch before the handle goes away.
    return this.compaction.then(() => this.serial(() => this.doClose()));
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private check(): void {
    if (this.closed) throw new UsageError('FileStorage is closed');
    if (!this.loaded) throw new UsageError('FileStorage.load() must come before any write');
    if (this.failure !== null) throw new StorageFailedError('an earlier write to this FileStorage failed; reopen it', { cause: this.failure });
  }

  /** Runs a write; an I/O failure poisons the handle, since retrying could append after a half-written record. */
  private async guard(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (!(err instanceof RaftError)) this.failure = err;
      throw err;
    }
  }

  private async doLoad(): Promise<StorageState> {
    if (this.closed) throw new UsageError('FileStorage is closed');
    if (this.loaded) throw new UsageError('FileStorage.load() is called once');
    await mkdir(this.dir, { recursive: true });
    await this.lock();
    try {
      return await this.recover();
    } catch (err) {
      await this.unlock();
      throw err;
    }
  }

  private async recover(): Promise<StorageState> {
    const names = await readdir(this.dir);
    let dirty = false;
    for (const n of names) {
      // A temporary file is a snapshot whose rename never happened: the previous snapshot still stands.
      if (n.endsWith('.tmp')) { await unlink(join(this.dir, n)); dirty = true; }
    }

    let snapshot: Snapshot | null = null;
    let install: LogRecord | null = null;
    if (names.includes(SNAPSHOT_FILE)) {
      const buf = await readFile(join(this.dir, SNAPSHOT_FILE));
      const rec = decodeRecord(buf, 0);
      // The snapshot file only ever appears whole (fsynced before its rename), so any damage is corruption.
      if (!rec || rec.end !== buf.length || rec.kind !== KIND_SNAPSHOT) {
        throw new StorageCorruptionError(join(this.dir, SNAPSHOT_FILE), 0, 'the snapshot record is damaged');
      }
      const body = this.parse<SnapshotRecord>(rec.body, SNAPSHOT_FILE, 0);
      this.snapshotBytes = buf.length;
      snapshot = body.snapshot;
      this.logSeq = body.logSeq;
      install = { h: body.h, e: body.e };
    }
    const snapIndex = snapshot?.index ?? 0;

    const segs = names.flatMap((name) => {
      const m = SEGMENT_RE.exec(name);
      return m ? [{ seq: Number(m[1]), name, maxIndex: 0 }] : [];
    }).sort((a, b) => a.seq - b.seq);

    let hardState: HardState | null = null;
    let log: Entry[] = [];
    let base = 0; // index of log[0]
    const kept: Segment[] = [];
    /** Replays one log record; `seg` is null for the snapshot file's install record. */
    const apply = (body: LogRecord, seg: Segment | null, file: string, off: number): void => {
      if (body.h) hardState = body.h;
      const e = body.e;
      if (!e || e.length === 0 || (seg && seg.seq < this.logSeq)) return;
      const from = e[0].index;
      const lastIdx = base + log.length - 1;
      if (log.length === 0 || from < base) { log = e.slice(); base = from; }
      else if (from <= lastIdx + 1) { log.length = from - base; for (const x of e) log.push(x); }
      else if (from - 1 <= snapIndex) { log = e.slice(); base = from; } // the gap lies inside the snapshot
      else throw new StorageCorruptionError(file, off, `entries from ${from} follow the last entry ${lastIdx}: a gap in the log`);
      if (seg) seg.maxIndex = Math.max(seg.maxIndex, e[e.length - 1].index);
    };
    const applyInstall = (): void => {
      if (install) apply(install, null, join(this.dir, SNAPSHOT_FILE), 0);
      install = null;
    };
    for (let si = 0; si < segs.length; si++) {
      const seg = segs[si];
      if (seg.seq >= this.logSeq) applyInstall();
      const file = join(this.dir, seg.name);
      const buf = await readFile(file);
      const last = si === segs.length - 1;
      let off = 0;
      while (off < buf.length) {
        const rec = decodeRecord(buf, off);
        if (!rec || rec.kind !== KIND_LOG) {
          // Only the one save that was being written at a crash can be incomplete: the last bytes of the last
          // segment, with nothing valid after them. Anything else is damage to acknowledged data.
          if (last && !validRecordAfter(buf, off)) break;
          throw new StorageCorruptionError(file, off, rec ? `unknown record kind ${rec.kind}` : 'a record fails its length or CRC check');
        }
        apply(this.parse<LogRecord>(rec.body, file, off), seg, file, off);
        if (seg.seq >= this.logSeq) this.logBytes += rec.end - off;
        off = rec.end;
      }
      if (off < buf.length) {
        // Cut the torn tail so a later reader never has to decide again, and make the cut durable.
        const fh = await open(file, 'r+');
        try { await fh.truncate(off); if (this.doFsync) await fh.sync(); } finally { await fh.close(); }
      }
      if (off === 0) { await unlink(file); dirty = true; } else kept.push(seg);
    }

    applyInstall();
    const first = Math.max(0, snapIndex + 1 - base);
    const entries = log.length > 0 ? log.slice(first) : [];
    this.segments = kept;
    this.hardState = hardState;
    this.snapIndex = snapIndex;
    this.lastIndex = entries.length > 0 ? entries[entries.length - 1].index : snapIndex;
    this.nextSeq = Math.max(segs.length > 0 ? segs[segs.length - 1].seq + 1 : 1, this.logSeq, 1);
    if (dirty) await this.syncDir();
    this.loaded = true;
    return { hardState, snapshot, entries };
  }

  private parse<T>(body: Buffer, file: string, offset: number): T {
    try {
      return JSON.parse(body.toString('utf8')) as T;
    } catch (err) {
      // The CRC matched, so the writer produced these bytes: still unreadable, still refused.
      throw new StorageCorruptionError(file, offset, `record does not parse: ${(err as Error).message}`);
    }
  }

  /** `force`: write (and fsync) the hard state even if only its commit index moved. */
  private async doSave(update: StorageUpdate, force = false): Promise<void> {
    this.check();
    if (update.snapshot) {
      // The snapshot replaces the whole log: void every existing segment and start a new one.
      const install: LogRecord = {};
      if (update.hardState) install.h = update.hardState;
      if (update.entries.length > 0) install.e = update.entries as Entry[];
      await this.writeSnapshot(update.snapshot, this.nextSeq, install);
      await this.closeActive();
      this.lastIndex = update.snapshot.index;
    }
    const rec: LogRecord = {};
    if (update.entries.length > 0) rec.e = update.entries as Entry[];
    // Only a changed term or vote, or new entries, must be durable before the node answers anyone (Raft
    // Figure 2). A commit index alone may be lost: the node relearns it from the leader or from a quorum
    // after a restart (etcd's MustSync). So a save that only moves the commit index writes nothing: the new
    // hard state rides along with the next record, or is written at close().
    const prev = this.hardState;
    let mustSync = force || rec.e !== undefined || !!update.snapshot;
    if (update.hardState) {
      this.hardState = update.hardState;
      if (!prev || prev.term !== update.hardState.term || prev.vote !== update.hardState.vote) mustSync = true;
    }
    if (!mustSync) {
      if (update.hardState) this.hardStateUnwritten = true;
      return;
    }
    if (update.hardState || this.hardStateUnwritten) rec.h = this.hardState!;
    this.hardStateUnwritten = false;
    if (rec.e === undefined && rec.h === undefined && !update.snapshot) return;

    let created = false;
    if (!this.active || this.activeSize >= this.segmentBytes) {
      await this.closeActive();
      const firstIndex = rec.e ? rec.e[0].index : this.lastIndex + 1;
      const seg: Segment = { seq: this.nextSeq++, name: segmentName(this.nextSeq - 1, firstIndex), maxIndex: 0 };
      this.active = await open(join(this.dir, seg.name), 'wx');
      this.activeSize = 0;
      this.segments.push(seg);
      created = true;
      // Each segment starts with the hard state, so deleting older segments never loses it.
      if (this.hardState) rec.h = this.hardState;
    }
    if (rec.e !== undefined || rec.h !== undefined) {
      const buf = encodeRecord(KIND_LOG, rec);
      let done = 0;
      while (done < buf.length) {
        const { bytesWritten } = await this.active!.write(buf, done, buf.length - done, this.activeSize + done);
        done += bytesWritten;
      }
      this.activeSize += buf.length;
      this.logBytes += buf.length;
      if (rec.e) {
        const seg = this.segments[this.segments.length - 1];
        const lastE = rec.e[rec.e.length - 1].index;
        seg.maxIndex = Math.max(seg.maxIndex, lastE);
        this.lastIndex = lastE;
      }
    }
    if (this.doFsync && (mustSync || created)) await this.active!.sync();
    if (created) await this.syncDir();
    if (update.snapshot) {
      this.snapIndex = update.snapshot.index;
      await this.dropSegments((s) => s.seq < this.logSeq);
    }
  }

  private async doCompact(snapshot: Snapshot): Promise<void> {
    this.check();
    if (snapshot.index <= this.snapIndex) return; // an older snapshot adds nothing
    const logSeq = this.logSeq;
    const logBytesBefore = this.logBytes;
    const tmp = join(this.dir, SNAPSHOT_FILE + '.compact.tmp');
    let bytes = 0;
    await this.guard(async () => { bytes = await this.writeFileSynced(tmp, await encodeRecordInSlices(KIND_SNAPSHOT, { snapshot, logSeq } satisfies SnapshotRecord)); });
    await this.serial(() => this.guard(async () => {
      // A snapshot installed from the leader meanwhile (always newer: it is past our commit index) voided
      // the log this one was written against.
      this.check();
      if (snapshot.index <= this.snapIndex || this.logSeq !== logSeq) { await unlink(tmp).catch(() => undefined); return; }
      await this.installSnapshotFile(tmp, logSeq);
      this.snapIndex = snapshot.index;
      // What was appended while the snapshot was written comes after it.
      this.snapshotBytes = bytes;
      this.logBytes -= logBytesBefore;
      await this.dropSegments((s) => s.seq < this.logSeq || s.maxIndex <= snapshot.index);
    }));
  }

  /** Deletes the oldest segments while `covered` holds, never the newest (it holds the latest hard state). */
  private async dropSegments(covered: (s: Segment) => boolean): Promise<void> {
    // No directory fsync after unlinking: a segment that reappears after a crash only holds entries the
    // snapshot covers (or void ones), which load() discards anyway.
    while (this.segments.length > 1 && covered(this.segments[0])) {
      const seg = this.segments.shift()!;
      await unlink(join(this.dir, seg.name));
    }
  }

  private async writeSnapshot(snapshot: Snapshot, logSeq: number, install: LogRecord = {}): Promise<void> {
    const tmp = join(this.dir, SNAPSHOT_FILE + '.tmp');
    const bytes = await this.writeFileSynced(tmp, await encodeRecordInSlices(KIND_SNAPSHOT, { snapshot, logSeq, ...install } satisfies SnapshotRecord));
    await this.installSnapshotFile(tmp, logSeq);
    this.snapshotBytes = bytes;
    this.logBytes = 0;
  }

  /** Makes a fully written, fsynced snapshot file the snapshot, atomically. */
  private async installSnapshotFile(tmp: string, logSeq: number): Promise<void> {
    await rename(tmp, join(this.dir, SNAPSHOT_FILE));
    await this.syncDir();
    this.logSeq = logSeq;
  }

  /** Writes and fsyncs a whole file; returns its size. */
  private async writeFileSynced(path: string, pieces: readonly Buffer[]): Promise<number> {
    const fh = await open(path, 'w');
    try {
      let pos = 0;
      for (const buf of pieces) {
        let done = 0;
        while (done < buf.length) done += (await fh.write(buf, done, buf.length - done, pos + done)).bytesWritten;
        pos += buf.length;
      }
      if (this.doFsync) await fh.sync();
      return pos;
    } finally {
      await fh.close();
    }
  }

  private async closeActive(): Promise<void> {
    const fh = this.active;
    this.active = null;
    if (fh) await fh.close();
  }

  private async syncDir(): Promise<void> {
    if (!this.doFsync) return;
    const fh = await open(this.dir, 'r');
    try { await fh.sync(); } finally { await fh.close(); }
  }

  private async doClose(): Promise<void> {
    if (this.closed) return;
    if (this.hardStateUnwritten && this.failure === null) await this.guard(() => this.doSave({ hardState: null, snapshot: null, entries: [] }, true));
    this.closed = true;
    await this.closeActive();
    if (this.locked) await this.unlock();
  }

  private async lock(): Promise<void> {
    if (openDirs.has(this.dir)) throw new StorageLockedError(this.dir, 'another FileStorage in this process');
    const path = join(this.dir, LOCK_FILE);
    for (let attempt = 0; ; attempt++) {
      try {
        const fh = await open(path, 'wx');
        try { await fh.writeFile(String(process.pid)); } finally { await fh.close(); }
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        // Someone took the stale lock between our unlink and our create: they hold it now.
        if (attempt > 0) throw new StorageLockedError(this.dir, 'another process that just took it over');
        const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
        // A lock left by a process that died (kill -9 included) is stale; a live holder keeps it.
        if (pid > 0 && pid !== process.pid && isAlive(pid)) throw new StorageLockedError(this.dir, `process ${pid}`);
        await unlink(path).catch(() => undefined);
      }
    }
    openDirs.add(this.dir);
    this.locked = true;
  }

  private async unlock(): Promise<void> {
    this.locked = false;
    openDirs.delete(this.dir);
    await unlink(join(this.dir, LOCK_FILE)).catch(() => undefined);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
