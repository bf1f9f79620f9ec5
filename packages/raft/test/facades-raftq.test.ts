/**
 * raftq's README example ("Using ExpressJS"), run in-process: the same bootstrap / startServer /
 * handleCrash code, with HTTP replaced by an in-process stand-in for express and axios (JSON round trip,
 * asynchronous delivery) and the file-based persistAgent by one over a Map. Fake timers: every wait is
 * bounded in ticks.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  Raftq, RaftqOptionsError, RaftqPersistError, RaftRole, type RaftEventType, type RaftqNetworkEvent, type RaftqNode, type RaftqRoleChange,
} from '../src/facades/raftq.js';
import { FakeTimers } from './helpers/fake-timers.js';
import { settle, until } from './helpers/node-cluster.js';

type RaftNode = RaftqNode;

/** express + axios between in-process servers: a port answers a POST only while its server listens. */
class LocalHttp {
  readonly servers = new Map<number, (action: string, body: unknown) => void>();
  posts = 0;
  post(url: string, body: unknown, _opts: { timeout: number }): Promise<{ status: number }> {
    const m = /^http:\/\/localhost:(\d+)\/raft\/action\/(\w+)$/.exec(url);
    const text = JSON.stringify(body);
    this.posts++;
    return new Promise((resolve, reject) => queueMicrotask(() => {
      const handler = m ? this.servers.get(Number(m[1])) : undefined;
      if (!handler) { reject(new Error(`ECONNREFUSED ${url}`)); return; }
      handler(m![2]!, JSON.parse(text));
      resolve({ status: 200 });
    }));
  }
}

interface Server {
  port: number;
  raft: Raftq<{ something: string }>;
  replicated: string[];
  roles: RaftqRoleChange[];
  logs: string[];
  started: Promise<void>;
  handleCrash(e: unknown): Promise<void>;
}

const cluster = ['5050', '5051', '5052', '5053'];

/** The README's `bootstrap()`, nearly verbatim; `disk` plays /tmp/raftq. */
function bootstrap(http: LocalHttp, disk: Map<string, string>, clock: FakeTimers, seq: number): Server {
  const axios = { post: http.post.bind(http) };
  const raft = new Raftq<{ something: string }>({
    heartbeat: 10,
    minimumElectionTime: 100,
    maximumElectionTime: 200,
    persistAgent: {
      async persist(node, data) {
        disk.set(`${node.id}.json`, JSON.stringify(data));
      },
      async restore(node) {
        const file = disk.get(`${node.id}.json`);
        return file === undefined ? undefined : JSON.parse(file);
      },
    },
    timers: clock,
    // Staggered election timeouts: servers on one fake clock would otherwise split votes.
    random: () => (seq + 0.5) / (cluster.length + 1),
  });
  const server: Partial<Server> = { raft, replicated: [], roles: [], logs: [] };

  // The pipe: POST /raft/action/:action → dispatch.
  const app = (action: string, body: unknown): void => {
    void raft.dispatch(action as RaftEventType, body);
  };
  const mapping: { [key in RaftqNetworkEvent]?: RaftEventType } = {
    voteRequest: 'voteRequestReceived',
    voteResponse: 'voteResponseReceived',
    syncData: 'dataReceived',
    dataResponse: 'dataResponseReceived',
  };
  for (const action in mapping) {
    const eventName = action as RaftqNetworkEvent;
    raft.subscribe(eventName, async (message) => {
      const url = `http://localhost:${message.destination.id}/raft/action/${mapping[eventName]}`;
      axios.post(url, message, { timeout: message.timeout }).catch(() => {});
    });
  }
  raft.subscribe('log', ({ message }) => { server.logs!.push(message); });
  raft.subscribe('roleChanged', (change) => { server.roles!.push(change); });
  raft.subscribe('dataReplicated', ({ data }) => { server.replicated!.push(data.something); });

  async function startServer(port: number): Promise<void> {
    const clusterWithoutMe = cluster
      .filter((a) => a !== String(port))
      .map<RaftNode>((port) => ({ id: String(port), time: Date.now() }));
    const justMe: RaftNode = { id: String(port), time: Date.now() };

    await Promise.all(
      clusterWithoutMe.map((node) =>
        axios
          .post(`http://localhost:${node.id}/raft/action/ackNode`, justMe, { timeout: 100 })
          .then((result) => {
            if (!result) return;
            void raft.dispatch('ackNode', node);
          })
          .catch(() => {}),
      ),
    );
    await raft.dispatch('serviceStarted', { node: justMe });
  }
  // listen from 5050 and forward
  function listen(port: number, done: (port: number) => Promise<void>): Promise<void> {
    if (http.servers.has(port)) return listen(port + 1, done);
    http.servers.set(port, app);
    server.port = port;
    return done(port);
  }
  server.started = listen(5050, startServer);

  let isHandlingCrashAlready = false;
  server.handleCrash = async (e: unknown) => {
    if (isHandlingCrashAlready) return;
    isHandlingCrashAlready = true;
    raft.getNode().time = 0;
    await Promise.all(
      raft.getFollowers().map((node) =>
        axios.post(`http://localhost:${node.id}/raft/action/ackNode`, raft.getNode(), { timeout: 200 }).catch(() => {}),
      ),
    );
    await raft.dispatch('serviceCrashed', { reason: String(e) });
    await raft.destroy();
    http.servers.delete(server.port!); // instead of process.exit(1)
  };
  return server as Server;
}

