/**
 * Serialising a large value without stalling the event loop. A snapshot of a big state machine is tens of
 * megabytes of JSON: one `JSON.stringify`, its UTF-8 encoding and a CRC over it take a few hundred
 * milliseconds of main-thread time, during which the node answers neither peers nor clients (a tail-latency
 * spike at every compaction). Here the same bytes are produced in slices of a few milliseconds, with the
 * event loop running in between. The value must not change until the promise settles (snapshots are
 * copies already).
 * @module
 */
import { crc32 } from './crc32.js';

/** Time one slice may take before the work yields to the event loop. */
const SLICE_MS = 4;
/** Nesting depth down to which plain objects and arrays are walked; deeper values are stringified whole. */
const MAX_DEPTH = 8;
/** The clock is read once per this much work (a value; a run of an array counts as this many). */
const CHECK_EVERY = 64;
/** Elements of a long array stringified in one go. */
const RUN = 256;
/** Bytes checksummed between two looks at the clock. */
const CRC_STEP = 256 * 1024;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

type Frame =
  | { array: readonly unknown[]; i: number }
  | { object: Record<string, unknown>; keys: string[]; i: number; first: boolean };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return (proto === Object.prototype || proto === null) && typeof (v as { toJSON?: unknown }).toJSON !== 'function';
}

/** What JSON.stringify leaves out of an object and writes as null in an array. */
const isUnrepresentable = (v: unknown): boolean => v === undefined || typeof v === 'function' || typeof v === 'symbol';

/**
 * `value` as UTF-8 JSON — byte for byte `Buffer.from(JSON.stringify(value))` — in pieces, yielding to the
 * event loop every few milliseconds.
 */
export async function stringifyInSlices(value: unknown): Promise<Buffer[]> {
  if (isUnrepresentable(value)) throw new TypeError(`${typeof value} does not serialise to JSON`);
  const out: Buffer[] = [];
  let text: string[] = [];
  const stack: Frame[] = [];
  const open = (v: unknown): void => {
    if (stack.length < MAX_DEPTH && Array.isArray(v)) { text.push('['); stack.push({ array: v, i: 0 }); return; }
    if (stack.length < MAX_DEPTH && isPlainObject(v)) { text.push('{'); stack.push({ object: v, keys: Object.keys(v), i: 0, first: true }); return; }
    text.push(JSON.stringify(v));
  };
  open(value);
  let sliceStart = performance.now();
  let work = 0;
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if ('array' in top) {
      const arr = top.array;
      if (top.i === arr.length) { text.push(']'); stack.pop(); continue; }
      if (top.i > 0) text.push(',');
      if (arr.length > RUN) {
        // A long array holds many small values (a state's records): stringify them a run at a time, at
        // JSON.stringify's own speed, and drop the run's brackets.
        const run = JSON.stringify(arr.slice(top.i, top.i + RUN));
        text.push(run.slice(1, -1));
        top.i = Math.min(arr.length, top.i + RUN);
        work += CHECK_EVERY;
      } else {
        const item = arr[top.i++];
        if (isUnrepresentable(item)) text.push('null');
        else open(item);
      }
    } else {
      if (top.i === top.keys.length) { text.push('}'); stack.pop(); continue; }
      const key = top.keys[top.i++]!;
      const item = top.object[key];
      if (isUnrepresentable(item)) continue;
      text.push(`${top.first ? '' : ','}${JSON.stringify(key)}:`);
      top.first = false;
      open(item);
    }
    if (++work < CHECK_EVERY) continue;
    work = 0;
    if (performance.now() - sliceStart >= SLICE_MS) {
      out.push(Buffer.from(text.join(''), 'utf8'));
      text = [];
      await yieldToLoop();
      sliceStart = performance.now();
    }
  }
  if (text.length > 0) out.push(Buffer.from(text.join(''), 'utf8'));
  return out;
}

/** Continues `crc` (see {@link crc32}) over `pieces` in turn, yielding to the event loop between slices. */
export async function crc32InSlices(pieces: readonly Uint8Array[], crc: number): Promise<number> {
  let sliceStart = performance.now();
  for (const p of pieces) {
    for (let off = 0; off < p.length; off += CRC_STEP) {
      crc = crc32(p, off, Math.min(p.length, off + CRC_STEP), crc);
      if (performance.now() - sliceStart >= SLICE_MS) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
    }
  }
  return crc;
}
