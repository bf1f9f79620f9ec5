/**
 * The room registry: which rooms exist, their password hashes, and when an empty room is forgotten. In memory
 * only: a restart forgets every room (peers already connected to each other keep their WebRTC mesh; new
 * joins need the room created again). A room whose channel has had no subscriber for `idleMs` expires.
 * @module
 */
import { randomBytes, scrypt, timingSafeEqual, type BinaryLike, type ScryptOptions } from 'node:crypto';

/** A stable code of a refused room operation, with its HTTP status. */
export type RoomErrorCode = 'invalid_room_name' | 'invalid_password' | 'room_exists' | 'room_not_found' | 'password_required' | 'wrong_password' | 'room_full';

const STATUS: Record<RoomErrorCode, number> = {
  invalid_room_name: 400,
  invalid_password: 400,
  room_exists: 409,
  room_not_found: 404,
  password_required: 403,
  wrong_password: 403,
  room_full: 409,
};

/** A refused room operation. */
export class RoomError extends Error {
  readonly code: RoomErrorCode;
  readonly status: number;
  constructor(code: RoomErrorCode, message: string) {
    super(message);
    this.name = 'RoomError';
    this.code = code;
    this.status = STATUS[code];
  }
}

/** Room names: URL- and channel-safe ASCII, 1–64 characters. */
export const ROOM_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** Longest room password accepted, in characters. */
export const MAX_PASSWORD_LENGTH = 256;

// scrypt's recommended interactive parameters (N=2^14, r=8, p=1): ~16 MiB and tens of ms per hash.
const SCRYPT: ScryptOptions = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const KEY_LENGTH = 32;

function scryptAsync(password: BinaryLike, salt: BinaryLike): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, KEY_LENGTH, SCRYPT, (err, key) => (err ? reject(err) : resolve(key))));
}

interface PasswordHash {
  readonly salt: Buffer;
  readonly hash: Buffer;
}

interface Room {
  readonly name: string;
  /** Creation time in ms; tokens issued before it belong to an earlier room of the same name. */
  readonly createdAt: number;
  readonly password: PasswordHash | undefined;
  /** Last time the room had peers or was asked for, in ms. */
  lastActive: number;
}

/** What the API tells about a room. */
export interface RoomInfo {
  readonly room: string;
  readonly protected: boolean;
  readonly peers: number;
}

/** Options of {@link RoomRegistry}. */
export interface RoomRegistryOptions {
  readonly idleMs: number;
  readonly peersPerRoom: number;
  /** Distinct peers currently subscribed to a room's channel. */
  readonly peers: (room: string) => number;
  /** Called when an idle room is forgotten (e.g. to delete what was kept for it). */
  readonly onForget?: (room: string, createdAt: number) => void;
}

/** The rooms of one server. */
export class RoomRegistry {
  private readonly rooms = new Map<string, Room>();
  constructor(private readonly opts: RoomRegistryOptions) {}

  /** Throws `invalid_password` unless `password` is absent or a string of 1–256 characters; "" counts as absent. */
  static normalizePassword(password: unknown): string | undefined {
    if (password === undefined || password === null || password === '') return undefined;
    if (typeof password !== 'string' || password.length > MAX_PASSWORD_LENGTH) throw new RoomError('invalid_password', `password must be a string of at most ${MAX_PASSWORD_LENGTH} characters`);
    return password;
  }

  /** Creates a room, named `name` or randomly. Throws `invalid_room_name`, `invalid_password` or `room_exists`. */
  async create(name: unknown, password: unknown): Promise<RoomInfo> {
    const pw = RoomRegistry.normalizePassword(password);
    let roomName: string;
    if (name === undefined || name === null) {
      roomName = randomBytes(9).toString('base64url');
    } else {
      if (typeof name !== 'string' || !ROOM_NAME.test(name)) throw new RoomError('invalid_room_name', 'room names are 1–64 characters of A–Z, a–z, 0–9, _ and -');
      roomName = name;
    }
    if (this.get(roomName)) throw new RoomError('room_exists', `room ${roomName} already exists`);
    let hash: PasswordHash | undefined;
    if (pw !== undefined) {
      const salt = randomBytes(16);
      hash = { salt, hash: await scryptAsync(pw, salt) };
      // Hashing yielded: another request may have created the room meanwhile.
      if (this.get(roomName)) throw new RoomError('room_exists', `room ${roomName} already exists`);
    }
    const now = Date.now();
    this.rooms.set(roomName, { name: roomName, createdAt: now, password: hash, lastActive: now });
    return this.info(roomName)!;
  }

  /** The room's public description, or undefined if it does not exist (or just expired). */
  info(name: string): RoomInfo | undefined {
    const room = this.get(name);
    return room && { room: room.name, protected: room.password !== undefined, peers: this.opts.peers(room.name) };
  }

  /**
   * Checks that a new peer may join `name`: the room exists, the password matches (constant-time compare of
   * scrypt hashes), and the room is not full. Throws a {@link RoomError}.
   */
  async admit(name: string, password: unknown): Promise<void> {
    const pw = RoomRegistry.normalizePassword(password);
    const room = this.get(name);
    if (!room) throw new RoomError('room_not_found', `no room ${name}`);
    if (room.password) {
      if (pw === undefined) throw new RoomError('password_required', `room ${name} needs a password`);
      const hash = await scryptAsync(pw, room.password.salt);
      if (!timingSafeEqual(hash, room.password.hash)) throw new RoomError('wrong_password', 'wrong password');
    }
    if (this.opts.peers(name) >= this.opts.peersPerRoom) throw new RoomError('room_full', `room ${name} has ${this.opts.peersPerRoom} peers already`);
    room.lastActive = Date.now();
  }

  /** Creation time (ms) of the live room `name`, or undefined. */
  createdAt(name: string): number | undefined {
    return this.get(name)?.createdAt;
  }

  /** Records activity in `name` (e.g. its last peer just left), restarting its idle time. */
  touch(name: string): void {
    const room = this.rooms.get(name);
    if (room) room.lastActive = Date.now();
  }

  /** Forgets every idle room. Lookups also expire lazily; this bounds memory. */
  sweep(): void {
    for (const name of [...this.rooms.keys()]) this.get(name);
  }

  /** Live rooms. */
  get size(): number {
    return this.rooms.size;
  }

  private get(name: string): Room | undefined {
    const room = this.rooms.get(name);
    if (!room) return undefined;
    if (this.opts.peers(name) > 0) {
      room.lastActive = Date.now();
      return room;
    }
    if (Date.now() - room.lastActive >= this.opts.idleMs) {
      this.rooms.delete(name);
      this.opts.onForget?.(name, room.createdAt);
      return undefined;
    }
    return room;
  }
}
