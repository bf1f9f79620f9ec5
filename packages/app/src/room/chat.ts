/**
 * The room's replicated state: its chat. Every peer applies the same committed commands in the same order,
 * so `apply` must be deterministic and must refuse a malformed command the same way everywhere (a throw
 * rejects the proposal on its proposer and changes nothing anywhere).
 * @module
 */
import type { Entry, StateMachine } from '@raftrtc/raft';

/** One chat message, as committed. */
export interface ChatMessage {
  /** Chosen by the sender (`<peer id>.<nonce>.<counter>`): a resend of the same message is applied once. */
  id: string;
  /** The sender's peer id. */
  sender: string;
  /** The sender's display name when it sent the message. */
  name: string;
  text: string;
  /** The sender's clock (ms since the epoch) when it pressed send; shown, never used for ordering. */
  sentAt: number;
}

/** Appends a chat message. */
export interface ChatAppend {
  type: 'chat';
  message: ChatMessage;
}

/**
 * Drops the oldest messages once the room's leader has stored them in the archive (the spec's
 * `delete-messages`). Only the longest run of the oldest messages whose ids are listed goes, so what was
 * archived is always a prefix of the room's history, in commit order, and the archive's positions are the
 * history's.
 */
export interface ChatArchived {
  type: 'archived';
  ids: string[];
}

/** A command of the chat log. */
export type ChatCommand = ChatAppend | ChatArchived;

/** Longest message text, in UTF-16 units: a chat line, not a file. */
export const MAX_TEXT_LENGTH = 4_000;
/** Longest display name, as the server allows. */
export const MAX_NAME_LENGTH = 64;
const MAX_ID_LENGTH = 200;
/** Most ids one `archived` command lists (the archive takes batches of at most this many). */
export const MAX_ARCHIVE_BATCH = 100;
/**
 * Ids of archived messages remembered, so a message re-sent after it was archived (a Retry after an unknown
 * outcome) is still applied once. Bounded: a re-send comes within seconds, not after a thousand messages.
 */
export const ARCHIVED_IDS_KEPT = 1_000;

/** A command refused by {@link Chat.apply}: the same on every peer, since it depends on the command only. */
export class ChatCommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChatCommandError';
  }
}

const isString = (v: unknown, max: number, min = 0): v is string => typeof v === 'string' && v.length >= min && v.length <= max;

/** Why `value` is not a valid {@link ChatMessage}, or null when it is. */
function validateMessage(value: unknown): string | null {
  const m = value as Partial<ChatMessage> | undefined;
  if (typeof m !== 'object' || m === null) return 'no message';
  if (!isString(m.id, MAX_ID_LENGTH, 1)) return 'bad message id';
  if (!isString(m.sender, 128, 1)) return 'bad sender';
  if (!isString(m.name, MAX_NAME_LENGTH, 1)) return 'bad name';
  if (!isString(m.text, MAX_TEXT_LENGTH, 1)) return 'bad text';
  if (typeof m.sentAt !== 'number' || !Number.isFinite(m.sentAt)) return 'bad time';
  return null;
}

/** Why `value` is not a valid {@link ChatCommand}, or null when it is. */
export function validateChatCommand(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const c = value as { type?: unknown; message?: unknown; ids?: unknown };
  if (c.type === 'chat') return validateMessage(c.message);
  if (c.type === 'archived') {
    if (!Array.isArray(c.ids) || c.ids.length === 0 || c.ids.length > MAX_ARCHIVE_BATCH) return `archived lists 1 to ${MAX_ARCHIVE_BATCH} ids`;
    if (!c.ids.every((id) => isString(id, MAX_ID_LENGTH, 1))) return 'bad archived id';
    return null;
  }
  return `unknown command type ${JSON.stringify(c.type)}`;
}

/**
 * The chat state machine: the messages not archived yet, in commit order, and how many were archived before
 * them. Positions count from the room's first message: the message at `messages[i]` is number
 * `archivedCount + i + 1` of the room's history, and number `p` of the archive is number `p + 1` of it.
 */
