/**
 * Membership changes (Raft thesis §4): what a `conf` entry does to a configuration, and which proposals
 * are allowed. One change is a single-server change; several enter joint consensus (thesis §4.3), which the
 * leader leaves with a `leaveJoint` entry once the joint configuration commits.
 * @module
 */
import { ConfChangeError } from './errors.js';
import type { ConfChange, ConfEntryData, ConfState, NodeId } from './types.js';

function without(list: readonly NodeId[], id: NodeId): NodeId[] { return list.filter((x) => x !== id); }
function withId(list: readonly NodeId[], id: NodeId): NodeId[] { return list.includes(id) ? [...list] : [...list, id]; }

function applyChanges(conf: ConfState, changes: readonly ConfChange[]): { voters: NodeId[]; learners: NodeId[] } {
  let voters = [...conf.voters];
  let learners = [...conf.learners];
  for (const c of changes) {
    switch (c.type) {
      case 'addVoter': voters = withId(voters, c.node); learners = without(learners, c.node); break;
      case 'addLearner': learners = withId(learners, c.node); voters = without(voters, c.node); break;
      case 'remove': voters = without(voters, c.node); learners = without(learners, c.node); break;
    }
  }
  return { voters, learners };
}

/** The configuration after a conf entry. Pure; never throws, since committed entries must always apply. */
export function applyConfEntry(conf: ConfState, data: ConfEntryData): ConfState {
  switch (data.op) {
    case 'bootstrap': return { voters: [...data.voters], learners: [] };
    case 'leaveJoint': return { voters: [...conf.voters], learners: [...conf.learners] };
    case 'change': {
      const next = applyChanges(conf, data.changes);
      return data.changes.length === 1 ? next : { ...next, outgoing: [...conf.voters] };
    }
  }
}

/** Throws {@link ConfChangeError} unless `changes` may be proposed on top of `conf`. */
export function validateConfChanges(conf: ConfState, changes: readonly ConfChange[]): void {
  if (!Array.isArray(changes) || changes.length === 0) throw new ConfChangeError('no membership change given');
  if (conf.outgoing) throw new ConfChangeError('the cluster is in joint consensus; wait until it leaves');
  const seen = new Set<NodeId>();
  for (const c of changes) {
    if (typeof c?.node !== 'string' || c.node.length === 0) throw new ConfChangeError('a change needs a node id');
    if (c.type !== 'addVoter' && c.type !== 'addLearner' && c.type !== 'remove') {
      throw new ConfChangeError(`unknown change type ${JSON.stringify(c.type)}`);
    }
    if (seen.has(c.node)) throw new ConfChangeError(`node ${c.node} appears twice in one change`);
    seen.add(c.node);
  }
  if (applyChanges(conf, changes).voters.length === 0) throw new ConfChangeError('a configuration needs at least one voter');
}

/** Structural equality of configurations (order-insensitive). */
export function sameConf(a: ConfState, b: ConfState): boolean {
  const eq = (x: readonly NodeId[] = [], y: readonly NodeId[] = []) => x.length === y.length && x.every((v) => y.includes(v));
  return eq(a.voters, b.voters) && eq(a.learners, b.learners) && !a.outgoing === !b.outgoing && eq(a.outgoing, b.outgoing);
}
