import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Entry } from '@raftrtc/raft';
import { KvCommandError, KvStore, type KvCommand } from '../src/store.js';

let index = 0;
const entry = (): Entry => ({ index: ++index, term: 1, type: 'normal', data: null }) as Entry;

describe('KvStore', () => {
  it('put, cas and delete keep revisions, versions and create revisions', () => {
    const s = new KvStore();
    const a = s.apply({ op: 'put', key: 'a', value: 1 }, entry());
    assert.equal(a.op === 'put' && a.kv.modRevision, 1, 'the first write is revision 1');
    const b = s.apply({ op: 'put', key: 'a', value: 2 }, entry());
    assert.ok(b.op === 'put' && b.kv.version === 2 && b.kv.createRevision === 1 && b.kv.modRevision === 2, `an overwrite: ${JSON.stringify(b)}`);
    const failed = s.apply({ op: 'cas', key: 'a', expected: { value: 1 }, value: 3 }, entry());
    assert.ok(failed.op === 'cas' && !failed.succeeded && failed.revision === 2, 'a failed CAS takes no revision');
    const ok = s.apply({ op: 'cas', key: 'a', expected: { revision: 2 }, value: 3 }, entry());
    assert.ok(ok.op === 'cas' && ok.succeeded && ok.revision === 3, 'a CAS on the current revision');
    const deep = s.apply({ op: 'cas', key: 'o', expected: { value: null }, value: { x: [1] } }, entry());
    assert.ok(deep.op === 'cas' && deep.succeeded, 'null expects absence');
    const deepOk = s.apply({ op: 'cas', key: 'o', expected: { value: { x: [1] } }, value: 0 }, entry());
    assert.ok(deepOk.op === 'cas' && deepOk.succeeded, 'values compare structurally');
    const missing = s.apply({ op: 'delete', key: 'nope' }, entry());
    assert.ok(missing.op === 'delete' && !missing.deleted && missing.revision === 5, 'deleting nothing takes no revision');
    const del = s.apply({ op: 'delete', key: 'a' }, entry());
    assert.ok(del.op === 'delete' && del.deleted && del.revision === 6, 'a delete takes a revision');
    const re = s.apply({ op: 'put', key: 'a', value: 'again' }, entry());
    assert.ok(re.op === 'put' && re.kv.createRevision === 7 && re.kv.version === 1, 'a recreated key starts over');
  });

  it('snapshot and restore reproduce the state, addresses included, and report the addresses', () => {
    const seen: Record<string, string>[] = [];
    const s = new KvStore((a) => seen.push({ ...a }));
    const cmds: KvCommand[] = [
      { op: 'put', key: 'k1', value: 'v1' },
      { op: 'member-address', id: 'n4', address: '127.0.0.1:7004' },
      { op: 'member-http', id: 'n4', http: '127.0.0.1:8004' },
      { op: 'put', key: 'k2', value: [1, 2] },
      { op: 'delete', key: 'k1' },
    ];
    for (const c of cmds) s.apply(c, entry());
    assert.deepEqual(seen.at(-1), { n4: '127.0.0.1:7004' }, 'the address change was reported');
    const snap = structuredClone(s.snapshot());
    const t = new KvStore((a) => seen.push({ ...a }));
    t.restore(snap);
    assert.deepEqual(t.query({ op: 'get', key: 'k2' }), s.query({ op: 'get', key: 'k2' }), 'k2 restored');
    assert.deepEqual(t.query({ op: 'get', key: 'k1' }), s.query({ op: 'get', key: 'k1' }), 'k1 stays deleted');
    assert.deepEqual(t.query({ op: 'members' }), s.query({ op: 'members' }), 'the addresses restored');
    assert.equal(t.currentRevision, s.currentRevision, 'the revision restored');
    assert.deepEqual(seen.at(-1), { n4: '127.0.0.1:7004' }, 'a restore reports the addresses too');
    s.apply({ op: 'member-forget', id: 'n4' }, entry());
    assert.deepEqual(s.query({ op: 'members' }), { op: 'members', addresses: {}, http: {} }, 'forgotten');
  });

  it('refuses an unknown command with a typed error', () => {
    assert.throws(() => new KvStore().apply({ op: 'rename' } as unknown as KvCommand, entry()), KvCommandError, 'unknown op');
  });
  it('range scans keys in UTF-8 byte order (not UTF-16), with limit, "\\0" to the end, and survives restore', () => {
    const s = new KvStore();
    const b64 = (k: string | Buffer): string => Buffer.from(k).toString('base64');
    // U+FF61 sorts after U+1F600 in UTF-16 (surrogates are 0xD83D...) but before it in UTF-8 (EF vs F0).
    for (const key of ['b', '\u{1F600}', 'a', '\uFF61', 'ab']) s.apply({ op: 'put', key, value: key }, entry());
    const keys = (q: { key: string; rangeEnd?: string; limit?: number }): string[] => {
      const r = s.query({ op: 'range', ...q });
      assert.ok(r.op === 'range', 'a range result');
      return r.kvs.map((kv) => kv.key);
    };
    assert.deepEqual(keys({ key: b64('\0'), rangeEnd: b64('\0') }), ['a', 'ab', 'b', '\uFF61', '\u{1F600}']);
    assert.deepEqual(keys({ key: b64('a'), rangeEnd: b64('b') }), ['a', 'ab'], 'range_end is exclusive');
    assert.deepEqual(keys({ key: b64('ab'), rangeEnd: b64('\0') }), ['ab', 'b', '\uFF61', '\u{1F600}']);
    assert.deepEqual(keys({ key: b64('a') }), ['a'], 'no range_end: the key alone');
    assert.deepEqual(keys({ key: b64(Buffer.from([0xff])) }), [], 'bytes that are not UTF-8 name no key');
    const limited = s.query({ op: 'range', key: b64('\0'), rangeEnd: b64('\0'), limit: 2 });
    assert.ok(limited.op === 'range' && limited.count === 5 && limited.kvs.length === 2, `count is the whole range: ${JSON.stringify(limited)}`);
    const copy = new KvStore();
    copy.restore(s.snapshot());
    copy.apply({ op: 'put', key: 'aa', value: 1 }, entry());
    const r = copy.query({ op: 'range', key: b64('a'), rangeEnd: b64('b') });
    assert.ok(r.op === 'range', 'a range result');
    assert.deepEqual(r.kvs.map((kv) => kv.key), ['a', 'aa', 'ab'], 'a key added after restore is in order');
  });

  it('delete-range removes the range at one revision; an empty range takes none', () => {
    const s = new KvStore();
    const b64 = (k: string): string => Buffer.from(k).toString('base64');
    for (const key of ['p/1', 'p/2', 'q']) s.apply({ op: 'put', key, value: 1 }, entry());
    const d = s.apply({ op: 'delete-range', key: b64('p/'), rangeEnd: b64('p0') }, entry());
    assert.deepEqual(d, { op: 'delete-range', revision: 4, deleted: 2 });
    const none = s.apply({ op: 'delete-range', key: b64('p/') , rangeEnd: b64('p0') }, entry());
    assert.deepEqual(none, { op: 'delete-range', revision: 4, deleted: 0 });
    const left = s.query({ op: 'range', key: b64('\0'), rangeEnd: b64('\0') });
    assert.ok(left.op === 'range' && left.kvs.map((kv) => kv.key).join() === 'q', `only q is left: ${JSON.stringify(left)}`);
  });
});
