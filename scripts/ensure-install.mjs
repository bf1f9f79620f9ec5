// Makes `npm start` and `npm test` self-sufficient on a fresh clone: installs npm dependencies (which also
// builds @raftrtc/raft through the root `prepare` script) when they are missing or older than the lockfile.
// With `--browser` (npm test) it also installs the Debian packages the tests start (Chromium, etcd) when
// they are missing and we may (root with apt); Playwright never downloads a browser here.
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

// Debian packages the tests start for real: Chromium (browser and WebRTC tests), etcd (the kv example's
// etcd gateway is checked against etcd's own answers) and espeak-ng (speech the voice relay tests stream).
const TEST_PACKAGES = [
  { pkg: 'chromium', bin: '/usr/bin/chromium' },
  { pkg: 'etcd-server', bin: '/usr/bin/etcd' },
  { pkg: 'espeak-ng', bin: '/usr/bin/espeak-ng' },
];
if (process.argv.includes('--browser')) {
  const missing = TEST_PACKAGES.filter((p) => !existsSync(p.bin)).map((p) => p.pkg);
  const canApt = typeof process.getuid === 'function' && process.getuid() === 0 && existsSync('/usr/bin/apt-get');
  if (missing.length > 0 && canApt) {
    console.log(`[raftrtc] installing what the tests start (apt-get install ${missing.join(' ')})…`);
    try {
      execSync(`apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(' ')}`, { stdio: 'inherit' });
    } catch {
      console.log('[raftrtc] could not install them: the tests that need them will be skipped');
    }
  } else if (missing.length > 0) {
    console.log(`[raftrtc] ${missing.join(', ')} missing and cannot be installed here: the tests that need them will be skipped`);
  }
}
