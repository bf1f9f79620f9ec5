// `npm test`: typecheck everything, then run every `*.test.ts` under packages/, apps/ and examples/ with Node's own
// test runner. The runner's summary is the last thing printed.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function findTests(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) findTests(p, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json', '--noEmit'], { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) { console.error('typecheck failed'); process.exit(1); }

const only = process.argv.slice(2);
const files = (only.length ? only : [...findTests(join(root, 'packages')), ...findTests(join(root, 'apps')), ...findTests(join(root, 'examples'))]).sort();
const runner = [process.execPath, '--import', 'tsx', '--test', '--test-reporter=spec', ...files];
// WebRTC must stay on loopback (docs/testing.md): as root, the whole run goes into a fresh network namespace whose
// only interface is `lo`. Every test server binds 127.0.0.1, so nothing else notices.
const isolate = process.getuid?.() === 0 && process.env.RAFTRTC_NO_NETNS !== '1' && spawnSync('unshare', ['-n', 'true']).status === 0;
const res = isolate
  ? spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', ...runner], { cwd: root, stdio: 'inherit' })
  : spawnSync(runner[0], runner.slice(1), { cwd: root, stdio: 'inherit' });
process.exit(res.status ?? 1);
