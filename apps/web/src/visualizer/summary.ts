/**
 * The header's summary (leader, term, committed index and, for a simulation, its safety checks) and the
 * banner shown if the simulation halts. The simulator checks Raft's safety properties after every event
 * and throws on the first violation, so "holding" here is a checked claim, not decoration.
 * @module
 */
import { PROPERTIES } from '@raftrtc/raft/testing';
import type { Cluster } from './cluster.js';
import { byId, setAttr, setText } from './dom.js';
import type { ClusterSource } from './source.js';

const CHECKED = Object.values(PROPERTIES).map(([name, where]) => `${name} (${where})`);

/** The header summary and the failure banner. */
export class Summary {
  private readonly leader = byId('sum-leader', HTMLElement);
  private readonly term = byId('sum-term', HTMLElement);
  private readonly commit = byId('sum-commit', HTMLElement);
  private readonly safety = byId('sum-safety', HTMLElement);
  private readonly failure = byId('failure', HTMLDivElement);

  /** `sim`: the simulation whose safety checks the summary reports; null for a live room (nothing checks it). */
  constructor(private readonly cluster: ClusterSource, private readonly sim: Cluster | null) {
    if (sim) this.safety.title = `Checked after every event:\n${CHECKED.join('\n')}`;
  }

  /** Updates the summary from the cluster's current state. */
  render(): void {
    const c = this.cluster;
    const leader = c.leader();
    setText(this.leader, leader === null ? 'none' : c.ids.includes(leader) ? c.node(leader).name : leader.slice(0, 8));
    setAttr(this.leader, 'data-id', leader);
    setText(this.term, String(Math.max(0, ...c.ids.map((id) => c.node(id).term))));
    setText(this.commit, String(c.committed()));
    if (this.sim) this.renderSafety(this.sim);
  }

  private renderSafety(c: Cluster): void {
    const failed = c.failure;
    setText(this.safety, failed ? 'halted' : `${CHECKED.length} checks hold`);
    setAttr(this.safety, 'data-ok', String(!failed));
    if (failed && this.failure.hidden) {
      this.failure.textContent = `The simulation stopped: ${failed.message}`;
      this.failure.hidden = false;
    }
  }
}
