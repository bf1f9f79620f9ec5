/**
 * One randomized chaos run: a seeded cluster under message loss, duplication, reordering, partitions
 * (asymmetric too), crashes and restarts, compaction, leadership transfers and membership changes, with
 * key-value clients writing through the log and reading through ReadIndex. The simulator checks Raft's
 * safety properties after every event; at the end the client history must be linearizable and, once the
 * network heals and every node is back, a new command must commit.
 *
 * Shared by `chaos.test.ts` (a few hundred seeds in `npm test`) and `chaos.run.ts` (`npm run chaos`).
 */
import { NotLeaderError, RaftError, type NodeId } from '../../src/index.js';
import {
  Rng, Simulation, checkOperations, kvModel,
  type KvInput, type KvOutput, type KvStateMachine, type Operation,
} from '../../src/testing/index.js';

/** What one run did, for reporting. */
export interface ChaosReport {
  seed: number;
  nodes: number;
  virtualMs: number;
  operations: number;
  unknownOutcomes: number;
  faults: number;
  linearizabilitySteps: number;
}

/** A failure that names its seed and how to replay it. */
export class ChaosFailure extends Error {
  constructor(readonly seed: number, message: string, options?: { cause?: unknown }) {
    super(`seed ${seed}: ${message}\n  replay: npm run chaos -- --seed ${seed}`, options);
    this.name = 'ChaosFailure';
  }
}

interface Write {
  op: Operation<KvInput, KvOutput>;
  index: number;
}

/**
 * A client has one operation outstanding at a time, as in Jepsen or Porcupine's tests; this bounds the
 * concurrency the checker must search. It gives up after a while, leaving that operation's outcome open.
 */
interface Client { id: number; busy: boolean; since: number }
const CLIENTS = 4;
const CLIENT_PATIENCE_MS = 1500;

const KEYS = ['a', 'b', 'c'];
/** After healing, a command must commit within this much virtual time. */
const HEAL_DEADLINE_MS = 20_000;

