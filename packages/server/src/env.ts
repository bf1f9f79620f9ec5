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
 * `RAFTRTC_ICE_SERVERS` (JSON array of RTCIceServer), `RAFTRTC_PUBLIC_URL`, `RAFTRTC_TRUST_PROXY=1`, and the
 * message archive: `RAFTRTC_ARCHIVE=off` (none), `RAFTRTC_ARCHIVE_DIR` (default a temporary directory),
 * `RAFTRTC_ARCHIVE_URL` (an archive service elsewhere; `{room}` is replaced by the room name).
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
    archive: archiveFromEnv(env),
  };
}

function archiveFromEnv(env: Record<string, string | undefined>): ServerOptions['archive'] {
  const mode = env.RAFTRTC_ARCHIVE;
  if (mode === 'off') return false;
  if (mode !== undefined && mode !== '' && mode !== 'on') throw new EnvError('RAFTRTC_ARCHIVE', 'must be "on" or "off"');
  const url = env.RAFTRTC_ARCHIVE_URL || undefined;
  if (url !== undefined && !/^https?:\/\//.test(url)) throw new EnvError('RAFTRTC_ARCHIVE_URL', 'must be an http(s) URL');
  return { dir: env.RAFTRTC_ARCHIVE_DIR || undefined, url };
}
