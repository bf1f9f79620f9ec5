/**
 * The wire codec shared by every transport: JSON text, bounded in size, and validated before anything
 * reaches the node, so a peer's oversized or malformed message is refused here with a {@link CodecError}.
 * @module
 */
import { RaftError } from '../core/errors.js';
import { validateMessage } from '../core/messages.js';
import { NODE_MESSAGE_TYPES, validateNodeMessage, type WireMessage } from './node-messages.js';

/** Default bound on one encoded message: large enough for a sizeable snapshot, small enough to refuse abuse. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 << 20;

/** Why a text was refused. */
export type CodecErrorReason = 'oversized' | 'not-json' | 'malformed';

/** Thrown by {@link decodeMessage} for text that must not reach the node. */
export class CodecError extends RaftError {
  readonly reason: CodecErrorReason;
  constructor(reason: CodecErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

/** Options of {@link decodeMessage}. */
export interface DecodeOptions {
  /** Largest accepted UTF-8 size in bytes; default {@link DEFAULT_MAX_MESSAGE_BYTES}. */
  maxBytes?: number;
}

/** Encodes a message as JSON text. */
export function encodeMessage(m: WireMessage): string {
  return JSON.stringify(m);
}

/** UTF-8 size of `text`, computed exactly only when the UTF-16 length leaves it in doubt. */
function exceedsBytes(text: string, maxBytes: number): boolean {
  if (text.length > maxBytes) return true; // every UTF-16 unit is at least one byte
  if (text.length * 3 <= maxBytes) return false; // and at most three
  // Counted by hand: TextEncoder is not in the ES library this package compiles against.
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { bytes += 4; i++; }
    else bytes += 3;
    if (bytes > maxBytes) return true;
  }
  return false;
}

/** Decodes and validates one message; throws {@link CodecError} for anything that is not one. */
export function decodeMessage(text: string, options: DecodeOptions = {}): WireMessage {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (typeof text !== 'string') throw new CodecError('malformed', 'message text is not a string');
  // Checked before parsing: parsing is the expensive part an attacker would exploit.
  if (exceedsBytes(text, maxBytes)) throw new CodecError('oversized', `message exceeds ${maxBytes} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new CodecError('not-json', 'message is not JSON', { cause });
  }
  const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
  const bad = typeof type === 'string' && NODE_MESSAGE_TYPES.has(type) ? validateNodeMessage(value) : validateMessage(value);
  if (bad !== null) throw new CodecError('malformed', `malformed message: ${bad}`);
  return value as WireMessage;
}