class World {
  readonly http = new LocalHttp();
  readonly clock = new FakeTimers();
  readonly disk = new Map<string, string>();
  servers: Server[] = [];

  /** Runs the README's program `n` times, one after the other, as its demo does. */
  async run(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const s = bootstrap(this.http, this.disk, this.clock, i);
      await s.started;
      this.servers.push(s);
      // Each server gets a moment to be added before the next one starts.
      await this.clock.advance(50);
    }
  }

  live(): Server[] { return this.servers.filter((s) => this.http.servers.has(s.port)); }

  leader(): Server | null {
    const live = this.live();
    const leaders = live.filter((s) => s.raft.getRole() === RaftRole.LEADER);
    if (leaders.length !== 1) return null;
    const id = leaders[0]!.raft.getNode().id;
    return live.every((s) => s.raft.getLeader() === id) ? leaders[0]! : null;
  }

  voters(): string[] {
    return [...(this.leader()?.raft.raftNode?.status().conf.voters ?? [])].sort();
  }

  async destroyAll(): Promise<void> {
    for (const s of this.servers) { await s.raft.destroy(); this.http.servers.delete(s.port); }
    this.servers = [];
    assert.equal(this.clock.pending, 0, 'destroy() leaves no timer behind');
  }
}

describe('raftq facade: the README ExpressJS example, in-process', () => {
  it('four servers started one after another form one cluster; replicated data reaches all of them', async () => {
    const w = new World();
    try {
      await w.run(4);
      await until(w.clock, () => w.voters().length === 4, 'all four servers in the configuration');
      const leader = w.leader()!;
      assert.deepEqual(w.servers.map((s) => s.port), [5050, 5051, 5052, 5053], 'each server took the next free port');
      for (const s of w.servers) {
        assert.equal(s.raft.getFollowers().length, 3, `${s.port} knows the three others (${s.raft.getFollowers().map((n) => n.id).join(',')})`);
        if (s !== leader) assert.equal(s.raft.getRole(), RaftRole.FOLLOWER, `${s.port} is a follower`);
      }
      assert.ok(leader.roles.some((r) => r.role === RaftRole.LEADER), 'the leader got a roleChanged to LEADER');
      assert.ok(leader.logs.length > 0, 'log events were emitted');

      // The README's dispatch example, on the leader.
      const out = await settle(w.clock, leader.raft.dispatch('replicateData', { something: 'shared, and available' }), 'replicateData on the leader');
      assert.equal(out.error, undefined, `replicateData succeeded (${String(out.error)})`);
      // On a follower it is forwarded to the leader.
      const follower = w.servers.find((s) => s !== leader)!;
      const out2 = await settle(w.clock, follower.raft.replicateData({ something: 'from a follower' }), 'replicateData on a follower');
      assert.equal(out2.error, undefined, `replicateData on a follower succeeded (${String(out2.error)})`);
      await until(w.clock, () => w.servers.every((s) => s.replicated.includes('from a follower')), 'the data on every server');
      for (const s of w.servers) {
        assert.deepEqual(s.replicated, ['shared, and available', 'from a follower'], `${s.port} applied both, in order, once`);
      }
    } finally {
      await w.destroyAll();
    }
  });

  it("the README's crash handler takes a crashed leader out of the cluster and the rest goes on", async () => {
    const w = new World();
    try {
      await w.run(4);
      await until(w.clock, () => w.voters().length === 4, 'all four servers in the configuration');
      const old = w.leader()!;
      const oldId = old.raft.getNode().id;
      await old.handleCrash(new Error('SIGINT'));
      await until(w.clock, () => w.leader() !== null && !w.voters().includes(oldId), 'a new leader removed the crashed one');
      assert.equal(w.voters().length, 3, `three voters remain (${w.voters().join(',')})`);
      const out = await settle(w.clock, w.leader()!.raft.dispatch('replicateData', { something: 'after the crash' }), 'replicateData after the crash');
      assert.equal(out.error, undefined, `replicateData after the crash succeeded (${String(out.error)})`);
      await until(w.clock, () => w.live().every((s) => s.replicated.includes('after the crash')), 'the data on the three live servers');
      assert.ok(!old.replicated.includes('after the crash'), 'the crashed server got nothing more');
    } finally {
      await w.destroyAll();
    }
  });

  it('servers restarted from what persistAgent stored keep their log and go on', async () => {
    const w = new World();
    try {
      await w.run(3);
      await until(w.clock, () => w.voters().length === 3, 'three servers in the configuration');
      const out = await settle(w.clock, w.leader()!.raft.dispatch('replicateData', { something: 'before' }), 'replicateData before the restart');
      assert.equal(out.error, undefined, `replicateData succeeded (${String(out.error)})`);
      await until(w.clock, () => w.servers.every((s) => s.replicated.includes('before')), 'the data on every server');
      const terms = w.servers.map((s) => s.raft.raftNode!.status().term);
      await w.destroyAll();
      assert.equal(w.disk.size, 3, 'each server persisted its state');

      await w.run(3);
      await until(w.clock, () => w.leader() !== null, 'a leader after the restart');
      assert.deepEqual(w.voters(), ['5050', '5051', '5052'], 'the configuration came back from storage');
      for (const [i, s] of w.servers.entries()) {
        assert.ok(s.raft.raftNode!.status().term >= terms[i]!, `${s.port} kept its term`);
      }
      await until(w.clock, () => w.servers.every((s) => s.replicated.includes('before')), 'the earlier data replayed on every server');
      const out2 = await settle(w.clock, w.leader()!.raft.replicateData({ something: 'after' }), 'replicateData after the restart');
      assert.equal(out2.error, undefined, `replicateData after the restart succeeded (${String(out2.error)})`);
      await until(w.clock, () => w.servers.every((s) => s.replicated.includes('after')), 'the new data on every server');
      for (const s of w.servers) assert.deepEqual(s.replicated, ['before', 'after'], `${s.port} applied each datum once`);
    } finally {
      await w.destroyAll();
    }
  });

  it('maps heartbeat / minimumElectionTime / maximumElectionTime onto ticks: a lone node campaigns within [min, max]', async () => {
    const agent = { persist: async () => {}, restore: async () => undefined };
    for (const [r, max, earliest, latest] of [[0, 200, 100, 110], [0.999, 200, 190, 200], [0.999, 150, 140, 150]] as const) {
      const clock = new FakeTimers();
      const raft = new Raftq({ persistAgent: agent, timers: clock, random: () => r, heartbeat: 10, minimumElectionTime: 100, maximumElectionTime: max });
      await raft.dispatch('serviceStarted', { node: { id: 'x', time: 1 } });
      await clock.advance(earliest - 10);
      assert.equal(raft.getRole(), RaftRole.FOLLOWER, `random ${r}, max ${max}: still a follower after ${earliest - 10} ms`);
      await clock.advance(latest - earliest + 20);
      assert.equal(raft.getRole(), RaftRole.LEADER, `random ${r}, max ${max}: leader by ${latest + 10} ms`);
      await raft.destroy();
    }
  });

  it('refuses invalid options and drops garbage from the network without throwing', async () => {
    const agent = { persist: async () => {}, restore: async () => undefined };
    assert.throws(() => new Raftq({ persistAgent: agent, minimumElectionTime: 300, maximumElectionTime: 200 }), RaftqOptionsError);
    const clock = new FakeTimers();
    const raft = new Raftq({ persistAgent: agent, timers: clock, heartbeat: 10, minimumElectionTime: 100, maximumElectionTime: 200 });
    const logs: string[] = [];
    raft.subscribe('log', ({ message }) => { logs.push(message); });
    await raft.dispatch('serviceStarted', { node: { id: 'x', time: 1 } });
    await raft.dispatch('dataReceived', { data: { type: 'Append', from: 'y', to: 'x' } } as never);
    await raft.dispatch('voteRequestReceived', null as never);
    assert.ok(logs.filter((l) => l.includes('dropped')).length === 2, `both garbage messages were logged as dropped (${logs.join(' | ')})`);
    await raft.destroy();
    assert.equal(clock.pending, 0, 'destroy() leaves no timer behind');

    const bad = new Raftq({ persistAgent: { persist: async () => {}, restore: async () => ({ not: 'raft' }) as never }, timers: clock });
    await assert.rejects(bad.dispatch('serviceStarted', { node: { id: 'z', time: 1 } }), RaftqPersistError, 'a restore that is not Raft state is refused');
    await bad.destroy();
    assert.equal(clock.pending, 0, 'a node that failed to start leaves no timer behind');
  });
});
