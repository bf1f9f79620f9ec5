// Makes `npm start` and `npm test` self-sufficient on a fresh clone: installs npm dependencies (which also
// builds @raftrtc/raft through the root `prepare` script) when they are missing or older than the lockfile.
// With `--browser` (npm test) it also installs Debian's Chromium for the browser tests when it is missing
// and we may (root with apt); Playwright never downloads a browser here.
import { execSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const marker = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
const stale = !existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs;
if (stale) {
  console.log('[raftrtc] installing dependencies (npm ci)…');
  execSync('npm ci --no-audit --no-fund', { cwd: root, stdio: 'inherit' });
} else if (!existsSync(join(root, 'packages', 'raft', 'dist', 'index.js'))) {
  execSync('npm run prepare', { cwd: root, stdio: 'inherit' });
}

if (process.argv.includes('--browser') && !existsSync('/usr/bin/chromium')) {
  const canApt = typeof process.getuid === 'function' && process.getuid() === 0 && existsSync('/usr/bin/apt-get');
  if (canApt) {
    console.log('[raftrtc] installing Chromium for the browser tests (apt-get install chromium)…');
    try {
      execSync('apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium', { stdio: 'inherit' });
    } catch {
      console.log('[raftrtc] could not install Chromium: the browser tests will be skipped');
    }
  } else {
    console.log('[raftrtc] /usr/bin/chromium is missing and cannot be installed here: the browser tests will be skipped');
  }
}
