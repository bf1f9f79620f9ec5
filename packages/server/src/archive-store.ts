/**
 * The message archive: where a room's leader puts chat messages it flushes out of the replicated state
 * (product spec §2, "leader-only flush"). The leader deletes messages from the Raft log only after the
 * archive answered, so an append is durable (written and fsynced) before it resolves.
 *
 * One append-only file per archive key (`<key>.archive`), one record per message in the framing of
 * FileStorage (`encodeRecord`: length, CRC, kind, JSON), so a torn tail after a crash is found and cut off
 * on open. An index of record offsets and the set of message ids stay in memory: appends skip ids already
 * archived (a new leader re-sends the batch its predecessor may have archived already), and a page is one
 * contiguous read.
 * @module
 */
import { constants, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeRecord, encodeRecord, validRecordAfter } from '@raftrtc/raft-node';

/** One archived chat message, as the room's chat state held it. */
export interface ArchivedMessage {
  readonly id: string;
  readonly sender: string;
  readonly name: string;
  readonly text: string;
  /** The sender's clock when it sent the message, in ms since the epoch. */
  readonly sentAt: number;
}

/** A page of an archive, oldest first. */
export interface ArchivePage {
  readonly messages: ArchivedMessage[];
  /** Position (0-based, in archive order) of `messages[0]`; the next older page ends before it. */
  readonly start: number;
  /** Messages in the archive. */
  readonly total: number;
}

/** Refused archive input or a full archive. `code` is the API error code. */
export class ArchiveError extends Error {
  constructor(readonly code: 'invalid_archive_batch' | 'archive_full' | 'invalid_archive_key', message: string) {
    super(message);
    this.name = 'ArchiveError';
  }
}

/** Longest accepted field values: what the room's chat accepts, with room to spare for the id. */
export const ARCHIVE_LIMITS = { idLength: 200, senderLength: 128, nameLength: 64, textLength: 4_000, batch: 100 } as const;

const KIND_MESSAGE = 1;
const KEY = /^[A-Za-z0-9_~-]{1,100}$/;
const SUFFIX = '.archive';

const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length >= 1 && v.length <= max;

/** Validates a batch from the network; throws {@link ArchiveError} naming the first bad message. */
export function validateArchiveBatch(value: unknown): ArchivedMessage[] {
  if (!Array.isArray(value)) throw new ArchiveError('invalid_archive_batch', 'messages must be an array');
  if (value.length === 0 || value.length > ARCHIVE_LIMITS.batch) throw new ArchiveError('invalid_archive_batch', `a batch holds 1 to ${ARCHIVE_LIMITS.batch} messages`);
  return value.map((m: unknown, i) => {
    const msg = m as Partial<ArchivedMessage> | null;
    const bad = typeof msg !== 'object' || msg === null ? 'is not an object'
      : !isText(msg.id, ARCHIVE_LIMITS.idLength) ? 'has a bad id'
        : !isText(msg.sender, ARCHIVE_LIMITS.senderLength) ? 'has a bad sender'
          : !isText(msg.name, ARCHIVE_LIMITS.nameLength) ? 'has a bad name'
            : !isText(msg.text, ARCHIVE_LIMITS.textLength) ? 'has a bad text'
              : typeof msg.sentAt !== 'number' || !Number.isFinite(msg.sentAt) ? 'has a bad sentAt' : null;
    if (bad) throw new ArchiveError('invalid_archive_batch', `message ${i} ${bad}`);
    // Only the known fields are kept: the archive stores what it validated, nothing a client slipped in.
    return { id: msg!.id!, sender: msg!.sender!, name: msg!.name!, text: msg!.text!, sentAt: msg!.sentAt! };
  });
}

/** Options of {@link FileArchiveStore}. */
export interface FileArchiveOptions {
  /** The directory of the archive files; default a fresh temporary directory, removed by `close()`. */
  readonly dir?: string;
  /** Most messages one archive holds; an append past it is refused with `archive_full`. Default 1,000,000. */
  readonly maxMessages?: number;
  /** Whether to fsync appends (default true; false only for tests that measure something else). */
  readonly fsync?: boolean;
  /** Remove the archives found in `dir` when first used, as the server does (default false: reopen them). */
  readonly fresh?: boolean;
}

interface Archive {
  readonly file: FileHandle;
  /** Byte offset of every record, then the file's size: record i spans offsets[i]..offsets[i+1]. */
  readonly offsets: number[];
  readonly ids: Set<string>;
  /** Appends and reads of this archive, one at a time. */
  queue: Promise<unknown>;
}

/** A durable archive of chat messages, one per key, in files (see the module comment). */
export class FileArchiveStore {
  private readonly options: FileArchiveOptions;
  private dir: string | null;
  private readonly ownsDir: boolean;
  private readonly archives = new Map<string, Promise<Archive>>();
  private started: Promise<void> | null = null;

  constructor(options: FileArchiveOptions = {}) {
    this.options = options;
    this.dir = options.dir ?? null;
    this.ownsDir = options.dir === undefined;
  }

