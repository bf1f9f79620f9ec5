/**
 * The Opus codec (opusscript: libopus compiled to WebAssembly, shipped inside the npm package, nothing downloaded
 * or built at install) at the call's fixed format: 48 kHz, mono, 20 ms frames.
 * @module
 */
import OpusScript from 'opusscript';

/** Samples per second everywhere inside the client. */
export const SAMPLE_RATE = 48_000;
/** Duration of one frame, the unit of sending, jitter buffering and mixing. */
export const FRAME_MS = 20;
/** Samples in one frame (20 ms at 48 kHz). */
export const FRAME_SAMPLES = (SAMPLE_RATE * FRAME_MS) / 1000;
/** The largest packet libopus produces (and opusscript's input buffer holds). */
export const MAX_PACKET_BYTES = OpusScript.MAX_PACKET_SIZE;

/** Thrown when a packet cannot be decoded or a frame cannot be encoded. */
export class CodecError extends Error {
  override readonly name = 'CodecError';
}

function toInt16(buf: Buffer): Int16Array {
  // Copy: the Buffer may sit at an odd offset of a shared pool, which an Int16Array view cannot.
  return new Int16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** Encodes 20 ms mono frames into Opus packets (VoIP mode). Call {@link OpusEncoder.close} to free the wasm memory. */
export class OpusEncoder {
  readonly #opus = new OpusScript(SAMPLE_RATE, 1, OpusScript.Application.VOIP);

  /** Encodes one frame of exactly {@link FRAME_SAMPLES} samples. */
  encode(frame: Int16Array): Uint8Array {
    if (frame.length !== FRAME_SAMPLES) throw new CodecError(`a frame has ${FRAME_SAMPLES} samples, got ${frame.length}`);
    try {
      return this.#opus.encode(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength), FRAME_SAMPLES);
    } catch (err) {
      throw new CodecError(`opus encode failed: ${(err as Error).message}`);
    }
  }

  /** Frees the encoder. */
  close(): void {
    this.#opus.delete();
  }
}

/** Decodes one sender's packets (Opus decoders keep state between packets: one per sender). */
export class OpusDecoder {
  readonly #opus = new OpusScript(SAMPLE_RATE, 1, OpusScript.Application.VOIP);

  /**
   * Decodes a packet: as many samples as it holds (960 from this client; a sender built from the seed may
   * use 10, 40 or 60 ms packets). Throws {@link CodecError} for an empty, oversized or corrupt packet.
   */
  decode(packet: Uint8Array): Int16Array {
    if (packet.byteLength === 0 || packet.byteLength > MAX_PACKET_BYTES) throw new CodecError(`invalid packet size ${packet.byteLength}`);
    try {
      return toInt16(this.#opus.decode(Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength)));
    } catch (err) {
      throw new CodecError(`opus decode failed: ${(err as Error).message}`);
    }
  }

  /**
   * `samples` of packet-loss concealment (default one frame): libopus extrapolates from the previous packets
   * (an empty packet asks for it). opusscript cannot pass a duration, so libopus conceals its maximum (60 ms)
   * and we keep the start; the decoder fades the rest into the next real packet.
   */
  conceal(samples = FRAME_SAMPLES): Int16Array {
    const out = new Int16Array(samples);
    try {
      out.set(toInt16(this.#opus.decode(Buffer.alloc(0))).subarray(0, samples));
    } catch {
      // Nothing to extrapolate from: silence.
    }
    return out;
  }

  /** Frees the decoder. */
  close(): void {
    this.#opus.delete();
  }
}
