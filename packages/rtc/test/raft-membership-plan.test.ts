/** The room membership's pure decisions: planBootstrap, planMembership and planHandOver, rule by rule. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ConfState } from '@raftrtc/raft';
import {
  actionKey, planBootstrap, planHandOver, planMembership, type BootstrapView, type DownPeer, type MembershipView,
} from '../src/raft/membership-plan.js';
import type { RoomPeerState } from '../src/raft/mesh-link.js';

const boot = (over: Partial<BootstrapView>): BootstrapView => ({
  self: 'b', now: 0, joinedAt: 0, timeoutMs: 1000, peersAtJoin: [], connected: new Set(), states: new Map(), left: new Set(), ...over,
});

const states = (o: Record<string, RoomPeerState>): Map<string, RoomPeerState> => new Map(Object.entries(o));

describe('planBootstrap', () => {
  it('the first peer in the room bootstraps at once', () => {
    assert.deepEqual(planBootstrap(boot({})), { action: 'bootstrap', reason: 'first' });
  });

  it('a connected member means a cluster exists: wait to be added', () => {
    const d = planBootstrap(boot({ peersAtJoin: ['c'], connected: new Set(['c']), states: states({ c: 'member' }) }));
    assert.deepEqual(d, { action: 'wait', reason: 'cluster-exists' });
  });

  it('a lower id that is fresh, or has not said yet, bootstraps instead', () => {
    for (const s of [states({ a: 'fresh' }), states({})]) {
      const d = planBootstrap(boot({ peersAtJoin: ['a'], connected: new Set(['a']), states: s }));
      assert.deepEqual(d, { action: 'wait', reason: 'lower-id' }, `wait for a (${JSON.stringify([...s])})`);
    }
  });

  it('the lowest fresh id bootstraps once every listed peer is connected and announced', () => {
    const d = planBootstrap(boot({ peersAtJoin: ['c', 'd'], connected: new Set(['c', 'd']), states: states({ c: 'fresh', d: 'waiting' }) }));
    assert.deepEqual(d, { action: 'bootstrap', reason: 'lowest-id' });
  });

  it('a listed peer that is not connected blocks bootstrapping, however long: it may be a member', () => {
    const d = planBootstrap(boot({ peersAtJoin: ['c'], now: 1e9 }));
    assert.deepEqual(d, { action: 'wait', reason: 'unknown-peers' });
  });

  it('a listed peer whose presence left no longer blocks', () => {
    assert.deepEqual(planBootstrap(boot({ peersAtJoin: ['a', 'c'], left: new Set(['a', 'c']) })), { action: 'bootstrap', reason: 'lowest-id' });
  });

  it('without a presence list: wait for the timeout, then bootstrap unless a cluster or a lower rival is seen', () => {
    assert.deepEqual(planBootstrap(boot({ peersAtJoin: null, now: 999 })), { action: 'wait', reason: 'unknown-peers' });
    assert.deepEqual(planBootstrap(boot({ peersAtJoin: null, now: 1000 })), { action: 'bootstrap', reason: 'timeout' });
    const rival = boot({ peersAtJoin: null, now: 1000, connected: new Set(['a']), states: states({ a: 'fresh' }) });
    assert.deepEqual(planBootstrap(rival), { action: 'wait', reason: 'lower-id' });
  });

  it('without a presence list, a connected peer still silent after the timeout is not a rival', () => {
    const v = boot({ peersAtJoin: null, connected: new Set(['a']) });
    assert.deepEqual(planBootstrap({ ...v, now: 10 }), { action: 'wait', reason: 'lower-id' });
    assert.deepEqual(planBootstrap({ ...v, now: 1000 }), { action: 'bootstrap', reason: 'timeout' });
  });
});

const conf = (voters: string[], learners: string[] = []): ConfState => ({ voters, learners });

const view = (over: Partial<MembershipView> & { conf?: ConfState; commit?: number; match?: Record<string, number> }): MembershipView => {
  const { conf: c = conf(['a', 'b', 'c']), commit = 10, match = {}, ...rest } = over;
  const progress: Record<string, { match: number; next: number; state: string }> = {};
  for (const p of [...c.voters, ...c.learners]) if (p !== 'a') progress[p] = { match: match[p] ?? commit, next: (match[p] ?? commit) + 1, state: 'replicate' };
  return {
    self: 'a', now: 0, status: { role: 'leader', commit, conf: c, progress, transferee: null },
    connected: new Set(['b', 'c']), states: states({ b: 'member', c: 'member' }), down: new Map(), graceMs: 100, blocked: new Set(),
    ...rest,
  };
};

describe('planMembership', () => {
  it('plans nothing on a follower, in joint consensus or during a transfer', () => {
    const base = view({ connected: new Set(['b', 'c', 'd']), states: states({ b: 'member', c: 'member', d: 'fresh' }) });
    assert.ok(planMembership(base) !== null, 'the leader has something to do');
    assert.equal(planMembership({ ...base, status: { ...base.status, role: 'follower' } }), null, 'a follower plans nothing');
    assert.equal(planMembership({ ...base, status: { ...base.status, conf: { ...base.status.conf, outgoing: ['a'] } } }), null, 'nothing in joint consensus');
    assert.equal(planMembership({ ...base, status: { ...base.status, transferee: 'b' } }), null, 'nothing during a transfer');
  });

  it('adds a connected fresh or waiting newcomer as a learner, in id order', () => {
    const v = view({ connected: new Set(['b', 'c', 'e', 'd']), states: states({ b: 'member', c: 'member', e: 'waiting', d: 'fresh' }) });
    assert.deepEqual(planMembership(v), { type: 'addLearner', node: 'd' });
  });

  it('leaves alone a peer that is leaving, has not announced, or is a member of another cluster', () => {
    for (const s of ['leaving', 'member', undefined] as const) {
      const st = states({ b: 'member', c: 'member' });
      if (s) st.set('d', s);
      const v = view({ connected: new Set(['b', 'c', 'd']), states: st });
      assert.equal(planMembership(v), null, `d (${s ?? 'silent'}) is not added`);
    }
  });

  it('promotes a connected learner once its match reaches the commit index, not before', () => {
    const c = conf(['a', 'b', 'c'], ['d']);
    const connected = new Set(['b', 'c', 'd']);
    const st = states({ b: 'member', c: 'member', d: 'member' });
    assert.equal(planMembership(view({ conf: c, connected, states: st, match: { d: 9 } })), null, 'behind: not yet');
    assert.deepEqual(planMembership(view({ conf: c, connected, states: st, match: { d: 10 } })), { type: 'promote', node: 'd' });
    assert.equal(planMembership(view({ conf: c, connected: new Set(['b', 'c']), states: st, match: { d: 10 } })), null, 'not while disconnected');
  });

  it('removes a member whose presence left at once, and an unreachable one only after the grace period', () => {
    const left: DownPeer = { since: 0, reason: 'left' };
    assert.deepEqual(planMembership(view({ connected: new Set(['b']), down: new Map([['c', left]]) })), { type: 'remove', node: 'c', why: 'left' });
    const failed: DownPeer = { since: 0, reason: 'failed' };
    assert.equal(planMembership(view({ now: 99, connected: new Set(['b']), down: new Map([['c', failed]]) })), null, 'within the grace period');
    assert.deepEqual(planMembership(view({ now: 100, connected: new Set(['b']), down: new Map([['c', failed]]) })), { type: 'remove', node: 'c', why: 'unreachable' });
  });

  it('removes a connected member that announced it is leaving', () => {
    assert.deepEqual(planMembership(view({ states: states({ b: 'member', c: 'leaving' }) })), { type: 'remove', node: 'c', why: 'leaving' });
  });

  it('removals come before additions, and a blocked action gives way to the next', () => {
    const v = view({
      connected: new Set(['b', 'd']), states: states({ b: 'member', d: 'fresh' }), down: new Map([['c', { since: 0, reason: 'left' }]]),
    });
    const first = planMembership(v);
    assert.deepEqual(first, { type: 'remove', node: 'c', why: 'left' });
    assert.deepEqual(planMembership({ ...v, blocked: new Set([actionKey(first!)]) }), { type: 'addLearner', node: 'd' });
  });
});

describe('planHandOver', () => {
  it('transfers to the most caught-up connected voter that is staying', () => {
    const v = view({ conf: conf(['a', 'b', 'c', 'd']), connected: new Set(['b', 'c', 'd']), states: states({ b: 'member', c: 'leaving', d: 'member' }), match: { b: 7, c: 10, d: 9 } });
    assert.deepEqual(planHandOver(v), { type: 'transfer', node: 'd' });
  });

  it('with no staying voter, promotes the most caught-up learner', () => {
    const v = view({ conf: conf(['a'], ['b', 'c']), connected: new Set(['b', 'c']), states: states({ b: 'member', c: 'member' }), match: { b: 3, c: 5 } });
    assert.deepEqual(planHandOver(v), { type: 'promote', node: 'c' });
  });

  it('with nobody to take over, removes itself; a lone voter does nothing', () => {
    const v = view({ conf: conf(['a', 'b']), connected: new Set(['b']), states: states({ b: 'leaving' }) });
    assert.deepEqual(planHandOver(v), { type: 'remove', node: 'a', why: 'leaving' });
    assert.equal(planHandOver(view({ conf: conf(['a']), connected: new Set(), states: states({}) })), null, 'a lone voter has nothing to do');
  });
});
