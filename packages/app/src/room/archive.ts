/**
 * The room's message archive, from the browser's side (product spec §2, "leader-only flush"):
 * - {@link Archiver}: on the leader, once {@link FLUSH_AT} or more messages are held, posts the oldest
 *   {@link FLUSH_BATCH} to the archive and only then proposes `archived` with their ids, so no message
 *   leaves the replicated state before the archive stored it (it answers after fsync). A new leader may
 *   re-post what its predecessor archived: the archive adds each message id once.
 * - {@link ArchivedHistory}: the archived messages this page shows above the live ones — those it saw
 *   being archived, and pages it fetched (newest first, on demand).
 * @module
 */
import { fetchJson } from './api.js';
import type { ChatArchived, ChatMessage } from './chat.js';
import { ArchiveUnavailableError } from './errors.js';

/** The leader flushes once the room holds this many messages (the spec's 20)... */
export const FLUSH_AT = 20;
/** ...and posts this many, the oldest, at a time. */
export const FLUSH_BATCH = 20;
/** Archived messages fetched per page. */
export const ARCHIVE_PAGE = 100;
/** Archived messages a page keeps in memory; older ones are fetched again on demand. */
export const MAX_SHOWN_ARCHIVED = 2_000;
/** Longest wait between two attempts when the archive keeps failing. */
const MAX_BACKOFF_MS = 30_000;

/** A page of the archive, as the server answers `GET …/archive`. */
interface ArchivePage {
  messages: ChatMessage[];
  /** Position (0-based) of `messages[0]` in the archive. */
  start: number;
  total: number;
}

function call(url: string, token: string, init: RequestInit): Promise<unknown> {
  return fetchJson(
    url,
    { ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } },
    (err) => new ArchiveUnavailableError('unreachable', 'Cannot reach the message archive.', { cause: err }),
    (status, body) => {
      const e = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      return new ArchiveUnavailableError(typeof e?.code === 'string' ? e.code : `http_${status}`, typeof e?.message === 'string' ? e.message : `The archive answered ${status}.`);
    },
  );
}

/** Stores `messages` in the archive at `url`; resolves once it holds them durably. */
export async function postArchive(url: string, token: string, messages: readonly ChatMessage[]): Promise<void> {
  await call(url, token, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages }) });
}

/** Up to `limit` archived messages before position `before`, oldest first. */
export async function readArchive(url: string, token: string, before: number, limit: number): Promise<ArchivePage> {
  const page = await call(`${url}?before=${before}&limit=${limit}`, token, { method: 'GET' }) as Partial<ArchivePage> | null;
  if (!Array.isArray(page?.messages) || typeof page.start !== 'number' || typeof page.total !== 'number') {
    throw new ArchiveUnavailableError('bad_answer', 'The archive answered with something unexpected.');
  }
  return page as ArchivePage;
}

/** What {@link Archiver} needs from the room. */
export interface ArchiverDeps {
  readonly url: string;
  /** The room's current subscription token (the archive's credential). */
  token(): string;
  isLeader(): boolean;
  /** The oldest `n` messages of the replicated chat not archived yet. */
  oldest(n: number): readonly ChatMessage[];
  /** Messages of the replicated chat not archived yet. */
  liveCount(): number;
  /** Proposes the command and resolves once it is applied here. */
  propose(command: ChatArchived): Promise<unknown>;
  /** A failure (with the retry delay), or recovery after failures (`retryInMs` null, `error` null). */
  report(error: unknown, retryInMs: number | null): void;
  /** Overrides of {@link FLUSH_AT} and {@link FLUSH_BATCH}. */
  readonly flushAt?: number;
  readonly batch?: number;
}