  /**
   * Appends the messages whose ids the archive does not hold yet, in order, durably. Resolves with how
   * many were added and the archive's size.
   * @throws {ArchiveError} `archive_full`, or `invalid_archive_key`.
   */
  async append(key: string, messages: readonly ArchivedMessage[]): Promise<{ added: number; total: number }> {
    const archive = await this.archive(key);
    return this.serial(archive, async () => {
      const seen = new Set<string>();
      const fresh = messages.filter((m) => !archive.ids.has(m.id) && !seen.has(m.id) && seen.add(m.id));
      const total = archive.offsets.length - 1;
      if (fresh.length === 0) return { added: 0, total };
      const max = this.options.maxMessages ?? 1_000_000;
      if (total + fresh.length > max) throw new ArchiveError('archive_full', `the archive holds at most ${max} messages`);
      const records = fresh.map((m) => encodeRecord(KIND_MESSAGE, m));
      const at = archive.offsets[archive.offsets.length - 1]!;
      const bytes = Buffer.concat(records);
      try {
        await archive.file.write(bytes, 0, bytes.length, at);
        if (this.options.fsync !== false) await archive.file.datasync();
      } catch (err) {
        // Part of the batch may have landed: cut it off so the file stays exactly what the index says.
        await archive.file.truncate(at).catch(() => {});
        throw err;
      }
      let offset = at;
      for (const [i, r] of records.entries()) {
        offset += r.length;
        archive.offsets.push(offset);
        archive.ids.add(fresh[i]!.id);
      }
      return { added: fresh.length, total: total + fresh.length };
    });
  }

  /** Up to `limit` messages ending before position `before` (default: the newest), oldest first. */
  async read(key: string, before: number | undefined, limit: number): Promise<ArchivePage> {
    const archive = await this.archive(key);
    return this.serial(archive, async () => {
      const total = archive.offsets.length - 1;
      const end = Math.min(before ?? total, total);
      const start = Math.max(0, end - limit);
      if (end <= start) return { messages: [], start: end, total };
      const from = archive.offsets[start]!;
      const buf = Buffer.allocUnsafe(archive.offsets[end]! - from);
      await archive.file.read(buf, 0, buf.length, from);
      const messages: ArchivedMessage[] = [];
      for (let o = 0; o < buf.length;) {
        const rec = decodeRecord(buf, o);
        if (!rec) throw new Error(`archive ${key} changed under its index at byte ${from + o}`);
        messages.push(JSON.parse(rec.body.toString('utf8')) as ArchivedMessage);
        o = rec.end;
      }
      return { messages, start, total };
    });
  }

  /** Deletes an archive (its room is gone). */
  async drop(key: string): Promise<void> {
    const pending = this.archives.get(key);
    this.archives.delete(key);
    if (pending) {
      const archive = await pending.catch(() => null);
      if (archive) await this.serial(archive, () => archive.file.close());
    }
    if (this.dir && KEY.test(key)) await rm(join(this.dir, key + SUFFIX), { force: true });
  }

  /** Closes every file; a temporary directory made by the store is removed with its archives. */
  async close(): Promise<void> {
    const all = [...this.archives.values()];
    this.archives.clear();
    for (const pending of all) {
      const archive = await pending.catch(() => null);
      if (archive) await this.serial(archive, () => archive.file.close()).catch(() => {});
    }
    if (this.ownsDir && this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  private serial<T>(archive: Archive, job: () => Promise<T>): Promise<T> {
    const run = archive.queue.then(job, job);
    archive.queue = run.catch(() => {});
    return run;
  }

  /** Makes the directory on first use (and empties it with the `fresh` option). */
  private start(): Promise<void> {
    this.started ??= (async () => {
      if (this.dir === null) this.dir = mkdtempSync(join(tmpdir(), 'raftrtc-archive-'));
      await mkdir(this.dir, { recursive: true });
      if (this.options.fresh) for (const name of await readdir(this.dir)) if (name.endsWith(SUFFIX)) await rm(join(this.dir, name), { force: true });
    })();
    return this.started;
  }

  private archive(key: string): Promise<Archive> {
    if (!KEY.test(key)) return Promise.reject(new ArchiveError('invalid_archive_key', `bad archive key ${JSON.stringify(key)}`));
    let pending = this.archives.get(key);
    if (!pending) {
      pending = this.start().then(() => this.openArchive(join(this.dir!, key + SUFFIX)));
      this.archives.set(key, pending);
      pending.catch(() => this.archives.delete(key));
    }
    return pending;
  }

  /** Opens (or creates) an archive file and indexes it, cutting off a torn tail. */
  private async openArchive(path: string): Promise<Archive> {
    const file = await open(path, constants.O_RDWR | constants.O_CREAT, 0o600);
    try {
      const buf = await file.readFile();
      const offsets = [0];
      const ids = new Set<string>();
      let o = 0;
      while (o < buf.length) {
        const rec = decodeRecord(buf, o);
        if (!rec) {
          if (validRecordAfter(buf, o)) throw new Error(`archive ${path} is corrupt at byte ${o} (valid records follow)`);
          break;
        }
        ids.add((JSON.parse(rec.body.toString('utf8')) as ArchivedMessage).id);
        o = rec.end;
        offsets.push(o);
      }
      if (o < buf.length) await file.truncate(o);
      return { file, offsets, ids, queue: Promise.resolve() };
    } catch (err) {
      await file.close();
      throw err;
    }
  }
}
