import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { etcdId } from '../src/etcd-gateway.js';
import type { KvMember } from '../src/member.js';
import { http, startCluster, waitFor, type Reply, type TestCluster } from './helpers.js';

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

/** A v3 request, retried while there is no leader yet (503). */
async function v3(member: KvMember, path: string, body: unknown): Promise<Reply> {
  return waitFor(`POST ${path}`, async () => {
    const r = await http(member, 'POST', path, JSON.stringify(body));
    return r.status === 503 ? undefined : r;
  });
}

describe('examples/kv: the etcd v3 JSON gateway subset on a 3-member cluster', () => {
  let cluster: TestCluster;
  let members: KvMember[];
  let followers: KvMember[];

  before(async () => {
    cluster = await startCluster('raftrtc-kv-etcd-');
    members = cluster.members;
    followers = members.filter((m) => m !== cluster.leader);
  });
  after(async () => { await cluster.stop(); });

  it('put answers an etcd header (int64 as strings); range reads it back linearizably on every member', async () => {
    const put = await v3(followers[0]!, '/v3/kv/put', { key: b64('foo'), value: b64('bar') });
    assert.equal(put.status, 200, `put: ${JSON.stringify(put.body)}`);
    const h = put.body.header;
    assert.ok(typeof h.revision === 'string' && Number(h.revision) > 0, `revision is a decimal string: ${JSON.stringify(h)}`);
    assert.ok(typeof h.raft_term === 'string' && Number(h.raft_term) > 0, `raft_term is a decimal string: ${JSON.stringify(h)}`);
    assert.equal(h.member_id, etcdId(followers[0]!.id));
    assert.ok(/^\d+$/.test(h.cluster_id), `cluster_id is a uint64 string: ${JSON.stringify(h)}`);
    for (const m of members) {
      const r = await v3(m, '/v3/kv/range', { key: b64('foo') });
      assert.equal(r.status, 200);
      assert.equal(r.body.count, '1');
      assert.equal(r.body.kvs.length, 1);
      const kv = r.body.kvs[0];
      assert.deepEqual(kv, { key: b64('foo'), value: b64('bar'), create_revision: h.revision, mod_revision: h.revision, version: '1' });
      assert.ok(Number(r.body.header.revision) >= Number(h.revision), `a linearizable read sees the acknowledged revision on ${m.id}`);
      assert.equal(r.body.more, undefined, 'false is a zero value and left out');
    }
    // The same key through the native API: keys and values are the UTF-8 strings.
    const native = await http(members[2]!, 'GET', '/kv/foo');
    assert.equal(native.body.value, 'bar');
  });

  it('range of a missing key leaves out kvs and count (zero values)', async () => {
    const r = await v3(members[1]!, '/v3/kv/range', { key: b64('no-such-key') });
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body), ['header']);
  });

  it('range_end scans in byte order; "\\0" means to the end; limit truncates with more and the full count', async () => {
    for (const k of ['p/b', 'p/a', 'p/c', 'p/é', 'q']) {
      const r = await v3(cluster.leader, '/v3/kv/put', { key: b64(k), value: b64(`v-${k}`) });
      assert.equal(r.status, 200, `put ${k}`);
    }
    // The prefix p/ as etcd clients write it: range_end is the prefix with its last byte incremented.
    const prefix = await v3(followers[1]!, '/v3/kv/range', { key: b64('p/'), range_end: b64('p0') });
    assert.deepEqual(prefix.body.kvs.map((kv: { key: string }) => unb64(kv.key)), ['p/a', 'p/b', 'p/c', 'p/é']);
    assert.equal(prefix.body.count, '4');
    const limited = await v3(followers[1]!, '/v3/kv/range', { key: b64('p/'), range_end: b64('p0'), limit: 2 });
    assert.deepEqual(limited.body.kvs.map((kv: { key: string }) => unb64(kv.key)), ['p/a', 'p/b']);
    assert.equal(limited.body.more, true);
    assert.equal(limited.body.count, '4');
    const toEnd = await v3(members[0]!, '/v3/kv/range', { key: b64('p/c'), range_end: b64('\0') });
    assert.deepEqual(toEnd.body.kvs.map((kv: { key: string }) => unb64(kv.key)), ['p/c', 'p/é', 'q']);
    const keysOnly = await v3(members[0]!, '/v3/kv/range', { key: b64('q'), keys_only: true });
    assert.equal(keysOnly.body.kvs[0].value, undefined, 'keys_only leaves the value out');
    const countOnly = await v3(members[0]!, '/v3/kv/range', { key: b64('p/'), range_end: b64('p0'), count_only: true });
    assert.equal(countOnly.body.kvs, undefined);
    assert.equal(countOnly.body.count, '4');
  });

  it('serializable range answers from the member\'s own state (eventually the write is there)', async () => {
    const put = await v3(cluster.leader, '/v3/kv/put', { key: b64('ser'), value: b64('1') });
    for (const m of members) {
      const r = await waitFor(`serializable read on ${m.id}`, async () => {
        const x = await v3(m, '/v3/kv/range', { key: b64('ser'), serializable: true });
        return x.body.kvs ? x : undefined;
      });
      assert.equal(r.body.kvs[0].mod_revision, put.body.header.revision);
    }
  });

  it('prev_kv on put; deleterange deletes a range at one revision and answers the count', async () => {
    const again = await v3(members[1]!, '/v3/kv/put', { key: b64('foo'), value: b64('baz'), prev_kv: true });
    assert.equal(unb64(again.body.prev_kv.value), 'bar');
    assert.equal(again.body.prev_kv.version, '1');
    const del = await v3(members[2]!, '/v3/kv/deleterange', { key: b64('p/'), range_end: b64('p0') });
    assert.equal(del.status, 200);
    assert.equal(del.body.deleted, '4');
    const after = await v3(members[0]!, '/v3/kv/range', { key: b64('p/'), range_end: b64('p0') });
    assert.equal(after.body.count, undefined, 'nothing left under p/');
    assert.ok(Number(after.body.header.revision) === Number(del.body.header.revision) || Number(after.body.header.revision) > Number(del.body.header.revision), 'the read is at or after the delete');
    const none = await v3(members[0]!, '/v3/kv/deleterange', { key: b64('p/a') });
    assert.equal(none.body.deleted, undefined, 'deleted: 0 is left out');
    assert.equal(none.body.header.revision, del.body.header.revision, 'deleting nothing takes no revision');
  });

  it('maintenance/status: member_id, leader, raftTerm, raftIndex agree across members', async () => {
    const views = await Promise.all(members.map((m) => v3(m, '/v3/maintenance/status', {})));
    for (const [i, v] of views.entries()) {
      assert.equal(v.status, 200);
      assert.equal(v.body.header.member_id, etcdId(members[i]!.id));
      assert.equal(v.body.leader, etcdId(cluster.leader.id));
      assert.ok(/^\d+$/.test(v.body.raftTerm) && /^\d+$/.test(v.body.raftIndex), `term and index are strings: ${JSON.stringify(v.body)}`);
      assert.equal(typeof v.body.version, 'string');
      assert.ok(/^\d+$/.test(v.body.dbSize), `dbSize is a string: ${JSON.stringify(v.body)}`);
    }
    assert.equal(new Set(views.map((v) => v.body.raftTerm)).size, 1, 'one term');
  });

  it('refuses a missing key, bad base64, non-UTF-8 bytes, leases and GET, in etcd\'s error shape', async () => {
    // grpc-gateway's shape: { error, message, code } with the gRPC code (3 InvalidArgument, 12 Unimplemented).
    const cases: [unknown, number, number][] = [
      [{ value: b64('x') }, 400, 3],
      [{ key: '***', value: b64('x') }, 400, 3],
      [{ key: b64(Buffer.from([0xff, 0xfe])), value: b64('x') }, 400, 3],
      [{ key: b64('k'), value: b64('x'), lease: '7' }, 501, 12],
    ];
    for (const [body, status, code] of cases) {
      const r = await http(members[0]!, 'POST', '/v3/kv/put', JSON.stringify(body));
      assert.equal(r.status, status, JSON.stringify(body));
      assert.equal(r.body.code, code, JSON.stringify(r.body));
      assert.ok(typeof r.body.error === 'string' && r.body.error === r.body.message, `error and message carry the text: ${JSON.stringify(r.body)}`);
    }
    const get = await http(members[0]!, 'GET', '/v3/kv/range');
    assert.equal(get.status, 405);
    const unknown = await http(members[0]!, 'POST', '/v3/kv/txn', '{}');
    assert.equal(unknown.status, 404);
  });
});
