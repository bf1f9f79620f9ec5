/**
 * Centrifugo's client-protocol codes, with the numbers and texts Centrifugo v5 uses, so that the official
 * `centrifuge` client makes the same decisions against this server as against a real Centrifugo: an error
 * below 100, marked `temporary`, or 109 is retried; any other error is final. A disconnect code in
 * 3500–3999 or 4500–4999 is terminal; any other code makes the client reconnect with backoff.
 * Source: centrifugal.dev, "Client protocol codes" (v5).
 * @module
 */

/** A reply error: `{ code, message, temporary? }` in a reply to one command. */
export interface ClientErrorShape {
  readonly code: number;
  readonly message: string;
  readonly temporary?: boolean;
}

/** The built-in reply errors of Centrifugo that this server returns (Centrifugo has more, e.g. 100 internal, 112). */
export const ClientErrors = {
  unknownChannel: { code: 102, message: 'unknown channel' },
  permissionDenied: { code: 103, message: 'permission denied' },
  alreadySubscribed: { code: 105, message: 'already subscribed' },
  limitExceeded: { code: 106, message: 'limit exceeded' },
  badRequest: { code: 107, message: 'bad request' },
  notAvailable: { code: 108, message: 'not available' },
  tokenExpired: { code: 109, message: 'token expired' },
  tooManyRequests: { code: 111, message: 'too many requests', temporary: true },
} as const satisfies Record<string, ClientErrorShape>;

/** A disconnect: the WebSocket close code and reason (the reason stays under the 123 bytes a close frame allows). */
export interface DisconnectShape {
  readonly code: number;
  readonly reason: string;
}

/** The built-in disconnects of Centrifugo that this server uses. */
export const Disconnects = {
  // Reconnecting codes (3000–3499): the client comes back after its backoff.
  shutdown: { code: 3001, reason: 'shutdown' },
  serverError: { code: 3004, reason: 'internal server error' },
  expired: { code: 3005, reason: 'connection expired' },
  slow: { code: 3008, reason: 'slow' },
  noPong: { code: 3012, reason: 'no pong' },
  tooManyRequests: { code: 3013, reason: 'too many requests' },
  // Terminal codes (3500–3999): the client stays disconnected.
  invalidToken: { code: 3500, reason: 'invalid token' },
  badRequest: { code: 3501, reason: 'bad request' },
  stale: { code: 3502, reason: 'stale' },
  connectionLimit: { code: 3504, reason: 'connection limit' },
  notAvailable: { code: 3508, reason: 'not available' },
} as const satisfies Record<string, DisconnectShape>;

/** Unsubscribe push codes: below 2500 the client stays unsubscribed, from 2500 it subscribes again. */
export const Unsubscribes = {
  expired: { code: 2501, reason: 'subscription expired' },
} as const satisfies Record<string, DisconnectShape>;

/**
 * A command refused with a Centrifugo reply error. `detail` says what exactly was wrong; it is appended to the
 * message the client sees, so a refusal is clear without reading the server's logs.
 */
export class ClientError extends Error {
  readonly code: number;
  readonly temporary: boolean;
  readonly detail: string;
  constructor(shape: ClientErrorShape, detail = '') {
    super(detail ? `${shape.message}: ${detail}` : shape.message);
    this.name = 'ClientError';
    this.code = shape.code;
    this.temporary = shape.temporary === true;
    this.detail = detail;
  }

  /** The `error` object of a reply. */
  toReply(): ClientErrorShape {
    return this.temporary ? { code: this.code, message: this.message, temporary: true } : { code: this.code, message: this.message };
  }
}

/** A command whose handling ends the connection with a Centrifugo disconnect code. */
export class DisconnectError extends Error {
  readonly disconnect: DisconnectShape;
  /** What exactly was wrong; appended to the close reason. */
  readonly detail: string;
  constructor(disconnect: DisconnectShape, detail = '') {
    super(detail ? `${disconnect.reason}: ${detail}` : disconnect.reason);
    this.name = 'DisconnectError';
    this.disconnect = disconnect;
    this.detail = detail;
  }
}
