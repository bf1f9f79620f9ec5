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
export { SERVE_USAGE, UsageError, parseHostPort, parseServeArgs, runServe } from './server/serve.js';
