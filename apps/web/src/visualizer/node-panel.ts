/**
 * The node card: which node is selected, its state in words, and in a simulation crash/restart and
 * isolate/reconnect for it and a switch per link to each other node (the keyboard's way to cut links).
 * @module
 */
import type { NodeId } from '@raftrtc/raft';
import type { Cluster } from './cluster.js';
import { byId, html, setAttr, setText } from './dom.js';
import type { ClusterSource, NodeState } from './source.js';

interface Choice {
  input: HTMLInputElement;
  label: HTMLLabelElement;
  name: HTMLSpanElement;
}

/** The selected node's card. */
export class NodePanel {
  private current: NodeId | null;
  private readonly crash = byId('crash', HTMLButtonElement);
  private readonly isolate = byId('isolate', HTMLButtonElement);
  private readonly details = byId('node-details', HTMLDListElement);
  private readonly linksBox = byId('node-links', HTMLDivElement);
  private readonly picker = byId('node-picker', HTMLDivElement);
  private readonly choices = new Map<NodeId, Choice>();
  private readonly links = new Map<NodeId, HTMLInputElement>();
  private detailsDrawn = '';
  /** The ids the picker was made for (a live room's change). */
  private built: readonly NodeId[] = [];

  /** `sim`: the simulated cluster the crash, isolation and link controls act on; null for a live room. */
  constructor(private readonly cluster: ClusterSource, private readonly sim: Cluster | null) {
    this.current = cluster.ids[0] ?? null;
    this.build();
    this.crash.addEventListener('click', () => this.toggleCrash());
    this.isolate.addEventListener('click', () => this.toggleIsolation());
    if (this.current !== null) this.select(this.current);
  }

  /** The selected node, or null while there is none. */
  get selected(): NodeId | null {
    return this.current;
  }

  /** Makes one choice per node of the cluster's current ids. */
  private build(): void {
    this.built = this.cluster.ids;
    this.choices.clear();
    this.picker.replaceChildren();
    for (const id of this.built) {
      const label = html('label', { class: 'choice' }, this.picker);
      const input = html('input', { attrs: { type: 'radio', name: 'node', value: id } }, label);
      html('span', { class: 'choice-dot', attrs: { 'aria-hidden': 'true' } }, label);
      const name = html('span', {}, label);
      input.checked = id === this.current;
      input.addEventListener('change', () => this.select(id));
      this.choices.set(id, { input, label, name });
    }
  }

  /** Selects node `id`. */
  select(id: NodeId): void {
    this.current = id;
    for (const [other, c] of this.choices) c.input.checked = other === id;
    // The link switches name the other nodes, so they are rebuilt for each selection.
    this.links.clear();
    this.linksBox.replaceChildren();
    this.detailsDrawn = '';
    const sim = this.sim;
    if (!sim) return;
    for (const other of sim.ids) {
      if (other === id) continue;
      const label = html('label', { class: 'chip' }, this.linksBox);
      const input = html('input', { attrs: { type: 'checkbox', 'aria-label': `Link ${id}–${other} open` } }, label);
      html('span', { text: other }, label);
      input.addEventListener('change', () => sim.setLink(id, other, input.checked));
      this.links.set(other, input);
    }
  }

  /** Crashes the selected node, or restarts it if it is down (simulation only). */
  toggleCrash(): void {
    const id = this.current;
    if (!this.sim || this.sim.failure || id === null) return;
    if (this.sim.node(id).alive) this.sim.crash(id);
    else this.sim.restart(id);
  }

  /** Isolates the selected node, or reconnects it (simulation only). */
  toggleIsolation(): void {
    const id = this.current;
    if (!this.sim || this.sim.failure || id === null) return;
    this.sim.setIsolated(id, !this.sim.node(id).isolated);
  }

  /** Refreshes the card from the cluster's state. */
  render(): void {
    const c = this.cluster;
    if (c.ids !== this.built) {
      if (this.current === null || !c.ids.includes(this.current)) this.current = c.ids[0] ?? null;
      this.build();
      if (this.current !== null) this.select(this.current);
    }
    for (const [id, choice] of this.choices) {
      const other = c.node(id);
      setAttr(choice.label, 'data-role', other.shown);
      // A live peer's name arrives with its first status.
      setText(choice.name, other.name);
    }
    if (this.current === null) {
      if (this.details.childElementCount > 0) this.details.replaceChildren();
      this.detailsDrawn = '';
      return;
    }
    const s = c.node(this.current);
    this.renderDetails(s);
    if (this.sim) this.renderActions(s, this.sim);
  }

  private renderActions(s: NodeState, c: Cluster): void {
    const halted = c.failure !== null;
    setText(this.crash, s.alive ? `Crash ${s.id}` : `Restart ${s.id}`);
    setAttr(this.crash, 'data-action', s.alive ? 'crash' : 'restart');
    setText(this.isolate, s.isolated ? `Reconnect ${s.id}` : `Isolate ${s.id}`);
    this.crash.disabled = halted;
    this.isolate.disabled = halted;
    for (const [other, input] of this.links) {
      input.checked = !c.isCut(s.id, other);
      // An isolated end cuts the link whatever its switch says.
      input.disabled = halted || s.isolated || c.node(other).isolated;
    }
  }

  /** A node's name when it is drawn, else the start of its id. */
  private nameOf(id: NodeId): string {
    return this.cluster.ids.includes(id) ? this.cluster.node(id).name : id.slice(0, 8);
  }

  private renderDetails(s: NodeState): void {
    const first = (s.snapshot?.index ?? 0) + 1;
    // [term, value, full width]
    const rows: [string, string, boolean][] = [];
    if (s.name !== s.id) rows.push(['Peer', `${s.name} (${s.id.slice(0, 8)})`, true]);
    rows.push(
      ['Role', s.shown, false],
      ['Term', String(s.term), false],
      ['Voted for', s.vote === null ? 'nobody' : this.nameOf(s.vote), false],
      ['Leader', s.alive ? (s.leader === null ? 'unknown' : this.nameOf(s.leader)) : '–', false],
      ['Log', s.lastIndex < first ? 'empty' : `${first}–${s.lastIndex}`, false],
      ['Commit', String(s.commit), false],
    );
    if (s.snapshot) rows.push(['Snapshot', `entries 1–${s.snapshot.index}`, true]);
    rows.push(['State', s.stateText, true]);
    if (s.progress) {
      const followers = Object.entries(s.progress).filter(([id]) => id !== s.id);
      rows.push(['Matched', followers.map(([id, p]) => `${this.nameOf(id)}:${p.match}`).join('  '), true]);
    }
    const key = JSON.stringify(rows);
    if (key === this.detailsDrawn) return;
    this.detailsDrawn = key;
    this.details.replaceChildren(...rows.map(([term, value, wide]) => {
      const pair = html('div', { class: wide ? 'detail wide' : 'detail' });
      html('dt', { text: term }, pair);
      html('dd', { text: value }, pair);
      return pair;
    }));
  }
}
