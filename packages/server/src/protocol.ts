/**
 * The JSON form of Centrifugo's client protocol v2: commands a client sends, replies and pushes the server
 * sends, and the validation turning a parsed line into a typed {@link Command}. Field names are those of
 * centrifugal/protocol (snake_case), which the official `centrifuge` client reads.
 *
 * A frame holds one or more commands separated by `\n`. A command is `{ id, <method>: request }`; the empty
 * object `{}` is the client's pong to a server ping (which is the empty reply `{}`). Fields this server
 * does not use (recovery positions, delta, tags filters…) are ignored, as Centrifugo ignores fields of
 * features a channel does not enable.
 * @module
 */
import { DisconnectError, Disconnects } from './codes.js';

/** The path of the WebSocket endpoint, as in Centrifugo. */
export const WEBSOCKET_PATH = '/connection/websocket';

/** `connect` request (the client's `name`, `version`, `data`, `subs` are not used). */
export interface ConnectRequest {
  readonly token?: string;
}
/** `subscribe` request. */
export interface SubscribeRequest {
  readonly channel: string;
  readonly token?: string;
}
/** `refresh` request (a new connection token). */
export interface RefreshRequest {
  readonly token: string;
}
/** `sub_refresh` request (a new subscription token). */
export interface SubRefreshRequest {
  readonly channel: string;
  readonly token: string;
}
/** `publish` request. */
export interface PublishRequest {
  readonly channel: string;
  readonly data: unknown;
}
/** A request naming only a channel: `unsubscribe`, `presence`, `presence_stats`, `history`. */
export interface ChannelRequest {
  readonly channel: string;
}

/** A validated command. `pong` is the empty command `{}`; `send` is the asynchronous message without reply. */
export type Command =
  | { readonly method: 'pong' }
  | { readonly method: 'send' }
  | { readonly method: 'connect'; readonly id: number; readonly req: ConnectRequest }
  | { readonly method: 'subscribe'; readonly id: number; readonly req: SubscribeRequest }
  | { readonly method: 'unsubscribe'; readonly id: number; readonly req: ChannelRequest }
  | { readonly method: 'publish'; readonly id: number; readonly req: PublishRequest }
  | { readonly method: 'presence'; readonly id: number; readonly req: ChannelRequest }
  | { readonly method: 'presence_stats'; readonly id: number; readonly req: ChannelRequest }
  | { readonly method: 'history'; readonly id: number; readonly req: ChannelRequest }
  | { readonly method: 'refresh'; readonly id: number; readonly req: RefreshRequest }
  | { readonly method: 'sub_refresh'; readonly id: number; readonly req: SubRefreshRequest }
  | { readonly method: 'rpc'; readonly id: number };

const METHODS: readonly string[] = ['connect', 'subscribe', 'unsubscribe', 'publish', 'presence', 'presence_stats', 'history', 'refresh', 'sub_refresh', 'rpc', 'send'];

/** `ClientInfo` of the protocol: who a publication, join, leave or presence entry is about. */
export interface ClientInfo {
  readonly client: string;
  readonly user: string;
  readonly conn_info?: unknown;
  readonly chan_info?: unknown;
}

/** A push: an event on a channel, or a disconnect, without a command id. */
export type Push =
  | { readonly channel: string; readonly pub: { readonly data: unknown; readonly info?: ClientInfo } }
  | { readonly channel: string; readonly join: { readonly info: ClientInfo } }
  | { readonly channel: string; readonly leave: { readonly info: ClientInfo } }
  | { readonly channel: string; readonly unsubscribe: { readonly code: number; readonly reason: string } };

function bad(detail: string): DisconnectError {
  return new DisconnectError(Disconnects.badRequest, detail);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(req: Record<string, unknown>, field: string, method: string): string | undefined {
  const v = req[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(`${method}.${field} must be a string`);
  return v;
}

function requiredString(req: Record<string, unknown>, field: string, method: string): string {
  const v = optionalString(req, field, method);
  if (v === undefined || v === '') throw bad(`${method}.${field} is required`);
  return v;
}

/**
 * Validates one parsed JSON command. A malformed command is a protocol violation, so it throws a
 * {@link DisconnectError} with Centrifugo's bad-request disconnect (3501), as Centrifugo does.
 */
export function parseCommand(value: unknown): Command {
  if (!isRecord(value)) throw bad('a command is a JSON object');
  const present = METHODS.filter((m) => value[m] !== undefined && value[m] !== null);
  if (present.length > 1) throw bad(`a command has one method, got ${present.join(', ')}`);
  const method = present[0];
  if (method === undefined) {
    if (value.id !== undefined && value.id !== 0) throw bad('unknown command');
    return { method: 'pong' };
  }
  if (method === 'send') return { method: 'send' };
  const id = value.id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) throw bad(`${method} needs a positive integer id`);
  const req = value[method];
  if (!isRecord(req)) throw bad(`${method} request must be an object`);
  switch (method) {
    case 'connect':
      return { method, id, req: { token: optionalString(req, 'token', method) } };
    case 'subscribe':
      return { method, id, req: { channel: requiredString(req, 'channel', method), token: optionalString(req, 'token', method) } };
    case 'publish':
      if (!('data' in req)) throw bad('publish.data is required');
      return { method, id, req: { channel: requiredString(req, 'channel', method), data: req.data } };
    case 'unsubscribe':
    case 'presence':
    case 'presence_stats':
    case 'history':
      return { method, id, req: { channel: requiredString(req, 'channel', method) } };
    case 'refresh':
      return { method, id, req: { token: requiredString(req, 'token', method) } };
    case 'sub_refresh':
      return { method, id, req: { channel: requiredString(req, 'channel', method), token: requiredString(req, 'token', method) } };
    case 'rpc':
      return { method, id };
  }
  throw bad('unknown command');
}

/**
 * Splits a text frame into parsed commands. Empty lines are skipped (as the official client skips them in
 * replies); a line that is not JSON is a protocol violation (disconnect 3501).
 */
export function parseFrame(text: string): Command[] {
  const commands: Command[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw bad('malformed JSON');
    }
    commands.push(parseCommand(value));
  }
  if (commands.length === 0) throw bad('empty frame');
  return commands;
}
