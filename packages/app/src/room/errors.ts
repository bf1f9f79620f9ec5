/**
 * Typed errors of the room client. Every failure the UI has to explain is one of these, with a stable `code`
 * (the server's, where it gave one) and a message written for people.
 * @module
 */

/** Base class: `code` is stable, `message` is for people. */
export class RoomError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The room is protected and the password is missing or wrong (`password_required`, `wrong_password`). */
export class WrongPasswordError extends RoomError {}

/** The room already holds as many peers as the server allows (`room_full`). */
export class RoomFullError extends RoomError {}

/** No room of that name exists, or it expired after everyone left (`room_not_found`). */
export class RoomNotFoundError extends RoomError {}

/** The room name, display name or password does not have the expected form (the server's 400 codes). */
export class InvalidInputError extends RoomError {}

/** The server asks us to slow down (`too_many_requests`). */
export class RateLimitedError extends RoomError {}

/** The signaling server cannot be reached, answered something unexpected, or refused the WebSocket. */
export class SignalingUnavailableError extends RoomError {}

/** A message could not be sent: empty, too long, or the room is closed. */
export class SendError extends RoomError {}

/** The message archive refused a request or cannot be reached; `code` is the server's, or `unreachable`. */
export class ArchiveUnavailableError extends RoomError {}
