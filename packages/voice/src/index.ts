/**
 * `@raftrtc/voice`: a gRPC voice relay wire-compatible with the com_municat seed (service `Calling`, method
 * `VoIP`), and its command-line client. See docs/voice.md.
 * @module
 */
export * from './proto.js';
export {
  DEFAULT_RELAY_LIMITS, Relay, RelayClient, Undecodable, resolveRelayLimits, validateRequest,
  type LeaveReason, type MalformedReason, type Queued, type ReceiveResult, type RelayCounters, type RelayHooks, type RelayLimits, type Verdict,
} from './server/relay.js';
export {
  END_REASON_KEY, MAX_REQUEST_BYTES, MAX_ROOM_LENGTH, formatHostPort, startVoiceServer,
  type VoiceServer, type VoiceServerMetrics, type VoiceServerOptions, type VoiceTlsOptions,
} from './server/voice-server.js';
export { SERVE_USAGE, parseServeArgs, runServe } from './server/serve.js';
export { UsageError, parseCommandLine, parseHostPort } from './command-line.js';
export { Call, ExitCode, type CallOptions, type CallIo, type CallResult, type CallStats, type ExitCodeValue } from './client/call.js';
export { CALL_USAGE, parseCallArgs } from './client/args.js';
export { JitterBuffer, JitterOptionsError, type JitterBufferOptions, type JitterStats, type Pop, type PushResult } from './client/jitter-buffer.js';
export { SenderPlayout } from './client/playout.js';
export { mix, softLimit } from './client/mixer.js';
export { CodecError, FRAME_MS, FRAME_SAMPLES, OpusDecoder, OpusEncoder, SAMPLE_RATE } from './client/opus.js';
export { encodeWav, parseWav, readWavFile, WavFormatError, WavWriter, type PcmAudio } from './client/wav.js';
export { resample, SampleRateError } from './client/resample.js';
