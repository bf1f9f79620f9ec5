/**
 * Builds the room app with Vite, programmatically, into memory: `npm start` (apps/web) calls
 * {@link buildApp} once at startup, so a fresh clone needs no build step and no file is written (several
 * test processes may start servers at once without racing on a `dist/` folder). `@raftrtc/raft` and
 * `@raftrtc/rtc` resolve to their TypeScript sources, as the root tsconfig's `paths` do for `tsc`.
 * @module
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { build, type Rollup } from 'vite';

const appDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoDir = resolve(appDir, '..', '..');

/** Where the built files live under the site's root: beside, never under, the visualizer's `/assets/`. */
export const APP_ASSETS_DIR = 'app-assets';

/** The built app: file contents keyed by URL path (`/index.html`, `/app-assets/index-….js`, …). */
export type AppFiles = Map<string, Uint8Array>;

/** Thrown when Vite's build fails or produces no page. */
export class AppBuildError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AppBuildError';
  }
}

/** Builds the app (production mode, source maps linked) and returns its files. */
export async function buildApp(): Promise<AppFiles> {
  let result: Awaited<ReturnType<typeof build>>;
  try {
    result = await build({
      root: appDir,
      configFile: false,
      envFile: false,
      logLevel: 'error',
      mode: 'production',
      plugins: [react()],
      resolve: {
        alias: {
          '@raftrtc/raft': join(repoDir, 'packages/raft/src/index.ts'),
          '@raftrtc/rtc': join(repoDir, 'packages/rtc/src/index.ts'),
        },
      },
      build: {
        write: false,
        outDir: join(appDir, 'dist'),
        assetsDir: APP_ASSETS_DIR,
        sourcemap: true,
        target: 'es2022',
        // The server's CSP forbids inline script and style: every asset is a file, however small.
        assetsInlineLimit: 0,
        reportCompressedSize: false,
      },
    });
  } catch (err) {
    throw new AppBuildError(`the room app did not build: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const outputs = (Array.isArray(result) ? result : [result]) as Rollup.RollupOutput[];
  const files: AppFiles = new Map();
  for (const out of outputs) {
    for (const item of out.output) {
      const bytes = item.type === 'chunk' ? item.code : item.source;
      files.set(`/${item.fileName}`, typeof bytes === 'string' ? Buffer.from(bytes) : bytes);
    }
  }
  if (!files.has('/index.html')) throw new AppBuildError('the room app built without an index.html');
  return files;
}