/** The leader's flush loop. Call {@link poke} whenever the chat or the role may have changed. */
export class Archiver {
  private running = false;
  private closed = false;
  private failures = 0;
  private retry: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly deps: ArchiverDeps) {}

  /** Flushes if this peer leads and holds enough messages, unless a flush runs or waits to retry. */
  poke(): void {
    if (this.running || this.closed || this.retry !== null || !this.due()) return;
    void this.run();
  }

  close(): void {
    this.closed = true;
    if (this.retry !== null) clearTimeout(this.retry);
    this.retry = null;
  }

  private due(): boolean {
    return this.deps.isLeader() && this.deps.liveCount() >= (this.deps.flushAt ?? FLUSH_AT);
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (!this.closed && this.due()) {
        const batch = this.deps.oldest(this.deps.batch ?? FLUSH_BATCH);
        await postArchive(this.deps.url, this.deps.token(), batch);
        // Only now may they leave the replicated state: the archive holds them.
        await this.deps.propose({ type: 'archived', ids: batch.map((m) => m.id) });
        if (this.failures > 0) this.deps.report(null, null);
        this.failures = 0;
      }
    } catch (err) {
      if (this.closed) return;
      this.failures++;
      const wait = Math.min(MAX_BACKOFF_MS, 1_000 * 2 ** (this.failures - 1));
      this.deps.report(err, wait);
      this.retry = setTimeout(() => {
        this.retry = null;
        this.poke();
      }, wait);
    } finally {
      this.running = false;
    }
  }
}

/**
 * The archived messages a page shows: a contiguous run of the archive, `[start, start + messages.length)`
 * in archive positions (0-based). Messages this page saw being archived join at the end; older pages are
 * fetched on demand.
 */
export class ArchivedHistory {
  private shown: ChatMessage[] = [];
  private start = 0;
  private loadingNow = false;
  private failure: string | null = null;
  private autoLoaded = false;

  constructor(
    private readonly url: string | null,
    private readonly token: () => string,
    private readonly onChange: () => void,
  ) {}

  /** Whether the room has an archive at all. */
  get enabled(): boolean {
    return this.url !== null;
  }

  get messages(): readonly ChatMessage[] {
    return this.shown;
  }

  get loading(): boolean {
    return this.loadingNow;
  }

  get error(): string | null {
    return this.failure;
  }

  /** Whether older archived messages than those shown exist. */
  get hasEarlier(): boolean {
    return this.start > 0;
  }

  /** Archived messages older than those shown. */
  get earlierCount(): number {
    return this.start;
  }

  /** The chat just archived `messages`, the first at 1-based history position `first`: keep showing them. */
  archived(messages: readonly ChatMessage[], first: number): void {
    const at = first - 1;
    const end = this.start + this.shown.length;
    if (this.shown.length === 0 || at > end) {
      this.shown = [...messages];
      this.start = at;
    } else {
      // Overlapping what a fetched page brought already: add only what comes after it.
      this.shown.push(...messages.slice(end - at));
    }
    this.trim();
    this.onChange();
  }

  /**
   * The chat's archived count as of now (after a restore or a snapshot): with nothing shown yet, the newest
   * page ends there, and it is fetched once without being asked, so a reload shows recent history at once.
   */
  sync(archivedCount: number): void {
    if (this.shown.length > 0 || this.loadingNow) return;
    this.start = archivedCount;
    if (!this.autoLoaded && archivedCount > 0 && this.url !== null) {
      this.autoLoaded = true;
      void this.loadEarlier();
    }
  }

  /** Fetches the page before the oldest shown message. Failures show as {@link error}. */
  async loadEarlier(): Promise<void> {
    if (this.url === null || this.loadingNow || this.start === 0) return;
    this.loadingNow = true;
    this.failure = null;
    this.onChange();
    try {
      const page = await readArchive(this.url, this.token(), this.start, ARCHIVE_PAGE);
      const have = new Set(this.shown.map((m) => m.id));
      // The page ends where the shown run starts, unless the archive is shorter than the chat says.
      const older = page.messages.filter((m) => !have.has(m.id));
      this.shown = [...older, ...this.shown];
      this.start = page.messages.length === 0 ? 0 : page.start;
    } catch (err) {
      this.failure = err instanceof Error ? err.message : String(err);
    } finally {
      this.loadingNow = false;
      this.onChange();
    }
  }

  private trim(): void {
    const excess = this.shown.length - MAX_SHOWN_ARCHIVED;
    if (excess <= 0) return;
    this.shown = this.shown.slice(excess);
    this.start += excess;
  }
}
