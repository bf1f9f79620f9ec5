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

/** A command of the chat log. One kind today; the `type` leaves room for others (e.g. deleting archived messages). */
export interface ChatCommand {
  type: 'chat';
  message: ChatMessage;
}

/** Longest message text, in UTF-16 units: a chat line, not a file. */
export const MAX_TEXT_LENGTH = 4_000;
/** Longest display name, as the server allows. */
export const MAX_NAME_LENGTH = 64;
const MAX_ID_LENGTH = 200;

/** A command refused by {@link Chat.apply}: the same on every peer, since it depends on the command only. */
export class ChatCommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChatCommandError';
  }
}

const isString = (v: unknown, max: number, min = 0): v is string => typeof v === 'string' && v.length >= min && v.length <= max;

/** Why `value` is not a valid {@link ChatCommand}, or null when it is. */
export function validateChatCommand(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const c = value as Partial<ChatCommand>;
  if (c.type !== 'chat') return `unknown command type ${JSON.stringify(c.type)}`;
  const m = c.message as Partial<ChatMessage> | undefined;
  if (typeof m !== 'object' || m === null) return 'no message';
  if (!isString(m.id, MAX_ID_LENGTH, 1)) return 'bad message id';
  if (!isString(m.sender, 128, 1)) return 'bad sender';
  if (!isString(m.name, MAX_NAME_LENGTH, 1)) return 'bad name';
  if (!isString(m.text, MAX_TEXT_LENGTH, 1)) return 'bad text';
  if (typeof m.sentAt !== 'number' || !Number.isFinite(m.sentAt)) return 'bad time';
  return null;
}

/** The chat state machine: the committed messages, in commit order. */
export class Chat implements StateMachine<ChatCommand, number> {
  private list: ChatMessage[] = [];
  private readonly ids = new Map<string, number>();

  /** The committed messages, oldest first. Do not mutate. */
  get messages(): readonly ChatMessage[] {
    return this.list;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** Appends the message and returns its 1-based position; a message id seen before returns the first position. */
  apply(command: ChatCommand, _entry: Entry): number {
    const bad = validateChatCommand(command);
    if (bad !== null) throw new ChatCommandError(`refused chat command: ${bad}`);
    const m = command.message;
    const seen = this.ids.get(m.id);
    // A sender that resends after an unknown outcome (TimeoutError) uses the same id: applied once.
    if (seen !== undefined) return seen;
    const copy: ChatMessage = { id: m.id, sender: m.sender, name: m.name, text: m.text, sentAt: m.sentAt };
    this.list.push(copy);
    this.ids.set(m.id, this.list.length);
    return this.list.length;
  }

  snapshot(): unknown {
    return { messages: this.list.map((m) => ({ ...m })) };
  }

  restore(data: unknown): void {
    const messages = (data as { messages?: unknown } | null)?.messages;
    if (!Array.isArray(messages)) throw new ChatCommandError('chat snapshot without a message list');
    this.list = [];
    this.ids.clear();
    for (const m of messages) {
      // Snapshots come from peers of the same room; one failing the command check is dropped, not fatal.
      if (validateChatCommand({ type: 'chat', message: m }) === null) {
        const msg = m as ChatMessage;
        this.list.push({ ...msg });
        this.ids.set(msg.id, this.list.length);
      }
    }
  }
}
