/**
 * The framing of FileStorage's records, shared with other append-only files (the server's message archive):
 * `[length u32le][crc u32le][kind u8][UTF-8 JSON]`, where `length` counts the kind byte and the JSON, and `crc`
 * is the CRC-32 of the four length bytes followed by the payload. A torn or corrupt record fails the CRC, so
 * recovery can tell where the good prefix of a file ends.
 * @module
 */
import { crc32 } from './crc32.js';
import { crc32InSlices, stringifyInSlices } from './sliced-json.js';

/** Bytes of a record's header (length and CRC). */
export const RECORD_HEADER = 8;

/** One record of `kind` holding `body` as JSON. */
export function encodeRecord(kind: number, body: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(body), 'utf8');
  const buf = Buffer.allocUnsafe(RECORD_HEADER + 1 + json.length);
  buf.writeUInt32LE(1 + json.length, 0);
  buf[RECORD_HEADER] = kind;
  json.copy(buf, RECORD_HEADER + 1);
  buf.writeUInt32LE(crc32(buf, RECORD_HEADER, buf.length, crc32(buf, 0, 4)), 4);
  return buf;
}

/** The same bytes as {@link encodeRecord}, built in slices that let the event loop run (for large bodies). */
export async function encodeRecordInSlices(kind: number, body: unknown): Promise<Buffer[]> {
  const pieces = await stringifyInSlices(body);
  const head = Buffer.allocUnsafe(RECORD_HEADER + 1);
  head.writeUInt32LE(1 + pieces.reduce((n, p) => n + p.length, 0), 0);
  head[RECORD_HEADER] = kind;
  const crc = await crc32InSlices(pieces, crc32(head, RECORD_HEADER, RECORD_HEADER + 1, crc32(head, 0, 4)));
  head.writeUInt32LE(crc, 4);
  return [head, ...pieces];
}

/** The record at `offset` if it is whole and its CRC matches, else null. `body` is the JSON's bytes. */
export function decodeRecord(buf: Buffer, offset: number): { kind: number; body: Buffer; end: number } | null {
  if (offset + RECORD_HEADER > buf.length) return null;
  const len = buf.readUInt32LE(offset);
  if (len < 1 || offset + RECORD_HEADER + len > buf.length) return null;
  const end = offset + RECORD_HEADER + len;
  if (crc32(buf, offset + RECORD_HEADER, end, crc32(buf, offset, offset + 4)) !== buf.readUInt32LE(offset + 4)) return null;
  return { kind: buf[offset + RECORD_HEADER]!, body: buf.subarray(offset + RECORD_HEADER + 1, end), end };
}

/** Whether any whole, CRC-valid record starts after `offset`: if so, a bad record there is not a torn tail. */
export function validRecordAfter(buf: Buffer, offset: number): boolean {
  for (let o = offset + 1; o + RECORD_HEADER < buf.length; o++) if (decodeRecord(buf, o)) return true;
  return false;
}
