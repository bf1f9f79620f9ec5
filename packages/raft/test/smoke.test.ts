/** Runs the shared contract smoke check (`shared/contract-check/smoke.mts`) when it is present beside the repo. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';

const root = join(import.meta.dirname, '..', '..', '..');
const smoke = join(root, '..', 'shared', 'contract-check', 'smoke.mts');

test('contract smoke check passes against @raftrtc/raft', { skip: existsSync(smoke) ? false : 'shared/contract-check is not beside this clone' }, () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', smoke, join(root, 'packages', 'raft', 'src', 'index.ts')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /7 passed, 0 failed/);
});
