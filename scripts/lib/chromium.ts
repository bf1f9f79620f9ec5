/**
 * What every browser test and benchmark shares: Debian's Chromium (never a downloaded browser), the flags
 * measured in ../shared/notes/webrtc-testing.md, and esbuild bundling a TypeScript page entry into memory
 * with the repository's path mappings (so pages run the packages' sources, not a build).
 * @module
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const CHROMIUM = '/usr/bin/chromium';

/** Why Chromium tests cannot run here, or false when they can. */
export const chromiumMissing: string | false = existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent; install it with apt-get install -y chromium`;

/**
 * Headless Chromium as root, quiet on a closed network. Without media permission Chromium gathers no
 * loopback candidate at all: `--use-fake-ui-for-media-stream` grants it, and only then does
 * `--allow-loopback-in-peer-connection` let pages connect over 127.0.0.1 (the only address in the tests'
 * network namespace). Add `--use-fake-device-for-media-stream` for camera and microphone.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream',
];

const repoDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Bundles a browser entry point (ESM, ES2022) into memory; throws with esbuild's errors if it does not build. */
export async function bundleForBrowser(entry: string): Promise<Uint8Array> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    tsconfig: resolve(repoDir, 'tsconfig.json'),
    logLevel: 'silent',
  });
  const js = result.outputFiles[0];
  if (!js) throw new Error(`esbuild produced no bundle for ${entry}`);
  return js.contents;
}
