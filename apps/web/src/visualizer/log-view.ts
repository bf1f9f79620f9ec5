/**
 * The logs: one row per node, entries aligned by index so matching logs line up column by column. A cell
 * shows its entry's term; committed entries are filled, the others outlined; entries folded into a
 * snapshot show as one bar. The rows follow the tail of the longest log.
 * @module
 */
import type { NodeId } from '@raftrtc/raft';
import { html, setAttr, setText } from './dom.js';
import type { ClusterSource, LogCell, NodeState } from './source.js';

/** Cell width and gap in CSS pixels; the stylesheet reads them as `--cell` and `--gap`. */
const CELL = 24;
const GAP = 3;
/** Term colours cycle through this many hues (`.term-0` … in the stylesheet). */
const TERM_HUES = 6;

interface Row {
  item: HTMLLIElement;
  name: HTMLElement;
  meta: HTMLElement;
  cells: HTMLElement;
  kv: HTMLElement;
  drawn: string;
}

/** The log rows. */
export class LogView {
  private readonly rows = new Map<NodeId, Row>();
  private readonly head: HTMLElement;
  private columns = 16;
  private headDrawn = '';
  /** The ids the rows were made for (a live room's change). */
  private built: readonly NodeId[] = [];

  constructor(private readonly list: HTMLOListElement, private readonly cluster: ClusterSource) {
    list.style.setProperty('--cell', `${CELL}px`);
    list.style.setProperty('--gap', `${GAP}px`);
    const head = html('li', { class: 'log-row log-head', attrs: { 'aria-hidden': 'true' } }, list);
    html('span', { class: 'log-who', text: 'index' }, head);
    this.head = html('div', { class: 'log-cells' }, head);
    html('span', { class: 'log-kv', text: 'state' }, head);
    this.build();
    new ResizeObserver(() => {
      const width = this.head.clientWidth;
      if (width > 0) this.columns = Math.max(4, Math.floor((width + GAP) / (CELL + GAP)));
    }).observe(this.head);
  }

  /** Makes one row per node of the cluster's current ids. */
  private build(): void {
    for (const row of this.rows.values()) row.item.remove();
    this.rows.clear();
    this.built = this.cluster.ids;
    for (const id of this.built) {
      const item = html('li', { class: 'log-row', attrs: { 'data-node': id } }, this.list);
      const who = html('div', { class: 'log-who', attrs: { 'aria-hidden': 'true' } }, item);
      const name = html('span', { class: 'log-name' }, who);
      const meta = html('span', { class: 'log-meta' }, who);
      const cells = html('div', { class: 'log-cells', attrs: { 'aria-hidden': 'true' } }, item);
      const kv = html('span', { class: 'log-kv', attrs: { 'aria-hidden': 'true' } }, item);
      this.rows.set(id, { item, name, meta, cells, kv, drawn: '' });
    }
  }

  /** Redraws the rows whose log, commit index or role changed. */
  render(): void {
    if (this.cluster.ids !== this.built) this.build();
    const states = this.built.map((id) => this.cluster.node(id));
    const end = Math.max(0, ...states.map((s) => s.lastIndex));
    // One free column at the end, so a new entry appears in empty space rather than shifting the rows.
    const start = Math.max(1, end + 2 - this.columns);
    this.renderHead(start);
    for (const s of states) this.renderRow(this.rows.get(s.id) as Row, s, start);
  }

  private renderHead(start: number): void {
    const key = `${start}|${this.columns}`;
    if (key === this.headDrawn) return;
    this.headDrawn = key;
    this.head.style.setProperty('--cols', String(this.columns));
    this.head.replaceChildren(...Array.from({ length: this.columns }, (_, i) =>
      html('span', { class: 'log-index', text: String(start + i) })));
  }

  private renderRow(row: Row, s: NodeState, start: number): void {
    const role = s.shown;
    // By Log Matching, two logs with the same last index and term are the same log: no need to compare entries.
    const key = [s.name, role, s.term, s.commit, s.applied, s.snapshot?.index ?? 0, s.lastIndex, s.lastTerm, s.stateText, start, this.columns].join('|');
    if (key === row.drawn) return;
    row.drawn = key;
    setAttr(row.item, 'data-role', role);
    setAttr(row.item, 'data-commit', String(s.commit));
    setAttr(row.item, 'data-last', String(s.lastIndex));
    setAttr(row.item, 'aria-label', `${s.name}, ${role}, term ${s.term}: log up to index ${s.lastIndex}, committed up to ${s.commit}, state ${s.stateText}`);
    // A live peer's name arrives with its first status.
    setText(row.name, s.name.length > 8 ? `${s.name.slice(0, 7)}…` : s.name);
    setAttr(row.name, 'title', s.name);
    setText(row.meta, `commit ${s.commit}`);
    setText(row.kv, s.stateText);
    row.cells.style.setProperty('--cols', String(this.columns));
    // Entries left of the window would otherwise leave a short log looking empty.
    setAttr(row.cells, 'data-earlier', String(s.lastIndex >= 1 && start > 1 && (s.snapshot?.index ?? 0) < start));

    const cells: HTMLElement[] = [];
    if (s.snapshot && s.snapshot.index >= start) {
      const bar = html('span', { class: 'cell-snapshot', text: 'snapshot', attrs: { title: `Snapshot of entries 1–${s.snapshot.index} (last term ${s.snapshot.term})` } });
      bar.style.gridColumn = `1 / ${s.snapshot.index - start + 2}`;
      cells.push(bar);
    }
    for (const e of s.entries) {
      if (e.index >= start) cells.push(this.cell(e, start, e.index <= s.commit));
    }
    row.cells.replaceChildren(...cells);
  }

  private cell(e: LogCell, start: number, committed: boolean): HTMLElement {
    const kind = e.kind === 'normal' ? '' : ` is-${e.kind}`;
    const el = html('span', {
      class: `cell term-${e.term % TERM_HUES}${committed ? ' is-committed' : ''}${kind}`,
      text: String(e.term),
      attrs: {
        'data-index': e.index,
        'data-term': e.term,
        title: `Index ${e.index} · term ${e.term} · ${e.label} · ${committed ? 'committed' : 'not committed yet'}`,
      },
    });
    el.style.gridColumn = String(e.index - start + 1);
    return el;
  }
}
