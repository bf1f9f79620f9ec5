/**
 * The node card: which node is selected, crash/restart and isolate/reconnect for it, a switch per link
 * to each other node (the keyboard's way to cut links), and its state in words.
 * @module
 */
import type { NodeId } from '@raftrtc/raft';
import type { Cluster, NodeState } from './cluster.js';
import { byId, html, setAttr, setText } from './dom.js';

interface Choice {
  input: HTMLInputElement;
  label: HTMLLabelElement;
}

/** The selected node's card. */
export class NodePanel {
  private current: NodeId;
  private readonly crash = byId('crash', HTMLButtonElement);
  private readonly isolate = byId('isolate', HTMLButtonElement);
  private readonly details = byId('node-details', HTMLDListElement);
  private readonly linksBox = byId('node-links', HTMLDivElement);
  private readonly choices = new Map<NodeId, Choice>();
  private readonly links = new Map<NodeId, HTMLInputElement>();
  private detailsDrawn = '';

  constructor(private readonly cluster: Cluster) {
    this.current = cluster.ids[0];
    const picker = byId('node-picker', HTMLDivElement);
    for (const id of cluster.ids) {
      const label = html('label', { class: 'choice' }, picker);
      const input = html('input', { attrs: { type: 'radio', name: 'node', value: id } }, label);
      html('span', { class: 'choice-dot', attrs: { 'aria-hidden': 'true' } }, label);
      html('span', { text: id }, label);
      input.addEventListener('change', () => this.select(id));
      this.choices.set(id, { input, label });
    }
    this.crash.addEventListener('click', () => this.toggleCrash());
    this.isolate.addEventListener('click', () => this.toggleIsolation());
    this.select(this.current);
  }

  /** The selected node. */
  get selected(): NodeId {
    return this.current;
  }

  /** Selects node `id`. */
  select(id: NodeId): void {
    this.current = id;
    for (const [other, c] of this.choices) c.input.checked = other === id;
    // The link switches name the other nodes, so they are rebuilt for each selection.
    this.links.clear();
    this.linksBox.replaceChildren();
    for (const other of this.cluster.ids) {
      if (other === id) continue;
      const label = html('label', { class: 'chip' }, this.linksBox);
      const input = html('input', { attrs: { type: 'checkbox', 'aria-label': `Link ${id}–${other} open` } }, label);
      html('span', { text: other }, label);
      input.addEventListener('change', () => this.cluster.setLink(id, other, input.checked));
      this.links.set(other, input);
    }
    this.detailsDrawn = '';
  }

  /** Crashes the selected node, or restarts it if it is down. */
  toggleCrash(): void {
    if (this.cluster.failure) return;
    const id = this.current;
    if (this.cluster.node(id).alive) this.cluster.crash(id);
    else this.cluster.restart(id);
  }

  /** Isolates the selected node, or reconnects it. */
  toggleIsolation(): void {
    if (this.cluster.failure) return;
    const id = this.current;
    this.cluster.setIsolated(id, !this.cluster.node(id).isolated);
  }

  /** Refreshes the card from the cluster's state. */
  render(): void {
    const c = this.cluster;
    const s = c.node(this.current);
    const halted = c.failure !== null;
    for (const [id, choice] of this.choices) {
      const other = c.node(id);
      setAttr(choice.label, 'data-role', other.alive ? other.role : 'crashed');
    }
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
    this.renderDetails(s);
  }

  private renderDetails(s: NodeState): void {
    const kv = [...s.kv].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(' ');
    const first = (s.snapshot?.index ?? 0) + 1;
    // [term, value, full width]
    const rows: [string, string, boolean][] = [
      ['Role', s.alive ? s.role ?? 'follower' : 'crashed', false],
      ['Term', String(s.term), false],
      ['Voted for', s.vote ?? 'nobody', false],
      ['Leader', s.alive ? s.leader ?? 'unknown' : '–', false],
      ['Log', s.lastIndex < first ? 'empty' : `${first}–${s.lastIndex}`, false],
      ['Commit', String(s.commit), false],
    ];
    if (s.snapshot) rows.push(['Snapshot', `entries 1–${s.snapshot.index}`, true]);
    rows.push(['State', s.alive ? kv || 'empty' : 'lost in the crash (memory only)', true]);
    if (s.progress) {
      const followers = Object.entries(s.progress).filter(([id]) => id !== s.id);
      rows.push(['Matched', followers.map(([id, p]) => `${id}:${p.match}`).join('  '), true]);
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
