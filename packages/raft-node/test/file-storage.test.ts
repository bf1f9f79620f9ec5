import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { StorageState } from '@raftrtc/raft';
import { runStorageConformance } from '../../raft/test/conformance/storage.js';
import { FileStorage, StorageCorruptionError, StorageFailedError, StorageLockedError, type FileStorageOptions } from '../src/file-storage.js';
import { crc32 } from '../src/crc32.js';
import { crashOp, entry, Model, snap } from './fixtures/model.js';

const tempDir = (): Promise<string> => mkdtemp(join(tmpdir(), 'raftrtc-fs-'));

/** Polls `cond` every few ms until it holds, failing with `what` after 30 s. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (const deadline = Date.now() + 30_000; !cond(); await new Promise((r) => setTimeout(r, 5))) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
  }
}

/** A copy of a live directory, as a crash would leave it (minus the lock, which belongs to the live handle). */
async function copyOf(dir: string): Promise<string> {
  const to = await tempDir();
  await cp(dir, to, { recursive: true, filter: (src) => !src.endsWith('LOCK') });
  return to;
}

/** The prototype every FileHandle shares, so a test can wrap its `sync` (FileStorage opens its own handles). */
async function fileHandlePrototype(dir: string): Promise<{ sync: () => Promise<void> }> {
  const { open } = await import('node:fs/promises');
  const probe = await open(join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
  await probe.close();
  await rm(join(dir, 'probe'));
  return proto;
}

for (const [label, options] of [['default segments', {}], ['64-byte segments', { segmentBytes: 64 }]] as [string, FileStorageOptions][]) {
  runStorageConformance(`FileStorage (${label})`, async () => {
    const dir = await tempDir();
    return {
      storage: new FileStorage(dir, options),
      reopen: async () => new FileStorage(dir, options),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  });
}

/** Opens, loads and returns the state in `dir`, closing again. */
async function loadDir(dir: string, options: FileStorageOptions = {}): Promise<StorageState> {
  const s = new FileStorage(dir, options);
  try {
    return await s.load();
  } finally {
    await s.close();
  }
}

const segments = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((n) => n.endsWith('.seg')).sort();

describe('FileStorage', () => {
  it('computes the standard CRC-32', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926, 'the CRC-32 check value');
    assert.equal(crc32(Buffer.alloc(0)), 0, 'empty input');
  });

  it('reopening after a long random history of saves, truncations, compactions and installs reproduces the state', async () => {
    const dir = await tempDir();
    try {
      const opts = { segmentBytes: 512 };
      const model = new Model();
      let s = new FileStorage(dir, opts);
      assert.deepEqual(await s.load(), model.state());
      for (let k = 1; k <= 400; k++) {
        const op = crashOp(k, model);
        if (op.kind === 'save') { await s.save(op.update); model.save(op.update); }
        else { await s.compact(op.snapshot); model.compact(op.snapshot); }
        if (k % 37 === 0) {
          await s.close();
          s = new FileStorage(dir, opts);
          assert.deepEqual(await s.load(), model.state(), `state after step ${k}`);
        }
      }
      await s.close();
      assert.deepEqual(await loadDir(dir, opts), model.state(), 'final state');
      // Compaction kept the directory bounded: only segments holding live entries remain.
      assert.ok((await segments(dir)).length < 20, `segments were deleted: ${(await segments(dir)).length} left`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rolls segments at the size limit and deletes those a compaction wholly covers', async () => {
    const dir = await tempDir();
    try {
      const s = new FileStorage(dir, { segmentBytes: 200 });
      await s.load();
      for (let i = 1; i <= 40; i++) {
        await s.save({ hardState: { term: 1, vote: 'a', commit: i - 1 }, snapshot: null, entries: [entry(i, 1, 'x'.repeat(40))] });
      }
      const before = await segments(dir);
      assert.ok(before.length >= 10, `rolled into many segments: ${before.length}`);
      assert.match(before[0], /^log-0{15}1-0{15}1\.seg$/, 'first segment named by seq and first index');
      for (const n of before) {
        // A segment is only rolled after it passed the limit, so none but the last is much past it.
        assert.ok((await stat(join(dir, n))).size < 200 + 200, `${n} stays near the limit`);
      }
      await s.compact(snap(30, 1));
      const after = await segments(dir);
      assert.ok(after.length < before.length, `compaction deleted segments: ${before.length} -> ${after.length}`);
      assert.deepEqual(after, before.slice(before.length - after.length), 'the oldest segments went, in order');
      await s.save({ hardState: null, snapshot: null, entries: [entry(41, 1)] });
      await s.close();
      const st = await loadDir(dir);
      assert.deepEqual(st.entries.map((e) => e.index), Array.from({ length: 11 }, (_, i) => 31 + i), 'entries 31..41 remain');
      assert.deepEqual(st.hardState, { term: 1, vote: 'a', commit: 39 }, 'hard state survives deletion of old segments');
      // A snapshot installed by save() voids every older segment.
      const s2 = new FileStorage(dir, { segmentBytes: 200 });
      await s2.load();
      await s2.save({ hardState: { term: 2, vote: null, commit: 100 }, snapshot: snap(100, 2), entries: [] });
      assert.equal((await segments(dir)).length, 1, 'only the new segment is left');
      await s2.close();
      assert.deepEqual(await loadDir(dir), { hardState: { term: 2, vote: null, commit: 100 }, snapshot: snap(100, 2), entries: [] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('recovers from a torn last record cut at every byte offset, and keeps writing after it', async () => {
    const src = await tempDir();
    const work = await tempDir();
    try {
      const model = new Model();
      const s = new FileStorage(src);
      await s.load();
      for (let k = 1; k <= 30; k++) {
        const op = crashOp(k, model);
        if (op.kind === 'save') { await s.save(op.update); model.save(op.update); } else { await s.compact(op.snapshot); model.compact(op.snapshot); }
      }
      const previous = model.state();
      const [seg] = (await segments(src)).slice(-1);
      const start = (await stat(join(src, seg))).size;
      const lastSave = { hardState: { term: 9, vote: 'c', commit: 20 }, snapshot: null, entries: [entry(model.lastIndex + 1, 9, { big: 'y'.repeat(100) })] };
      await s.save(lastSave);
      await s.close();
      const end = (await stat(join(src, seg))).size;
      assert.ok(end > start + 100, 'the last record is in the same segment');

      for (let cut = start; cut < end; cut++) {
        await rm(work, { recursive: true, force: true });
        await cp(src, work, { recursive: true });
        await truncate(join(work, seg), cut);
        assert.deepEqual(await loadDir(work), previous, `state after cutting at ${cut}`);
        assert.equal((await stat(join(work, seg))).size, start, `the torn tail was cut away at ${cut}`);
      }

      // A whole-length last record whose bytes are damaged (a torn sector) is a torn tail as well.
      await rm(work, { recursive: true, force: true });
      await cp(src, work, { recursive: true });
      const buf = await readFile(join(work, seg));
      buf[end - 5] ^= 0xff;
      await writeFile(join(work, seg), buf);
      const s2 = new FileStorage(work);
      assert.deepEqual(await s2.load(), previous, 'CRC-failing last record dropped');
      await s2.save(lastSave);
      await s2.close();
      model.save(lastSave);
      assert.deepEqual(await loadDir(work), model.state(), 'writes continue after recovery');
    } finally {
      await rm(src, { recursive: true, force: true });
      await rm(work, { recursive: true, force: true });
    }
  });

  it('refuses a corrupted record before the tail with StorageCorruptionError naming file and offset', async () => {
    const src = await tempDir();
    const work = await tempDir();
    try {
      const s = new FileStorage(src, { segmentBytes: 300 });
      await s.load();
      for (let i = 1; i <= 20; i++) await s.save({ hardState: { term: 1, vote: 'a', commit: i }, snapshot: null, entries: [entry(i, 1, 'z'.repeat(30))] });
      await s.close();
      const segs = await segments(src);
      assert.ok(segs.length >= 3, 'several segments');
      const cases: [string, number][] = [
        [segs[0], 20], // a middle segment's payload
        [segs[1], 2], // a length byte
        [segs[segs.length - 1], 12], // the first record of the last segment, with records after it
      ];
      for (const [seg, at] of cases) {
        await rm(work, { recursive: true, force: true });
        await cp(src, work, { recursive: true });
        const buf = await readFile(join(work, seg));
        buf[at] ^= 0x41;
        await writeFile(join(work, seg), buf);
        await assert.rejects(loadDir(work), (err: unknown) => {
          assert.ok(err instanceof StorageCorruptionError, `a StorageCorruptionError for ${seg}@${at}: ${String(err)}`);
          assert.equal(err.file, join(work, seg), 'names the file');
          assert.equal(err.offset, 0, 'names the offset of the damaged record');
          assert.match(err.message, new RegExp(`${seg}.*byte 0`), 'the message says where');
          return true;
        });
        // A refused directory is not left locked.
        await assert.rejects(loadDir(work), StorageCorruptionError);
      }
      // A damaged snapshot file is refused too.
      const s2 = new FileStorage(work);
      await rm(work, { recursive: true, force: true });
      await cp(src, work, { recursive: true });
      await s2.load();
      await s2.compact(snap(5, 1));
      await s2.close();
      const sb = await readFile(join(work, 'snapshot.snap'));
      sb[sb.length - 3] ^= 1;
      await writeFile(join(work, 'snapshot.snap'), sb);
      await assert.rejects(loadDir(work), StorageCorruptionError);
    } finally {
      await rm(src, { recursive: true, force: true });
      await rm(work, { recursive: true, force: true });
    }
  });

  it('a snapshot install is atomic at the rename: a crash before its log write or after a half-written temp file', async () => {
    const before = await tempDir();
    const after = await tempDir();
    const mixed = await tempDir();
    try {
      const model = new Model();
      const s = new FileStorage(before, { segmentBytes: 300 });
      await s.load();
      for (let i = 1; i <= 12; i++) {
        const u = { hardState: { term: 1, vote: 'a', commit: i - 1 }, snapshot: null, entries: [entry(i, 1, 'q'.repeat(30))] };
        await s.save(u);
        model.save(u);
      }
      await s.close();
      const prior = model.state();
      await cp(before, after, { recursive: true });
      const install = { hardState: { term: 3, vote: null, commit: 50 }, snapshot: snap(50, 3), entries: [entry(51, 3), entry(52, 3)] };
      const s2 = new FileStorage(after, { segmentBytes: 300 });
      await s2.load();
      await s2.save(install);
      await s2.close();
      model.save(install);
      // The snapshot file landed, the log write did not: the old segments and the new snapshot file.
      await cp(before, mixed, { recursive: true });
      await cp(join(after, 'snapshot.snap'), join(mixed, 'snapshot.snap'));
      assert.deepEqual(await loadDir(mixed), model.state(), 'the whole install is there once its snapshot file is');
      // A temp file that never got renamed leaves the previous state, and is cleaned up.
      await writeFile(join(before, 'snapshot.snap.tmp'), 'half a snap');
      assert.deepEqual(await loadDir(before), prior, 'an unrenamed snapshot is ignored');
      assert.ok(!(await readdir(before)).includes('snapshot.snap.tmp'), 'the temp file was removed');
    } finally {
      for (const d of [before, after, mixed]) await rm(d, { recursive: true, force: true });
    }
  });

  it('refuses a second FileStorage on one directory until the first closes', async () => {
    const dir = await tempDir();
    try {
      const a = new FileStorage(dir);
      await a.load();
      await assert.rejects(new FileStorage(dir).load(), StorageLockedError);
      await a.close();
      const b = new FileStorage(dir);
      await b.load();
      await b.close();
      // A lock left by a dead process is taken over.
      await writeFile(join(dir, 'LOCK'), '999999999');
      await loadDir(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('survives repeated SIGKILL at random moments with every acknowledged step intact, and resumes each time', { timeout: 120_000 }, async () => {
    const child = join(import.meta.dirname, 'fixtures', 'crash-child.ts');
    const dir = await tempDir();
    try {
      // The parent runs the same deterministic steps on the model, so it knows every state the child may leave.
      const model = new Model();
      let modelStep = 0;
      const stateAfter = (k: number): StorageState => {
        assert.ok(k >= modelStep, `the model only moves forward (${modelStep} -> ${k})`);
        for (; modelStep < k;) {
          const op = crashOp(++modelStep, model);
          if (op.kind === 'save') model.save(op.update); else model.compact(op.snapshot);
        }
        return model.state();
      };
      let durable = 0; // the step the directory's state is known to be after
      for (let run = 0; run < 5; run++) {
        const proc = spawn(process.execPath, ['--import', 'tsx', child, dir, '2048', String(durable + 1)], { stdio: ['ignore', 'pipe', 'inherit'] });
        let acked = 0;
        let out = '';
        let exitCode: number | null = null;
        const exited = new Promise<void>((res) => proc.on('exit', (code) => { exitCode = code; res(); }));
        // The random delay starts at the first acknowledgement, so a slow start-up or a slow disk cannot make
        // the kill land before anything was written.
        const started = new Promise<void>((res) => {
          proc.stdout.on('data', (d: Buffer) => {
            out += d.toString();
            const lines = out.split('\n');
            out = lines.pop()!;
            for (const l of lines) if (l.startsWith('ack ')) { acked = Number(l.slice(4)); res(); }
          });
        });
        await Promise.race([started, exited]);
        await new Promise((r) => setTimeout(r, Math.random() * 500));
        proc.kill('SIGKILL');
        await exited;
        assert.equal(exitCode, null, `run ${run}: the child ran until killed (it checks it resumed from the state after step ${durable})`);
        assert.ok(acked > durable, `run ${run}: the child made progress before the kill (acked ${acked})`);

        const state = await loadDir(dir);
        // Steps are serial, so the store holds the state after the last acknowledged step, or after the one
        // step that had been written but not yet reported.
        const options = [[acked, stateAfter(acked)], [acked + 1, stateAfter(acked + 1)]] as const;
        const candidates = options.filter(([, st]) => isDeepStrictEqual(state, st)).map(([k]) => k);
        assert.ok(candidates.length > 0, `run ${run}: the recovered state is the state after step ${acked} or ${acked + 1} (got last index ${state.entries.at(-1)?.index})`);
        durable = candidates[0];
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('FileStorage group commit', () => {
  it('fsyncs the segment once per save that changes entries, term or vote, plus the directory only when a segment is created', async () => {
    const dir = await tempDir();
    // Count syncs on every FileHandle by wrapping the shared prototype's method for the test's duration.
    const proto = await fileHandlePrototype(dir);
    const original = proto.sync;
    let syncs = 0;
    proto.sync = function (this: unknown) { syncs++; return original.call(this); };
    try {
      const s = new FileStorage(dir);
      await s.load();
      syncs = 0;
      await s.save({ hardState: { term: 1, vote: 'a', commit: 0 }, snapshot: null, entries: [entry(1, 1), entry(2, 1)] });
      assert.equal(syncs, 2, 'the first save creates a segment: file + directory');
      syncs = 0;
      for (let i = 3; i <= 12; i++) {
        await s.save({ hardState: { term: 1, vote: 'a', commit: i - 1 }, snapshot: null, entries: [entry(i, 1)] });
      }
      assert.equal(syncs, 10, 'one fsync per save');
      syncs = 0;
      await s.save({ hardState: null, snapshot: null, entries: [] });
      assert.equal(syncs, 0, 'an empty save writes nothing');
      await s.save({ hardState: { term: 1, vote: 'a', commit: 12 }, snapshot: null, entries: [] });
      assert.equal(syncs, 0, 'a new commit index alone is not written at once');
      const copy = await copyOf(dir);
      const crashed = await loadDir(copy);
      await rm(copy, { recursive: true, force: true });
      assert.equal(crashed.hardState?.commit, 11, 'so a crash now finds the previous commit index (the node relearns it)');
      await s.save({ hardState: { term: 2, vote: null, commit: 12 }, snapshot: null, entries: [] });
      assert.equal(syncs, 1, 'a new term is fsynced');
      await s.save({ hardState: { term: 2, vote: 'b', commit: 12 }, snapshot: null, entries: [] });
      assert.equal(syncs, 2, 'a new vote is fsynced');
      await s.close();
      const back = new FileStorage(dir);
      const st = await back.load();
      assert.deepEqual(st.hardState, { term: 2, vote: 'b', commit: 12 }, 'every record reads back after a clean close');
      await back.save({ hardState: { term: 2, vote: 'b', commit: 13 }, snapshot: null, entries: [] });
      await back.close();
      assert.equal((await loadDir(dir)).hardState?.commit, 13, 'close() writes a commit index that was not written yet');
    } finally {
      proto.sync = original;
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('FileStorage after an I/O failure', () => {
  it('refuses further writes once an fsync failed, and a reopen recovers', async () => {
    const dir = await tempDir();
    const proto = await fileHandlePrototype(dir);
    const original = proto.sync;
    try {
      const s = new FileStorage(dir);
      await s.load();
      await s.save({ hardState: { term: 1, vote: 'a', commit: 0 }, snapshot: null, entries: [entry(1, 1)] });
      proto.sync = () => Promise.reject(Object.assign(new Error('EIO: simulated'), { code: 'EIO' }));
      await assert.rejects(s.save({ hardState: null, snapshot: null, entries: [entry(2, 1)] }), /EIO/);
      proto.sync = original;
      await assert.rejects(s.save({ hardState: null, snapshot: null, entries: [entry(3, 1)] }), StorageFailedError);
      await s.close();
      const st = await loadDir(dir);
      assert.deepEqual(st.entries.map((e) => e.index).slice(0, 1), [1], 'the acknowledged entry is there');
      assert.ok(st.entries.length <= 2, 'nothing after the failed save');
    } finally {
      proto.sync = original;
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('FileStorage compaction beside saves', () => {
  const bigState = (n: number) => ({ rows: Array.from({ length: n }, (_, i) => `row-${i}-${'x'.repeat(200)}`) });
  const entries = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, 1));

  it('saves go on while a large snapshot is written, and both read back', { timeout: 60_000 }, async () => {
    const dir = await tempDir();
    // Hold the snapshot file's fsync until the saves are done: they must not queue behind it. The handle's
    // file is found through /proc (FileStorage opens its own handles).
    const proto = await fileHandlePrototype(dir);
    const original = proto.sync;
    let openGate: () => void = () => {};
    const gate = new Promise<void>((resolve) => { openGate = resolve; });
    let held = false;
    proto.sync = async function (this: { fd: number }) {
      if (readlinkSync(`/proc/self/fd/${this.fd}`).endsWith('.compact.tmp')) { held = true; await gate; }
      return original.call(this);
    };
    try {
      const s = new FileStorage(dir);
      await s.load();
      await s.save({ hardState: { term: 1, vote: 'a', commit: 100 }, snapshot: null, entries: entries(1, 100) });
      let compacted = false;
      const compaction = s.compact(snap(100, 1, bigState(100_000))).then(() => { compacted = true; });
      for (let i = 101; i <= 110; i++) await s.save({ hardState: { term: 1, vote: 'a', commit: i }, snapshot: null, entries: [entry(i, 1)] });
      assert.equal(compacted, false, 'ten saves completed while the snapshot was still being written');
      await until(() => held, 'the snapshot write to reach its fsync');
      openGate();
      await compaction;
      await s.close();
      const st = await loadDir(dir);
      assert.equal(st.snapshot?.index, 100, 'the snapshot is installed');
      assert.deepEqual(st.entries.map((e) => e.index), entries(101, 110).map((e) => e.index), 'the entries after it survive');
      assert.equal((st.snapshot?.data as { rows: string[] }).rows.length, 100_000, 'the snapshot reads back whole');
      assert.ok(!(await readdir(dir)).some((n) => n.endsWith('.tmp')), 'no temporary file is left');
    } finally {
      openGate();
      proto.sync = original;
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a snapshot installed from the leader while a compaction is written wins', async () => {
    const dir = await tempDir();
    try {
      const s = new FileStorage(dir);
      await s.load();
      await s.save({ hardState: { term: 1, vote: 'a', commit: 20 }, snapshot: null, entries: entries(1, 20) });
      const compaction = s.compact(snap(20, 1, bigState(50_000)));
      await s.save({ hardState: { term: 2, vote: null, commit: 500 }, snapshot: snap(500, 2), entries: [entry(501, 2)] });
      await compaction;
      await s.save({ hardState: null, snapshot: null, entries: [entry(502, 2)] });
      await s.close();
      const st = await loadDir(dir);
      assert.equal(st.snapshot?.index, 500, "the leader's snapshot stays, whatever the order the two finished in");
      assert.deepEqual(st.entries.map((e) => e.index), [501, 502], 'only entries after it, none of the voided log');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('close() waits for a compaction under way', async () => {
    const dir = await tempDir();
    try {
      const s = new FileStorage(dir);
      await s.load();
      await s.save({ hardState: { term: 1, vote: 'a', commit: 10 }, snapshot: null, entries: entries(1, 12) });
      const compaction = s.compact(snap(10, 1, bigState(20_000)));
      await s.close();
      await compaction;
      const st = await loadDir(dir);
      assert.equal(st.snapshot?.index, 10, 'the snapshot landed before the close');
      assert.deepEqual(st.entries.map((e) => e.index), [11, 12], 'entries past it are kept');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('FileStorage sizes (what RaftNode compacts by)', () => {
  it('counts log bytes since the newest snapshot and that snapshot\'s size, also after a reopen', async () => {
    const dir = await tempDir();
    try {
      const s = new FileStorage(dir);
      await s.load();
      assert.deepEqual(s.sizes(), { logBytes: 0, snapshotBytes: 0 }, 'empty');
      await s.save({ hardState: { term: 1, vote: 'a', commit: 20 }, snapshot: null, entries: Array.from({ length: 20 }, (_, i) => entry(i + 1, 1)) });
      const afterLog = s.sizes();
      assert.ok(afterLog.logBytes > 0 && afterLog.snapshotBytes === 0, `log bytes counted: ${JSON.stringify(afterLog)}`);
      await s.compact(snap(20, 1, { big: 'x'.repeat(5_000) }));
      const afterSnap = s.sizes();
      const snapFile = (await stat(join(dir, 'snapshot.snap'))).size;
      assert.equal(afterSnap.snapshotBytes, snapFile, 'the snapshot file\'s size');
      assert.equal(afterSnap.logBytes, 0, 'nothing written since it');
      await s.save({ hardState: null, snapshot: null, entries: [entry(21, 1)] });
      const grown = s.sizes().logBytes;
      assert.ok(grown > 0, 'an append after the snapshot counts');
      await s.close();
      const back = new FileStorage(dir);
      await back.load();
      const reopened = back.sizes();
      assert.equal(reopened.snapshotBytes, snapFile, 'a reopen reads the snapshot size');
      assert.ok(reopened.logBytes >= grown, `a reopen counts the live log (${reopened.logBytes} ≥ ${grown})`);
      await back.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
