/**
 * The etcd gateway checked against etcd itself: a real single-member etcd (Debian's etcd-server, installed
 * by `npm test` when it can be) and our 3-member cluster get byte-identical requests, and the answers must
 * match field for field once what legitimately differs is normalised (cluster and member ids, terms, and
 * revisions, which are compared as offsets from each system's first write).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcdArgs, freePort, type EtcdMember } from '../../../scripts/lib/etcd.js';
import { HOST, http, startCluster, waitFor, type Reply, type TestCluster } from './helpers.js';

const hasEtcd = spawnSync('sh', ['-c', 'command -v etcd']).status === 0;
const b64 = (s: string): string => Buffer.from(s).toString('base64');

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Ids and terms differ between any two clusters; revisions are made relative to the first write's. */
function normalise(v: Json, base: number, key = ''): Json {
  if (Array.isArray(v)) return v.map((x) => normalise(x, base));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalise(x, base, k)]));
  if (['cluster_id', 'member_id', 'raft_term', 'leader', 'raftTerm', 'raftIndex', 'raftAppliedIndex'].includes(key)) return '<id>';
  if (['revision', 'create_revision', 'mod_revision'].includes(key) && typeof v === 'string') return `rev+${Number(v) - base}`;
  return v;
}

/** The requests both get, in order: every shape the gateway claims to answer, and refusals. */
const REQUESTS: [string, string][] = [
  ['/v3/kv/put', JSON.stringify({ key: b64('foo'), value: b64('bar') })],
  ['/v3/kv/put', JSON.stringify({ key: b64('foo'), value: b64('baz'), prev_kv: true })],
  ['/v3/kv/put', JSON.stringify({ key: b64('fop'), value: b64('') })],
  ['/v3/kv/range', JSON.stringify({ key: b64('foo') })],
  ['/v3/kv/range', JSON.stringify({ key: b64('nope') })],
  ['/v3/kv/range', JSON.stringify({ key: b64('f'), range_end: b64('g') })],
  ['/v3/kv/range', JSON.stringify({ key: b64('f'), range_end: b64('g'), keys_only: true })],
  ['/v3/kv/range', JSON.stringify({ key: b64('f'), range_end: b64('g'), count_only: true })],
  ['/v3/kv/range', JSON.stringify({ key: b64('f'), range_end: b64('g'), limit: '1' })],
  ['/v3/kv/range', JSON.stringify({ key: b64('a'), range_end: 'AA==' })],
  ['/v3/kv/range', JSON.stringify({ key: b64('foo'), serializable: true })],
  ['/v3/kv/deleterange', JSON.stringify({ key: b64('foo'), prev_kv: true })],
  ['/v3/kv/deleterange', JSON.stringify({ key: b64('foo') })],
  ['/v3/kv/deleterange', JSON.stringify({ key: b64('f'), range_end: b64('g') })],
  ['/v3/kv/range', JSON.stringify({ key: b64('f'), range_end: b64('g') })],
  ['/v3/kv/put', JSON.stringify({ key: '!!', value: 'x' })],
  ['/v3/kv/put', JSON.stringify({})],
];

describe('examples/kv: the etcd gateway answers as etcd does', { skip: hasEtcd ? false : 'etcd is not installed' }, () => {
  let etcd: ChildProcess;
  let etcdPort: number;
  let dir: string;
  let cluster: TestCluster;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'raftrtc-etcd-compat-'));
    const self: EtcdMember = { name: 'e1', dataDir: join(dir, 'etcd'), clientPort: await freePort(), peerPort: await freePort() };
    etcdPort = self.clientPort;
    etcd = spawn('etcd', etcdArgs(self, [self], 'kv-compat'), { stdio: 'ignore' });
    cluster = await startCluster('raftrtc-kv-compat-');
    await waitFor('etcd answering', async () => {
      const r = await http({ host: HOST, port: etcdPort }, 'POST', '/v3/maintenance/status', '{}').catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    });
  });
  after(async () => {
    etcd?.kill('SIGKILL');
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('every request gets the same status and the same answer, field for field', async () => {
    const ours: Reply[] = [];
    const theirs: Reply[] = [];
    for (const [path, body] of REQUESTS) {
      theirs.push(await http({ host: HOST, port: etcdPort }, 'POST', path, body));
      ours.push(await http(cluster.leader, 'POST', path, body));
    }
    const base = (rs: Reply[]) => Number(rs[0]!.body.header.revision);
    for (let i = 0; i < REQUESTS.length; i++) {
      const [path, body] = REQUESTS[i]!;
      const what = `${path} ${body}`;
      assert.equal(ours[i]!.status, theirs[i]!.status, `${what}: HTTP status`);
      if (theirs[i]!.status !== 200) {
        assert.equal(ours[i]!.body.code, theirs[i]!.body.code, `${what}: gRPC code (ours ${JSON.stringify(ours[i]!.body)}, etcd ${JSON.stringify(theirs[i]!.body)})`);
        assert.equal(typeof ours[i]!.body.error, 'string', `${what}: an error text`);
        continue;
      }
      assert.deepEqual(normalise(ours[i]!.body, base(ours)), normalise(theirs[i]!.body, base(theirs)), `${what}: the answers differ`);
    }
  });

  it('maintenance/status carries the fields a client reads, with etcd\'s types', async () => {
    const theirs = await http({ host: HOST, port: etcdPort }, 'POST', '/v3/maintenance/status', '{}');
    const ours = await http(cluster.leader, 'POST', '/v3/maintenance/status', '{}');
    for (const k of ['leader', 'raftIndex', 'raftTerm']) {
      assert.equal(typeof ours.body[k], typeof theirs.body[k], `${k}: same JSON type as etcd's`);
      assert.ok(/^\d+$/.test(ours.body[k]), `${k} is a uint64 decimal string: ${ours.body[k]}`);
    }
    assert.equal(ours.body.leader, ours.body.header.member_id, 'asked of the leader, leader equals its own member_id (as etcd answers)');
    assert.equal(theirs.body.leader, theirs.body.header.member_id, 'and etcd, a single member, leads itself');
  });
});
