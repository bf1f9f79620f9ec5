/**
 * The web server: serves the room app at `/` and the visualizer at `/visualizer`, their assets and the
 * in-memory builds with the right types; answers 404 for anything else, including every way of climbing out
 * of `public/`.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startServer, type RunningServer } from '../src/server.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw request: unlike fetch(), node:http sends the path exactly as given, `..` and all. */
function get(server: RunningServer, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end();
  });
}

describe('web server', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer({ port: 0 });
  });
  after(() => server.close());

  it('listens on loopback at the port it reports', () => {
    assert.ok(server.port > 0);
    assert.equal(server.url, `http://127.0.0.1:${server.port}/`);
  });

  it('is one origin for the app, the rooms API, signaling and operations', async () => {
    assert.equal((await get(server, '/healthz')).status, 200, '/healthz');
    assert.match((await get(server, '/metrics')).body, /^# (HELP|TYPE) /m, '/metrics is Prometheus text');
    const config = await get(server, '/api/config');
    assert.equal(config.status, 200, '/api/config');
    assert.ok(Array.isArray(JSON.parse(config.body).iceServers), `ICE servers listed: ${config.body}`);
    const room = await fetch(`${server.url}api/rooms/lobby/token`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'ada', create: true }),
    });
    const token = await room.json() as { url?: string; channel?: string };
    assert.equal(room.status, 200, `token: ${JSON.stringify(token)}`);
    assert.equal(token.channel, 'room:lobby');
    assert.ok(token.url?.endsWith('/connection/websocket'), `signaling URL on this server: ${token.url}`);
    assert.equal((await get(server, '/api/rooms/nowhere')).status, 404, 'an unknown room');
  });

  it('serves the room app at / and /index.html, shareable links included', async () => {
    for (const path of ['/', '/index.html', '/?room=lobby']) {
      const res = await get(server, path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
      assert.match(res.body, /<script type="module" crossorigin src="\/app-assets\/index-[\w-]+\.js"><\/script>/, `${path} loads the app`);
      assert.match(res.body, /<div id="root"><\/div>/, `${path} is the app's page`);
    }
  });

  it('serves the visualizer at /visualizer', async () => {
    for (const path of ['/visualizer', '/visualizer/', '/visualizer?seed=3', '/visualizer.html']) {
      const res = await get(server, path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
      assert.match(res.body, /<script type="module" src="\/assets\/visualizer\.js"><\/script>/, `${path} loads the visualizer`);
    }
  });

  it('links the app and the visualizer to each other', async () => {
    const visualizer = (await get(server, '/visualizer')).body;
    assert.match(visualizer, /<a class="back-link" href="\/">/, 'the visualizer links back to the rooms');
    const app = (await get(server, '/')).body;
    const script = app.match(/src="(\/app-assets\/[^"]+\.js)"/)?.[1];
    assert.ok(script, 'the app page names its script');
    // The link is drawn by React, so it is in the bundle rather than the page.
    assert.match((await get(server, script)).body, /href:["'`]\/visualizer["'`]/, 'the app links to /visualizer');
  });

  it('serves every file the pages refer to', async () => {
    for (const pagePath of ['/', '/visualizer']) {
      const page = (await get(server, pagePath)).body;
      const refs = [...page.matchAll(/(?:src|href)="(\/[^"]*)"/g)].map((m) => m[1]);
      assert.ok(refs.length >= 3, `expected several assets on ${pagePath}, found ${refs.join(', ')}`);
      for (const ref of refs) assert.equal((await get(server, ref)).status, 200, `${ref} (from ${pagePath})`);
    }
  });

  it('serves the app built by Vite, with its stylesheet and source map', async () => {
    const page = (await get(server, '/')).body;
    const script = page.match(/src="(\/app-assets\/[^"]+\.js)"/)?.[1];
    const css = page.match(/href="(\/app-assets\/[^"]+\.css)"/)?.[1];
    assert.ok(script && css, `the page names its script and stylesheet: ${page}`);
    const js = await get(server, script);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.ok(js.body.trimEnd().endsWith(`//# sourceMappingURL=${script.split('/').pop()}.map`), 'no source map link');
    assert.equal((await get(server, css)).headers['content-type'], 'text/css; charset=utf-8');
    const sources = (JSON.parse((await get(server, `${script}.map`)).body) as { sources: string[] }).sources;
    // The browser runs the packages' own Raft node and mesh, from their sources.
    // Vite names them relative to the map's folder, packages/app/dist/app-assets/: `../../../raft/src/…`.
    for (const module of ['/raft/src/node/raft-node.ts', '/rtc/src/raft/room-membership.ts', '../src/room/room-client.ts']) {
      assert.ok(sources.some((s) => s.endsWith(module)), `the app's source map lacks ${module}`);
    }
  });

  it('serves the visualizer bundle built from the TypeScript sources, with its source map', async () => {
    const js = await get(server, '/assets/visualizer.js');
    assert.equal(js.status, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    // esbuild heads each bundled module with its path; includes() keeps a failure from printing the bundle.
    for (const module of ['packages/raft/src/core/raft.ts', 'packages/raft/src/testing/simulation.ts', 'apps/web/src/visualizer/main.ts']) {
      assert.ok(js.body.includes(`// ${module}\n`), `the bundle lacks ${module}`);
    }
    assert.ok(js.body.includes('RaftCore = class'), 'the bundle lacks RaftCore');
    assert.ok(js.body.trimEnd().endsWith('//# sourceMappingURL=visualizer.js.map'), 'no source map link');
    const map = await get(server, '/assets/visualizer.js.map');
    assert.equal(map.headers['content-type'], 'application/json; charset=utf-8');
    const sources = (JSON.parse(map.body) as { sources: string[] }).sources;
    // The browser runs the package's own core and simulator, not copies.
    assert.ok(sources.some((s) => s.endsWith('packages/raft/src/core/raft.ts')), sources.join('\n'));
    assert.ok(sources.some((s) => s.endsWith('packages/raft/src/testing/simulation.ts')));
  });

  it('gives static files their content types', async () => {
    assert.equal((await get(server, '/visualizer.css')).headers['content-type'], 'text/css; charset=utf-8');
    assert.equal((await get(server, '/favicon.svg')).headers['content-type'], 'image/svg+xml');
  });

  it('sends a restrictive content security policy and nosniff', async () => {
    for (const path of ['/', '/visualizer']) {
      const res = await get(server, path);
      const csp = String(res.headers['content-security-policy']);
      assert.match(csp, /default-src 'self'/, path);
      // The app's signaling WebSocket and API calls are same-origin; nothing inline is allowed.
      assert.match(csp, /connect-src 'self'/, path);
      assert.doesNotMatch(csp, /unsafe-inline/, path);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', path);
    }
  });

  it('answers HEAD with headers only', async () => {
    const full = await get(server, '/');
    const head = await get(server, '/', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-length'], String(Buffer.byteLength(full.body)));
  });

  it('answers 404 for missing files and folders', async () => {
    for (const path of ['/nope.html', '/assets/', '/assets/nope.js', '/app-assets/', '/app-assets/nope.js', '/missing/', '/visualizer.css/x', '/visualizer/x']) {
      assert.equal((await get(server, path)).status, 404, path);
    }
  });

  it('never serves a file outside public/', async () => {
    const attempts = [
      '/../package.json',
      '/../../package.json',
      '/../src/server.ts',
      '/%2e%2e/src/server.ts',
      '/..%2fsrc%2fserver.ts',
      '/..%2f..%2f..%2fpackage.json',
      '/%2e%2e%2f%2e%2e%2fpackage.json',
      '/assets/../../src/server.ts',
      '/..\\src\\server.ts',
      '/%5c..%5csrc%5cserver.ts',
      '//etc/passwd',
      '/%2fetc%2fpasswd',
    ];
    for (const path of attempts) {
      const res = await get(server, path);
      assert.equal(res.status, 404, `${path} answered ${res.status}`);
      assert.doesNotMatch(res.body, /startServer|"workspaces"|root:/, path);
    }
  });

  it('rejects malformed paths and other methods', async () => {
    assert.equal((await get(server, '/%E0%A4%A')).status, 400);
    assert.equal((await get(server, '/index.html%00.css')).status, 400);
    const post = await get(server, '/', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });
});
