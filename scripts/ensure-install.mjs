// Makes `npm start` and `npm test` self-sufficient on a fresh clone: installs npm dependencies (which also
// builds @raftrtc/raft through the root `prepare` script) when they are missing or older than the lockfile.
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
