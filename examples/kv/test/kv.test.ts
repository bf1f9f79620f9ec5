import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { KvMember } from '../src/member.js';
import { agreedLeader, HOST, http, startCluster, waitFor, type Reply, type TestCluster } from './helpers.js';

const IDS = ['n1', 'n2', 'n3'];
const json = (v: unknown): string => JSON.stringify(v);

/** A write that is retried while the cluster has no leader (503); returns the successful reply. */
async function writeRetrying(member: KvMember, method: string, path: string, body: string): Promise<Reply> {
  return waitFor(`${method} ${path}`, async () => {
    const r = await http(member, method, path, body);
    if (r.status === 503) return undefined;
    return r;
  });
}

describe('examples/kv: a 3-member cluster over TCP with file storage', () => {
  let cluster: TestCluster;
  let dir: string;
  let members: KvMember[] = [];
  let leader: KvMember;
  let followers: KvMember[];

  before(async () => {
    cluster = await startCluster('raftrtc-kv-', {
      maxBodyBytes: 4096,
      // Compactions happen during the test, so the fourth member and the restarted leader catch up by snapshot.
      snapshotEvery: 8,
    });
    dir = cluster.dir;
    // The same array as the cluster's: members added or restarted below are stopped by cluster.stop().
    members = cluster.members;
    leader = await agreedLeader(members);
    followers = members.filter((m) => m !== leader);
    // Each member replicates its HTTP address once it knows a leader; the hints below rely on it.
    await waitFor('every member to know every HTTP address', async () => {
      const views = await Promise.all(members.map((m) => http(m, 'GET', '/cluster')));
      return views.every((v) => v.body.members.every((m: { http: string | null }) => m.http !== null)) ? true : undefined;
    });
  });

  after(async () => { await cluster.stop(); });

  it('GET /cluster: every member names the same leader, term and members', async () => {
    const views = await Promise.all(members.map((m) => http(m, 'GET', '/cluster')));
    for (const [i, v] of views.entries()) {
      assert.equal(v.status, 200, `GET /cluster on ${members[i]!.id}`);
      assert.equal(v.body.id, members[i]!.id, 'the member names itself');
      assert.equal(v.body.leader, leader.id, `${members[i]!.id} agrees on the leader`);
      assert.ok(Number.isInteger(v.body.term) && v.body.term >= 1, `a term: ${v.body.term}`);
      assert.ok(Number.isInteger(v.body.commit) && v.body.commit >= 1, `a commit index: ${v.body.commit}`);
      assert.deepEqual(v.body.members.map((m: { id: string }) => m.id).sort(), IDS, 'all three members');
      for (const m of members) {
        const listed = v.body.members.find((x: { id: string }) => x.id === m.id);
        assert.equal(listed.http, `${m.http.host}:${m.http.port}`, `${members[i]!.id} lists ${m.id}'s HTTP address`);
      }
    }
    const leaderView = views[members.indexOf(leader)]!;
    assert.equal(leaderView.body.role, 'leader', 'the leader says it is');
  });

  it('writes to the leader and to followers; every member then reads them (linearizable)', async () => {
    const writes: [KvMember, string, unknown][] = [
      [leader, 'via-leader', 'L'],
      [followers[0]!, 'via-follower-1', { nested: [1, 2, 3] }],
      [followers[1]!, 'via-follower-2', 42],
      [followers[0]!, 'a key/with spaces & slashes', 'encoded'],
    ];
    for (const [m, key, value] of writes) {
      const r = await http(m, 'PUT', `/kv/${encodeURIComponent(key)}`, json({ value }));
      assert.equal(r.status, 200, `PUT ${key} on ${m.id}: ${json(r.body)}`);
      assert.equal(r.body.kv.key, key, 'the answer names the key');
      assert.deepEqual(r.body.kv.value, value, 'the answer has the value');
      assert.equal(r.body.kv.version, 1, 'a new key');
      // Acknowledged by one member, visible at once on every other: reads go through ReadIndex.
      for (const reader of members) {
        const g = await http(reader, 'GET', `/kv/${encodeURIComponent(key)}`);
        assert.equal(g.status, 200, `GET ${key} on ${reader.id} after the write on ${m.id}`);
        assert.deepEqual(g.body.value, value, `${reader.id} reads what ${m.id} acknowledged`);
        assert.ok(g.body.revision >= r.body.revision, `${reader.id}'s revision ${g.body.revision} ≥ the write's ${r.body.revision}`);
      }
    }
    const again = await http(followers[1]!, 'PUT', '/kv/via-leader', json({ value: 'L2' }));
    assert.equal(again.status, 200, 'an overwrite');
    assert.equal(again.body.kv.version, 2, 'the version counts writes');
    assert.equal(again.body.prev.value, 'L', 'the previous value is returned');
    assert.ok(again.body.kv.modRevision > again.body.kv.createRevision, 'modRevision moved, createRevision did not');
  });

  it('compare-and-swap on a value and on a revision', async () => {
    const f = followers[0]!;
    const create = await http(f, 'POST', '/kv/lock/cas', json({ expected: null, value: 'owner-1' }));
    assert.equal(create.status, 200, `create-if-absent: ${json(create.body)}`);
    assert.equal(create.body.succeeded, true, 'the key was absent');

    const lost = await http(leader, 'POST', '/kv/lock/cas', json({ expected: null, value: 'owner-2' }));
    assert.equal(lost.status, 409, 'create-if-absent on a present key fails');
    assert.equal(lost.body.error.code, 'compare_failed', 'a typed error');
    assert.equal(lost.body.error.kv.value, 'owner-1', 'the failure shows the current value');

    const swap = await http(leader, 'POST', '/kv/lock/cas', json({ expected: 'owner-1', value: 'owner-3' }));
    assert.equal(swap.status, 200, 'value matches: swapped');
    const rev = swap.body.kv.modRevision as number;

    const stale = await http(f, 'POST', '/kv/lock/cas', json({ expectedRevision: rev - 1, value: 'x' }));
    assert.equal(stale.status, 409, 'a stale revision fails');
    const byRev = await http(f, 'POST', '/kv/lock/cas', json({ expectedRevision: rev, value: 'owner-4' }));
    assert.equal(byRev.status, 200, `the current revision succeeds: ${json(byRev.body)}`);
    const absentByRev = await http(f, 'POST', '/kv/new-by-rev/cas', json({ expectedRevision: 0, value: 'v' }));
    assert.equal(absentByRev.status, 200, 'revision 0 means absent');

    const g = await http(followers[1]!, 'GET', '/kv/lock');
    assert.equal(g.body.value, 'owner-4', 'only the successful swaps took effect');
    assert.equal(g.body.version, 3, 'three successful writes to the key');
  });

  it('delete: the key is gone everywhere; deleting it again deletes nothing', async () => {
    assert.equal((await http(leader, 'PUT', '/kv/doomed', json({ value: 1 }))).status, 200, 'created');
    const d = await http(followers[1]!, 'DELETE', '/kv/doomed');
    assert.equal(d.status, 200, 'deleted');
    assert.equal(d.body.deleted, true, 'it existed');
    assert.equal(d.body.prev.value, 1, 'the deleted value is returned');
    for (const m of members) {
      const g = await http(m, 'GET', '/kv/doomed');
      assert.equal(g.status, 404, `gone on ${m.id}`);
      assert.equal(g.body.error.code, 'key_not_found', 'a typed error');
    }
    const again = await http(leader, 'DELETE', '/kv/doomed');
    assert.equal(again.status, 200, 'deleting a missing key is not an error');
    assert.equal(again.body.deleted, false, 'nothing was deleted');
  });

  it('bad requests get 4xx JSON errors', async () => {
    const m = followers[0]!;
    const cases: [string, string, string | Buffer | undefined, number, string][] = [
      ['PUT', '/kv/k', '{"value": ', 400, 'invalid_json'],
      ['PUT', '/kv/k', json({ val: 1 }), 400, 'invalid_body'],
      ['PUT', '/kv/k', json([1]), 400, 'invalid_body'],
      ['PUT', '/kv/k', '', 400, 'invalid_json'],
      ['PUT', '/kv/k', json({ value: 'x'.repeat(5000) }), 413, 'body_too_large'],
      ['PUT', `/kv/${'k'.repeat(2000)}`, json({ value: 1 }), 400, 'invalid_key'],
      ['PUT', '/kv/%E0%A4%A', json({ value: 1 }), 400, 'invalid_key'],
      ['POST', '/kv/k/cas', json({ value: 1 }), 400, 'invalid_body'],
      ['POST', '/kv/k/cas', json({ expected: 1, expectedRevision: 2, value: 1 }), 400, 'invalid_body'],
      ['POST', '/kv/k/cas', json({ expectedRevision: -1, value: 1 }), 400, 'invalid_body'],
      ['POST', '/kv/k', json({ value: 1 }), 405, 'method_not_allowed'],
      ['GET', '/nowhere', undefined, 404, 'not_found'],
      ['GET', '/kv', undefined, 404, 'not_found'],
      ['POST', '/cluster/members', json({ id: 'n4' }), 400, 'invalid_body'],
      ['POST', '/cluster/members', json({ id: 'n4', address: 'nope' }), 400, 'invalid_body'],
      ['POST', '/cluster/members', json({ id: 'n4', address: '127.0.0.1:1', role: 'king' }), 400, 'invalid_body'],
      ['POST', '/cluster/members', json({ id: 'n 4', address: '127.0.0.1:1' }), 400, 'invalid_body'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const r = await http(m, method, path, body);
      const label = `${method} ${path.slice(0, 40)} ${typeof body === 'string' ? body.slice(0, 40) : ''}`;
      assert.equal(r.status, status, `${label}: ${json(r.body)}`);
      assert.equal(r.body.error?.code, code, `${label}: the error code`);
      assert.equal(typeof r.body.error.message, 'string', `${label}: a message`);
    }
    const wrong = await http(m, 'PATCH', '/kv/k');
    assert.equal(wrong.headers.allow, 'GET, PUT, DELETE', 'a 405 says what is allowed');
    // The connection survived the oversized body and the store is unchanged by all of the above.
    const g = await http(m, 'GET', '/kv/k');
    assert.equal(g.status, 404, 'no bad request wrote anything');
  });

  it('membership changes on a follower answer 503 with the leader hint', async () => {
    const r = await http(followers[0]!, 'DELETE', '/cluster/members/n9');
    assert.equal(r.status, 503, 'only the leader changes membership');
    assert.equal(r.body.error.code, 'not_leader', 'a typed error');
    assert.equal(r.body.error.leader, leader.id, 'the hint names the leader');
    assert.equal(r.body.error.leaderHttp, `${leader.http.host}:${leader.http.port}`, "the hint has the leader's HTTP address");
    const unknown = await http(leader, 'DELETE', '/cluster/members/n9');
    assert.equal(unknown.status, 404, 'removing a member that is not there');
  });

  it('POST /cluster/members adds a fourth member, which catches up and serves linearizable reads', async () => {
    const n4 = new KvMember({
      id: 'n4',
      peers: {},
      voters: [], // joins: waits to be added instead of bootstrapping a cluster of its own
      raftListen: { host: HOST, port: 0 },
      httpListen: { host: HOST, port: 0 },
      dataDir: join(dir, 'n4'),
      secret: 'kv-test-secret',
      tickMs: 20,
      snapshotEvery: 8,
    });
    members.push(n4); // stopped by after() whatever happens here
    let refreshed = 0;
    n4.node.on('refresh', () => { refreshed++; });
    await n4.start();
    // What `--peers` gives a joining member on the command line: the current members' Raft addresses.
    for (const m of members) if (m !== n4) n4.transport.addPeer(m.id, m.raft);
    const before = await http(followers[0]!, 'PUT', '/kv/before-n4', json({ value: 'old' }));
    assert.equal(before.status, 200, 'a write before the join');

    const add = await http(leader, 'POST', '/cluster/members', json({ id: 'n4', address: `${n4.raft.host}:${n4.raft.port}`, role: 'voter' }));
    assert.equal(add.status, 200, `added: ${json(add.body)}`);
    const g = await waitFor('n4 to read the earlier write', async () => {
      const r = await http(n4, 'GET', '/kv/before-n4');
      return r.status === 200 ? r : undefined;
    });
    assert.equal(g.body.value, 'old', 'n4 caught up');
    assert.ok(refreshed > 0, 'n4 caught up through a snapshot: the leader had compacted its log');
    const views = await Promise.all(members.map((m) => http(m, 'GET', '/cluster')));
    for (const v of views) {
      const n4View = v.body.members.find((m: { id: string }) => m.id === 'n4');
      assert.ok(n4View, `${v.body.id} lists n4`);
      assert.equal(n4View.role, 'voter', `${v.body.id} has n4 as a voter`);
      assert.equal(n4View.address, `${n4.raft.host}:${n4.raft.port}`, `${v.body.id} knows n4's address (replicated)`);
    }
    // Writes through the new member are forwarded like any follower's.
    const w = await http(n4, 'PUT', '/kv/via-n4', json({ value: 'new' }));
    assert.equal(w.status, 200, `a write via n4: ${json(w.body)}`);
    assert.equal((await http(followers[1]!, 'GET', '/kv/via-n4')).body.value, 'new', 'visible elsewhere');
  });

  it('after the leader stops, writes continue, every acknowledged write is still readable, and the old leader restarts from disk and catches up', async () => {
    const acked = new Map<string, number>();
    const writer = followers[0]!;
    for (let i = 0; i < 10; i++) {
      const r = await writeRetrying(writer, 'PUT', `/kv/before-${i}`, json({ value: i }));
      assert.equal(r.status, 200, `before-${i}`);
      acked.set(`before-${i}`, i);
    }
    // Writes in flight while the leader goes away: each either fails (503) or is acknowledged.
    const inFlight = Array.from({ length: 10 }, (_, i) => http(writer, 'PUT', `/kv/during-${i}`, json({ value: i }))
      .then((r) => { if (r.status === 200) acked.set(`during-${i}`, i); }, () => {}));
    const old = leader;
    const oldRaft = old.raft;
    await old.stop();
    await Promise.all(inFlight);
    const survivors = members.filter((m) => m !== old);
    const next = await agreedLeader(survivors);
    assert.notEqual(next.id, old.id, 'a new leader among the survivors');
    for (let i = 0; i < 10; i++) {
      const via = survivors[i % 2]!;
      const r = await writeRetrying(via, 'PUT', `/kv/after-${i}`, json({ value: i }));
      assert.equal(r.status, 200, `after-${i} via ${via.id}: ${json(r.body)}`);
      acked.set(`after-${i}`, i);
    }
    for (const m of survivors) {
      for (const [key, value] of acked) {
        const g = await http(m, 'GET', `/kv/${key}`);
        assert.equal(g.status, 200, `${key} acknowledged, readable on ${m.id}`);
        assert.equal(g.body.value, value, `${key}'s value on ${m.id}`);
      }
    }

    // The old leader restarts from its directory (FileStorage) on its old Raft port and catches up.
    const restarted = new KvMember({
      id: old.id,
      peers: {},
      voters: IDS,
      raftListen: { host: HOST, port: oldRaft.port },
      httpListen: { host: HOST, port: 0 },
      dataDir: join(dir, old.id),
      secret: 'kv-test-secret',
      tickMs: 20,
      snapshotEvery: 8,
    });
    members[members.indexOf(old)] = restarted;
    await restarted.start();
    for (const m of survivors) restarted.transport.addPeer(m.id, m.raft);
    await waitFor(`${old.id} to catch up`, async () => {
      const r = await http(restarted, 'GET', '/kv/after-9');
      return r.status === 200 ? r : undefined;
    });
    for (const [key, value] of acked) {
      const g = await http(restarted, 'GET', `/kv/${key}`);
      assert.equal(g.status, 200, `${key} readable on the restarted ${old.id}`);
      assert.equal(g.body.value, value, `${key}'s value on the restarted ${old.id}`);
    }
    // It listens for HTTP on a new port now, and says so: the others' view follows.
    await waitFor(`${survivors[0]!.id} to learn ${old.id}'s new HTTP address`, async () => {
      const v = await http(survivors[0]!, 'GET', '/cluster');
      const listed = v.body.members.find((m: { id: string }) => m.id === old.id);
      return listed?.http === `${restarted.http.host}:${restarted.http.port}` ? true : undefined;
    });
  });
});