export class Chat implements StateMachine<ChatCommand, number> {
  private list: ChatMessage[] = [];
  private archived = 0;
  /** Position (1-based, in the room's history) of every live message and of the {@link ARCHIVED_IDS_KEPT} newest archived ones. */
  private readonly ids = new Map<string, number>();
  /** The archived ids still in `ids`, oldest first. */
  private archivedIds: string[] = [];

  /**
   * Called with the messages an `archived` command dropped, oldest first, while it is applied: observers (the
   * UI) keep showing them. Not part of the replicated state.
   */
  onArchived: ((messages: readonly ChatMessage[], firstPosition: number) => void) | null = null;

  /** The messages not archived, oldest first. Do not mutate. */
  get messages(): readonly ChatMessage[] {
    return this.list;
  }

  /** Messages of the room's history now in the archive (they came before {@link messages}). */
  get archivedCount(): number {
    return this.archived;
  }

  /** Whether a message with this id was applied (and not archived so long ago that it was forgotten). */
  has(id: string): boolean {
    return this.ids.has(id);
  }

  /**
   * A message: appends it and returns its position in the room's history; a message id seen before returns
   * the first position. `archived`: drops the archived prefix and returns how many messages it dropped.
   */
  apply(command: ChatCommand, _entry: Entry): number {
    const bad = validateChatCommand(command);
    if (bad !== null) throw new ChatCommandError(`refused chat command: ${bad}`);
    if (command.type === 'archived') return this.dropArchived(new Set(command.ids));
    const m = command.message;
    const seen = this.ids.get(m.id);
    // A sender that resends after an unknown outcome (TimeoutError) uses the same id: applied once.
    if (seen !== undefined) return seen;
    this.list.push({ id: m.id, sender: m.sender, name: m.name, text: m.text, sentAt: m.sentAt });
    const position = this.archived + this.list.length;
    this.ids.set(m.id, position);
    return position;
  }

  snapshot(): unknown {
    return { messages: this.list.map((m) => ({ ...m })), archived: this.archived, archivedIds: this.archivedIds.map((id) => [id, this.ids.get(id)]) };
  }

  restore(data: unknown): void {
    const d = data as { messages?: unknown; archived?: unknown; archivedIds?: unknown } | null;
    if (!Array.isArray(d?.messages)) throw new ChatCommandError('chat snapshot without a message list');
    // Snapshots come from peers of the same room; a part failing the checks is dropped, not fatal.
    this.archived = Number.isSafeInteger(d.archived) && (d.archived as number) >= 0 ? d.archived as number : 0;
    this.list = d.messages.filter((m) => validateMessage(m) === null).map((m: ChatMessage) => ({ ...m }));
    this.ids.clear();
    this.archivedIds = [];
    for (const pair of Array.isArray(d.archivedIds) ? d.archivedIds.slice(-ARCHIVED_IDS_KEPT) : []) {
      if (Array.isArray(pair) && isString(pair[0], MAX_ID_LENGTH, 1) && Number.isSafeInteger(pair[1])) {
        this.ids.set(pair[0], pair[1]);
        this.archivedIds.push(pair[0]);
      }
    }
    this.list.forEach((m, i) => this.ids.set(m.id, this.archived + i + 1));
  }

  private dropArchived(ids: ReadonlySet<string>): number {
    let n = 0;
    while (n < this.list.length && ids.has(this.list[n]!.id)) n++;
    if (n === 0) return 0;
    const dropped = this.list.slice(0, n);
    const first = this.archived + 1;
    this.list = this.list.slice(n);
    this.archived += n;
    for (const m of dropped) this.archivedIds.push(m.id);
    for (const id of this.archivedIds.splice(0, Math.max(0, this.archivedIds.length - ARCHIVED_IDS_KEPT))) this.ids.delete(id);
    this.onArchived?.(dropped, first);
    return n;
  }
}
