/**
 * Server options from the environment, shared by the CLI (`main.ts`) and the web app's `npm start`.
 * @module
 */
import type { IceServer, ServerOptions } from './options.js';

/** The environment is not usable: names the variable and why. */
export class EnvError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'EnvError';
  }
}

/**
 * `RAFTRTC_SECRET` (token secret; random per process if unset, so tokens die with it),
 * `RAFTRTC_ICE_SERVERS` (JSON array of RTCIceServer), `RAFTRTC_PUBLIC_URL`, `RAFTRTC_TRUST_PROXY=1`.
 * The log level (`RAFTRTC_LOG`) is read by the logger itself.
 */
export function serverOptionsFromEnv(env: Record<string, string | undefined> = process.env): ServerOptions {
  let iceServers: IceServer[] = [];
  if (env.RAFTRTC_ICE_SERVERS) {
    try {
      iceServers = JSON.parse(env.RAFTRTC_ICE_SERVERS) as IceServer[];
    } catch {
      throw new EnvError('RAFTRTC_ICE_SERVERS', 'not valid JSON');
    }
    if (!Array.isArray(iceServers)) throw new EnvError('RAFTRTC_ICE_SERVERS', 'must be a JSON array of ICE servers');
  }
  return {
    secret: env.RAFTRTC_SECRET || undefined,
    iceServers,
    publicUrl: env.RAFTRTC_PUBLIC_URL || undefined,
    trustProxy: env.RAFTRTC_TRUST_PROXY === '1',
  };
}
