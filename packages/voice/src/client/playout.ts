/**
 * One speaker's playout: jitter buffer, decoder, and a carry that turns packets of any duration into the
 * 20 ms frames the mixer takes. This client sends 20 ms packets; a sender built from the seed may encode
 * 10, 40 or 60 ms per packet, and is then played at the right speed all the same: the tick takes packets
 * from the jitter buffer until it has 20 ms, and keeps what is left over for the next tick.
 * @module
 */
import { JitterBuffer, type JitterBufferOptions, type JitterStats, type PushResult } from './jitter-buffer.js';
import { CodecError, FRAME_SAMPLES, OpusDecoder } from './opus.js';

/** Turns one speaker's packets, as they arrive, into 20 ms frames, one per tick. */
export class SenderPlayout {
  readonly name: string;
  readonly #jitter: JitterBuffer<Uint8Array>;
  readonly #decoder = new OpusDecoder();
  #carry: Int16Array = new Int16Array(0);
  /** Duration of the speaker's last packet, in samples: a lost packet is concealed for as long. */
  #packetSamples = FRAME_SAMPLES;
  #undecodable = 0;

  constructor(name: string, jitter: JitterBufferOptions) {
    this.name = name;
    this.#jitter = new JitterBuffer(jitter);
  }

  /** Packets that failed to decode (concealed instead). */
  get undecodable(): number {
    return this.#undecodable;
  }

  /** The jitter buffer's counters. */
  get stats(): JitterStats {
    return this.#jitter.stats;
  }

  /** Packets waiting. */
  get buffered(): number {
    return this.#jitter.size;
  }

  /** Adds a packet as it arrives (see {@link JitterBuffer.push}). */
  push(seq: number, packet: Uint8Array): PushResult {
    return this.#jitter.push(seq, packet);
  }

  /** The speaker's next 20 ms, or null while the speaker is silent; call once per tick. */
  next(): Int16Array | null {
    while (this.#carry.length < FRAME_SAMPLES) {
      const p = this.#jitter.pop();
      if (p.kind === 'idle') {
        if (this.#carry.length === 0) return null;
        break; // the tail of the last packet, padded with silence below
      }
      this.#append(p.kind === 'frame' ? this.#decode(p.payload) : this.#decoder.conceal(this.#packetSamples));
    }
    const frame = new Int16Array(FRAME_SAMPLES);
    frame.set(this.#carry.subarray(0, FRAME_SAMPLES));
    this.#carry = this.#carry.slice(Math.min(FRAME_SAMPLES, this.#carry.length));
    return frame;
  }

  /** Frees the decoder. */
  close(): void {
    this.#decoder.close();
  }

  #decode(packet: Uint8Array): Int16Array {
    try {
      const pcm = this.#decoder.decode(packet);
      if (pcm.length > 0) this.#packetSamples = pcm.length;
      return pcm;
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      this.#undecodable++;
      return this.#decoder.conceal(this.#packetSamples);
    }
  }

  #append(pcm: Int16Array): void {
    if (this.#carry.length === 0) {
      this.#carry = pcm;
      return;
    }
    const joined = new Int16Array(this.#carry.length + pcm.length);
    joined.set(this.#carry);
    joined.set(pcm, this.#carry.length);
    this.#carry = joined;
  }
}