/** Runs the chaos scenario for `seed`. Throws {@link ChaosFailure} (or the simulator's InvariantViolation). */
export function runChaos(seed: number, options: { phases?: number } = {}): ChaosReport {
  // The cluster's shape has its own stream, so the simulation's stream stays as the seed makes it.
  const pick = new Rng(seed ^ 0x5bd1e995);
  const n = pick.chance(0.5) ? 3 : 5;
  const spares = pick.chance(0.3) ? 2 : 0;
  const ids = Array.from({ length: n + spares }, (_, i) => `n${i + 1}`);
  const sim = new Simulation({
    seed,
    nodes: ids,
    voters: ids.slice(0, n),
    electionTicks: 10,
    heartbeatTicks: 1 + pick.int(3),
    preVote: pick.chance(0.8),
    checkQuorum: pick.chance(0.8),
    snapshotEvery: pick.pick([0, 5, 20, 50]),
    network: { minDelayMs: 1, maxDelayMs: 5 + pick.int(40), wire: 'json' },
    // Slow disks and leaders writing in parallel with replication, as RaftNode runs.
    diskMs: pick.chance(0.6) ? 1 + pick.int(8) : 0,
    parallelWrite: pick.chance(0.7),
    replay: `npm run chaos -- --seed ${seed}`,
  });
  const rng = sim.fork();
  const history: Operation<KvInput, KvOutput>[] = [];
  /** Writes proposed and not yet applied anywhere, by command id. */
  const writes = new Map<string, Write>();
  let opSeq = 0;
  let faults = 0;

  const clients: Client[] = Array.from({ length: CLIENTS }, (_, id) => ({ id, busy: false, since: 0 }));
  const owner = new Map<Operation<KvInput, KvOutput>, Client>();
  const release = (op: Operation<KvInput, KvOutput>): void => {
    const c = owner.get(op);
    if (c) { c.busy = false; owner.delete(op); }
  };
  const idleClient = (): Client | undefined => {
    for (const c of clients) {
      if (c.busy && sim.now - c.since > CLIENT_PATIENCE_MS) {
        c.busy = false;
        for (const [op, o] of owner) if (o === c) owner.delete(op);
      }
    }
    const idle = clients.filter((c) => !c.busy);
    return idle.length ? rng.pick(idle) : undefined;
  };
  const begin = (c: Client, input: KvInput): Operation<KvInput, KvOutput> => {
    const op: Operation<KvInput, KvOutput> = { clientId: c.id, input, call: sim.now, return: Infinity };
    c.busy = true;
    c.since = sim.now;
    owner.set(op, c);
    return op;
  };

  sim.observer = {
    onApply(_node, entry) {
      // The first apply anywhere follows the commit, so the write has taken effect by now: returning here
      // is the strictest real-time bound a client could ever observe.
      const id = (entry.data as { id?: unknown } | null)?.id;
      const w = typeof id === 'string' ? writes.get(id) : undefined;
      if (!w) return;
      w.op.return = sim.now;
      w.op.output = {};
      history.push(w.op);
      writes.delete(id as string);
      release(w.op);
    },
  };

  const live = () => sim.all.filter((v) => v.alive).map((v) => v.id);
  const anyNode = () => rng.pick(ids);

  const write = (c: Client): void => {
    const leader = sim.leader();
    if (leader === null) return;
    const id = `w${++opSeq}`;
    const op = begin(c, { op: rng.chance(0.7) ? 'put' : 'append', key: rng.pick(KEYS), value: `${id};` });
    // Registered before proposing: a single voter commits and applies within propose() itself.
    const w: Write = { op, index: 0 };
    writes.set(id, w);
    try {
      w.index = sim.propose(leader, { ...op.input, id }).index;
    } catch (err) {
      writes.delete(id);
      release(op);
      if (!(err instanceof RaftError)) throw err;
    }
  };

  const read = (c: Client): void => {
    const node = rng.chance(0.5) ? sim.leader() : anyNode();
    if (node === null || !sim.node(node).alive) return;
    const id = `r${++opSeq}`;
    const key = rng.pick(KEYS);
    const op = begin(c, { op: 'get', key });
    try {
      sim.readIndex(node, id, (sm: KvStateMachine) => {
        // A read served after its client gave up was never seen by anyone: it stays out of the history.
        if (!owner.has(op)) return;
        op.output = { value: sm.get(key) };
        op.return = sim.now;
        history.push(op);
        release(op);
      });
    } catch (err) {
      release(op);
      if (!(err instanceof NotLeaderError)) throw err;
    }
  };

  const fault = (): void => {
    faults++;
    const net = sim.network;
    switch (rng.int(11)) {
      case 0: { const groups: NodeId[][] = [[], []]; for (const id of ids) groups[rng.int(2)].push(id); net.partition(groups); break; }
      case 1: net.isolate(anyNode()); break;
      case 2: { const a = anyNode(), b = anyNode(); if (a !== b) net.block(a, b); break; }
      case 3: net.heal(); break;
      case 4: { const up = live(); if (up.length > 1) sim.crash(rng.pick(up)); break; }
      case 5: for (const v of sim.all) if (!v.alive) sim.restart(v.id); break;
      case 6: net.configure({ dropRate: rng.pick([0, 0.05, 0.2, 0.5]), duplicateRate: rng.pick([0, 0.05, 0.2]) }); break;
      case 7: net.configure({ longReordering: rng.chance(0.5) }); break;
      case 8: {
        const leader = sim.leader();
        if (leader !== null) try { sim.transferLeader(leader, anyNode()); } catch (err) { if (!(err instanceof RaftError)) throw err; }
        break;
      }
      case 9: {
        const leader = sim.leader();
        if (leader === null) break;
        const node = anyNode();
        const type = rng.pick(['addVoter', 'addLearner', 'remove'] as const);
        const changes = rng.chance(0.3)
          ? [{ type, node }, { type: rng.pick(['addVoter', 'addLearner'] as const), node: anyNode() }].filter((c, i, a) => a.findIndex((d) => d.node === c.node) === i)
          : [{ type, node }];
        try { sim.proposeConfChange(leader, changes); } catch (err) { if (!(err instanceof RaftError)) throw err; }
        break;
      }
      default: { const up = live(); if (up.length) sim.restart(rng.pick(up)); break; }
    }
  };

  const phases = options.phases ?? 25;
  try {
    sim.run(300);
    for (let phase = 0; phase < phases; phase++) {
      if (rng.chance(0.6)) fault();
      const steps = 5 + rng.int(10);
      for (let s = 0; s < steps; s++) {
        const c = idleClient();
        if (c) { if (rng.chance(0.6)) write(c); else read(c); }
        sim.run(5 + rng.int(40));
      }
    }

    // Heal everything; the cluster must make progress again.
    sim.network.heal();
    sim.network.configure({ dropRate: 0, duplicateRate: 0, longReordering: false });
    for (const v of sim.all) if (!v.alive) sim.restart(v.id);
    // Commit past every index a write was proposed at; then each write either took effect or never will.
    const target = Math.max(0, ...[...writes.values()].map((w) => w.index));
    const deadline = sim.now + HEAL_DEADLINE_MS;
    let committed = false;
    let filler = 0;
    while (!committed && sim.now < deadline) {
      const leader = sim.leader();
      if (leader !== null) {
        try {
          const { index } = sim.propose(leader, { op: 'put', key: 'final', value: `${++filler}`, id: `final-${filler}` });
          committed = sim.runUntil(() => sim.node(leader).applied >= index, 2000) && index >= target;
        } catch (err) { if (!(err instanceof RaftError)) throw err; }
      }
      if (!committed) sim.run(50);
    }
    if (!committed) {
      const state = sim.all.map((v) => {
        const st = v.status();
        return st ? `${v.id} ${st.role} term=${st.term} lead=${st.leader} commit=${st.commit} last=${st.lastIndex} conf=${JSON.stringify(st.conf)}` : `${v.id} down`;
      });
      throw new ChaosFailure(seed, `no command committed within ${HEAL_DEADLINE_MS} ms after the network healed:\n    ${state.join('\n    ')}`);
    }
    sim.run(1000);
  } catch (err) {
    if (err instanceof ChaosFailure) throw err;
    throw new ChaosFailure(seed, err instanceof Error ? err.message : String(err), { cause: err });
  }

  // Writes still unapplied never took effect: the log is committed past the only index each could hold.
  const check = checkOperations(kvModel, history, { maxSteps: Number(process.env.LIN_STEPS ?? 5_000_000) });
  if (check.result === 'illegal') throw new ChaosFailure(seed, `client history is not linearizable:\n${check.message}`);
  if (check.result === 'unknown') throw new ChaosFailure(seed, 'linearizability check ran out of steps');
  return {
    seed, nodes: ids.length, virtualMs: sim.now, operations: history.length,
    unknownOutcomes: history.filter((o) => o.return === Infinity).length, faults, linearizabilitySteps: check.steps,
  };
}
