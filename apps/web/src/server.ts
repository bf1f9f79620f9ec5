/**
 * The web site, served behind `@raftrtc/server` (rooms API and signaling) on one origin:
 * - `/`: the room app (`packages/app`), built by Vite into memory at startup;
 * - `/visualizer`: the Raft visualizer, bundled by esbuild into memory at startup from the TypeScript sources
 *   (so the browser runs the very `RaftCore` the package exports, not a copy);
 * - everything else under `apps/web/public/`.
 * Both builds come from the sources on every start, so a fresh clone needs no build step. `npm start` runs this file.
 * @module
 */
import { realpath, readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { createServer as createRaftRtcServer, serverOptionsFromEnv, type ServerOptions as RaftRtcServerOptions } from '@raftrtc/server';
import { buildApp } from '../../../packages/app/tools/build.js';

const srcDir = dirname(fileURLToPath(import.meta.url));
const appDir = resolve(srcDir, '..');
const repoDir = resolve(appDir, '..', '..');
const publicDir = join(appDir, 'public');

/** URL prefix of the in-memory visualizer bundle. */
const ASSETS = '/assets/';

/** Pages whose URL is not their file's name. */
const PAGES: Readonly<Record<string, string>> = {
  '/visualizer': '/visualizer.html',
  '/visualizer/': '/visualizer.html',
};

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.webmanifest': 'application/manifest+json',
};

// Everything the page loads comes from this server; inline script and style are never needed.
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    + "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

/** Options of {@link startServer}. */
export interface ServerOptions {
  /** TCP port; 0 picks a free one. Default 8080. */
  port?: number;
  /** Interface to listen on. Default `127.0.0.1`: the demo is not meant to be exposed. */
  host?: string;
  /** Options of the signaling server (secret, ICE servers, limits…); `npm start` reads them from the environment. */
  server?: Omit<RaftRtcServerOptions, 'fallback'>;
}

/** A listening server. */
export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8080/`. */
  url: string;
  port: number;
  /** Stops listening and drops open keep-alive connections. */
  close(): Promise<void>;
}

/**
 * Bundles the visualizer. `@raftrtc/raft` and `@raftrtc/raft/testing` resolve through the root
 * tsconfig's `paths` to the TypeScript sources, so no prior `tsc` build is needed. Returns the output
 * files keyed by URL path (`/assets/visualizer.js` and its source map).
 */
export async function bundleVisualizer(): Promise<Map<string, Uint8Array>> {
  const outdir = join(appDir, '.bundle');
  const result = await build({
    entryPoints: { visualizer: join(srcDir, 'visualizer', 'main.ts') },
    bundle: true,
    write: false,
    outdir,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    tsconfig: join(repoDir, 'tsconfig.json'),
    sourcemap: 'linked',
    logLevel: 'silent',
  });
  return new Map(result.outputFiles.map((f) => [ASSETS + basename(f.path), f.contents]));
}

/** Maps a URL path to a file under `public/`, or null when it would leave that folder. */
async function publicFile(pathname: string): Promise<string | null> {
  const file = resolve(publicDir, '.' + (pathname.endsWith('/') ? pathname + 'index.html' : pathname));
  if (!file.startsWith(publicDir + sep)) return null;
  try {
    // A symlink inside public/ must not lead outside it either.
    const real = await realpath(file);
    const root = await realpath(publicDir);
    if (!real.startsWith(root + sep) || !(await stat(real)).isFile()) return null;
    return real;
  } catch {
    return null;
  }
}

function send(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: Uint8Array | string, extra: Record<string, string> = {}): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'Content-Type': type,
    'Content-Length': String(bytes.byteLength),
    'Cache-Control': 'no-cache',
    ...extra,
  });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

async function handle(req: IncomingMessage, res: ServerResponse, built: ReadonlyMap<string, Uint8Array>): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(req, res, 405, 'text/plain; charset=utf-8', 'Method not allowed\n', { Allow: 'GET, HEAD' });
    return;
  }
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
  } catch {
    send(req, res, 400, 'text/plain; charset=utf-8', 'Bad request\n');
    return;
  }
  if (pathname.includes('\0')) {
    send(req, res, 400, 'text/plain; charset=utf-8', 'Bad request\n');
    return;
  }
  const type = (p: string) => CONTENT_TYPES[extname(p).toLowerCase()] ?? 'application/octet-stream';
  // The room app's page is `/` (and `/index.html`): its shareable links are `/?room=…`.
  const builtPath = pathname === '/' ? '/index.html' : pathname;
  const asset = built.get(builtPath);
  if (asset) {
    send(req, res, 200, type(builtPath), asset);
    return;
  }
  const file = await publicFile(PAGES[pathname] ?? pathname);
  if (!file) {
    send(req, res, 404, 'text/plain; charset=utf-8', 'Not found\n');
    return;
  }
  send(req, res, 200, type(file), await readFile(file));
}

/**
 * The web site as a request handler: builds the room app and the visualizer once, then serves them and
 * `public/`. Plugged into `@raftrtc/server` as its `fallback`, so one origin serves the app, the rooms API
 * and signaling.
 */
export async function createWebHandler(): Promise<(req: IncomingMessage, res: ServerResponse) => void> {
  const [app, visualizer] = await Promise.all([buildApp(), bundleVisualizer()]);
  // Disjoint by construction: the app's files sit under /app-assets/ (and /index.html), the visualizer's under /assets/.
  const built = new Map([...app, ...visualizer]);
  return (req, res) => {
    handle(req, res, built).catch((err: unknown) => {
      console.error(err);
      if (!res.headersSent) send(req, res, 500, 'text/plain; charset=utf-8', 'Internal server error\n');
      else res.destroy();
    });
  };
}

/**
 * Starts the product: `@raftrtc/server` (rooms API, Centrifugo-compatible signaling at
 * `/connection/websocket`, `/metrics`, `/healthz`) with the web app behind it. Rejects when a bundle does
 * not build or the port is taken.
 */
export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const server = createRaftRtcServer({ ...options.server, fallback: await createWebHandler() });
  const host = options.host ?? '127.0.0.1';
  const { port } = await server.listen(options.port ?? 8080, host);
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    port,
    close: () => server.close(),
  };
}

function portFromEnv(value: string | undefined): number {
  if (value === undefined || value === '') return 8080;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`PORT must be an integer in [0, 65535], got "${value}"`);
  return port;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    const running = await startServer({ port: portFromEnv(process.env.PORT), server: serverOptionsFromEnv() });
    console.log(`RaftRTC on ${running.url} (rooms at /, Raft visualizer at /visualizer, rooms API at /api, signaling at /connection/websocket)`);
    const shutdown = (): void => { void running.close().then(() => process.exit(0)); };
    process.once('SIGINT', shutdown);
    process.once('SIGTERM', shutdown);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
