/**
 * RaftNode under a hostile in-memory network on fake time: messages dropped, delayed and reordered,
 * partitions, and nodes crashed (stopped) and restarted from their storage, while clients on every node
 * write and read a few keys. At the end, after healing: every write a client saw acknowledged was applied
 * exactly once on every node, no write was applied twice, all state machines agree, and the clients'
 * history of writes and linearizable reads passes the linearizability checker.
 *
 * `SEED=7 node --import tsx --test packages/raft/test/raft-node-chaos.test.ts` replays one seed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryNetwork } from '../src/node/memory-transport.js';
import { checkOperations, kvModel, type KvInput, type KvOutput, type Operation } from '../src/testing/index.js';
import { FakeTimers } from './helpers/fake-timers.js';
import { Cluster, IDS, TICK, put, settle, until } from './helpers/node-cluster.js';
import { prng } from './helpers/prng.js';

const SEEDS: number[] = process.env.SEED ? [Number(process.env.SEED)] : [1, 2, 3];
const STEPS = 400;

describe('RaftNode chaos (fake time, lossy network, crashes)', () => {
  for (const seed of SEEDS) {
    it(`keeps every acknowledged write and applies each once (seed ${seed})`, async () => {
      const rng = prng(seed);
      const clock = new FakeTimers();
      const net = new MemoryNetwork({ timers: clock, latencyMs: () => rng.int(3) * TICK });
      const c = new Cluster(clock, { snapshotEvery: 20, proposalTimeoutMs: 40 * TICK, random: rng.next }, [...IDS], net);
      await c.startAll();
      const acked = new Set<string>();
      const history: Operation<KvInput, KvOutput>[] = [];
      let vt = 0; // virtual time: only the order of calls and returns matters to the checker
      let proposed = 0;
      let failures = 0;
      const KEYS = ['x0', 'x1', 'x2', 'x3'];
      for (let step = 0; step < STEPS; step++) {
        const running = [...c.nodes.keys()];
        const down = IDS.filter((id) => !c.nodes.has(id));
        const roll = rng.next();
        if (roll < 0.4 && running.length > 0) {
          const n = c.nodes.get(rng.pick(running))!;
          const key = rng.pick(KEYS);
          const value = `v${proposed++}@${n.id}`;
          const op: Operation<KvInput, KvOutput> = { clientId: step, input: { op: 'put', key, value }, call: vt++, return: Infinity };
          history.push(op);
          n.propose(put(key, value)).then(() => { acked.add(value); op.return = vt++; op.output = {}; }, () => { failures++; });
        } else if (roll < 0.55 && running.length > 0) {
          const n = c.nodes.get(rng.pick(running))!;
          const key = rng.pick(KEYS);
          const call = vt++;
          n.read(key).then((v) => {
            history.push({ clientId: `r${step}`, input: { op: 'get', key }, output: { value: v ?? '' }, call, return: vt++ });
          }, () => {});
        } else if (roll < 0.6 && running.length === IDS.length) {
          await c.stop(rng.pick(running));
        } else if (roll < 0.68 && down.length > 0) {
          await c.start(rng.pick(down));
        } else if (roll < 0.71) {
          const isolated = rng.pick(IDS);
          net.partition([isolated]);
        } else if (roll < 0.76) {
          net.heal();
          net.setDropRate(rng.chance(0.5) ? 0.1 : 0, rng.next);
        }
        await clock.advance(rng.int(4) * TICK);
      }
      net.heal();
      for (const id of IDS.filter((i) => !c.nodes.has(i))) await c.start(id);
      // Let every pending proposal settle (succeed or time out), then let the cluster converge.
      await clock.advance(60 * TICK);
      const leaderLast = (): number => {
        const l = c.leader();
        return l ? l.status().lastIndex : -1;
      };
      await until(clock, () => {
        const last = leaderLast();
        return last > 0 && [...c.nodes.values()].every((n) => n.status().applied === last);
      }, `seed ${seed}: every node applied the leader's whole log`);
      if (process.env.CHAOS_VERBOSE) console.log(`seed ${seed}: ${acked.size} acked of ${proposed}, ${failures} failed, ${clock.now} ms`);
      assert.ok(acked.size > STEPS / 10, `seed ${seed}: enough writes acknowledged (${acked.size} of ${proposed}, ${failures} failed)`);
      const machines = [...c.machines.entries()];
      for (const [id, kv] of machines) {
        for (const value of acked) assert.equal(kv.appliedCount.get(value), 1, `seed ${seed}: ${id} did not apply acknowledged ${value} exactly once`);
        for (const [value, count] of kv.appliedCount) assert.equal(count, 1, `seed ${seed}: ${id} applied ${value} ${count} times`);
        assert.deepEqual([...kv.data].sort(), [...machines[0]![1].data].sort(), `seed ${seed}: ${id} agrees with ${machines[0]![0]}`);
      }
      for (const key of KEYS) {
        for (const n of c.nodes.values()) {
          const call = vt++;
          const r = await settle(clock, n.read(key), `seed ${seed}: final read of ${key} on ${n.id}`);
          assert.equal(r.error, undefined, `seed ${seed}: final read of ${key} on ${n.id} succeeds`);
          history.push({ clientId: `final-${n.id}`, input: { op: 'get', key }, output: { value: r.value ?? '' }, call, return: vt++ });
        }
      }
      const check = checkOperations(kvModel, history);
      assert.equal(check.result, 'ok', `seed ${seed}: history not linearizable: ${check.result === 'illegal' ? check.message : check.result}`);
      await c.stopAll();
      await clock.advance(10 * TICK); // deliveries still in flight on the network
      assert.equal(clock.pending, 0, `seed ${seed}: no timer left after stop`);
    });
  }
});
