/**
 * The cluster diagram (SVG): the nodes on a ring, a link between every pair, and each message in flight
 * moving along its link from sender to receiver. Nodes select on click; links cut or mend on click.
 * @module
 */
import type { NodeId } from '@raftrtc/raft';
import { setAttr, setText, svg } from './dom.js';
import type { MessageKind } from './messages.js';
import type { ClusterSource, Flight, NodeState } from './source.js';

const NODE_R = 38;
/** Room above a node's centre (for the crown) and below it (for its role badge and note). */
const ABOVE = NODE_R + 30;
const BELOW = NODE_R + 60;
/** Width of one upper-case badge letter, letter spacing included. */
const BADGE_EM = 9;
/** Room beside a node's centre, for its badge. */
const BESIDE = 72;
/** The smallest drawing, in viewBox units; a smaller container scales it down rather than crowding it. */
const MIN_WIDTH = 500;
const MIN_HEIGHT = 420;
/** The ring is stretched into an ellipse at most this much on wide containers. */
const MAX_STRETCH = 1.7;
/** Messages leave and reach a node this far outside its edge. */
const PORT = NODE_R + 5;
/** Messages keep to the right of their link, so the two directions of a link do not overlap. */
const LANE = 5;

interface Point { x: number; y: number }

interface NodeParts {
  group: SVGGElement;
  badge: SVGRectElement;
  name: SVGTextElement;
  term: SVGTextElement;
  role: SVGTextElement;
  note: SVGTextElement;
  title: SVGTitleElement;
  drawn: string;
}

interface LinkParts {
  a: NodeId;
  b: NodeId;
  group: SVGGElement;
  lines: SVGLineElement[];
  mark: SVGGElement;
  title: SVGTitleElement;
}

/** How a message looks: its family's colour; filled when a request, a ring when a reply. */
export interface Glyph {
  kind: MessageKind;
  reply: boolean;
  /** Slashed: a refused vote or append. */
  refusal: boolean;
  /** Entries carried: a square with the count, instead of a dot. */
  entries: number;
}

/** Draws a message (in the diagram and in the legend alike), centred on 0,0. */
export function drawGlyph(glyph: Glyph, parent?: Element): SVGGElement {
  const classes = ['msg', `msg-${glyph.kind}`, glyph.reply ? 'is-reply' : 'is-request'];
  if (glyph.refusal) classes.push('is-refusal');
  const g = svg('g', { class: classes.join(' ') }, parent);
  if (glyph.kind === 'snapshot') {
    svg('rect', { class: 'msg-shape', x: -7, y: -7, width: 14, height: 14, rx: 2, transform: 'rotate(45)' }, g);
  } else if (glyph.entries > 0) {
    svg('rect', { class: 'msg-shape', x: -8, y: -8, width: 16, height: 16, rx: 3.5 }, g);
    svg('text', { class: 'msg-count', y: 0.5 }, g).textContent = String(glyph.entries);
  } else {
    svg('circle', { class: 'msg-shape', r: glyph.reply ? 5.5 : 6.5 }, g);
  }
  if (glyph.refusal) svg('path', { class: 'msg-slash', d: 'M-3.5 3.5 3.5-3.5' }, g);
  return g;
}

/** Marks a drawn message as lost: a red cross over it. */
export function markLost(g: SVGGElement): void {
  g.classList.add('is-lost');
  svg('path', { class: 'msg-cross', d: 'M-4.5-4.5 4.5 4.5M4.5-4.5-4.5 4.5' }, g);
}

/** What the diagram asks of the page when clicked. */
export interface StageActions {
  select(id: NodeId): void;
  /** Absent where links cannot be cut (a live room). */
  toggleLink?(a: NodeId, b: NodeId): void;
}

/** The SVG diagram of the cluster. */
export class Stage {
  private readonly at = new Map<NodeId, Point>();
  private readonly nodes = new Map<NodeId, NodeParts>();
  private links: LinkParts[] = [];
  private readonly messages = new Map<number, SVGGElement>();
  private readonly linkLayer: SVGGElement;
  private readonly messageLayer: SVGGElement;
  private readonly nodeLayer: SVGGElement;
  /** The ids the nodes and links were made for (a live room's change). */
  private built: readonly NodeId[] = [];
  private size = { width: MIN_WIDTH, height: MIN_HEIGHT };

  constructor(private readonly root: SVGSVGElement, private readonly cluster: ClusterSource, actions: StageActions) {
    this.linkLayer = svg('g', { class: 'links' }, root);
    // Under the nodes: messages stop at a node's edge, so only the labels they pass could hide them.
    this.messageLayer = svg('g', { class: 'messages', 'aria-hidden': 'true' }, root);
    this.nodeLayer = svg('g', { class: 'nodes' }, root);
    this.build();
    new ResizeObserver(() => {
      const { width, height } = root.getBoundingClientRect();
      if (width > 0 && height > 0) {
        this.size = { width, height };
        this.layout();
      }
    }).observe(root);

    root.addEventListener('click', (event) => {
      const target = event.target instanceof Element ? event.target : null;
      const node = target?.closest<SVGGElement>('[data-node]');
      if (node?.dataset.node) {
        actions.select(node.dataset.node);
        return;
      }
      const link = target?.closest<SVGGElement>('[data-link]');
      if (link && link.dataset.state !== 'down' && actions.toggleLink) {
        const [a, b] = (link.dataset.link ?? '').split('-');
        actions.toggleLink(a, b);
      }
    });
  }

  /** Makes the nodes and links for the cluster's current ids. */
  private build(): void {
    const ids = this.cluster.ids;
    this.built = ids;
    this.nodes.clear();
    this.at.clear();
    this.links = [];
    this.linkLayer.replaceChildren();
    this.nodeLayer.replaceChildren();
    ids.forEach((a, i) => ids.slice(i + 1).forEach((b) => this.links.push(this.makeLink(this.linkLayer, a, b))));
    for (const id of ids) this.nodes.set(id, this.makeNode(this.nodeLayer, id));
    this.layout();
  }

  /**
   * Fits the drawing to a `width` × `height` pixel box: one viewBox unit per pixel when there is room
   * (so nodes keep their size), the nodes on an ellipse as wide as the box allows.
   */
  private layout(): void {
    const { width, height } = this.size;
    const scale = Math.min(1, width / MIN_WIDTH, height / MIN_HEIGHT);
    const w = width / scale;
    const h = height / scale;
    this.root.setAttribute('viewBox', `${(-w / 2).toFixed(1)} ${(-h / 2).toFixed(1)} ${w.toFixed(1)} ${h.toFixed(1)}`);
    const ids = this.built;
    const n = ids.length;
    const angles = ids.map((_, i) => -Math.PI / 2 + (2 * Math.PI * i) / n);
    // One node sits alone at the top; none at all leaves nothing to place.
    const low = Math.max(0, ...angles.map(Math.sin));
    const wide = Math.max(0.5, ...angles.map((a) => Math.abs(Math.cos(a))));
    // The top node's crown touches the top edge and the lowest nodes' notes the bottom edge.
    const ry = (h - ABOVE - BELOW) / (1 + low);
    const rx = Math.min(ry * MAX_STRETCH, (w / 2 - BESIDE) / wide);
    const cy = -h / 2 + ABOVE + ry;
    ids.forEach((id, i) => {
      const p = { x: rx * Math.cos(angles[i]), y: cy + ry * Math.sin(angles[i]) };
      this.at.set(id, p);
      this.nodes.get(id)?.group.setAttribute('transform', `translate(${p.x.toFixed(1)} ${p.y.toFixed(1)})`);
    });
    for (const link of this.links) {
      const p = this.at.get(link.a) as Point;
      const q = this.at.get(link.b) as Point;
      for (const line of link.lines) {
        line.setAttribute('x1', p.x.toFixed(1));
        line.setAttribute('y1', p.y.toFixed(1));
        line.setAttribute('x2', q.x.toFixed(1));
        line.setAttribute('y2', q.y.toFixed(1));
      }
      link.mark.setAttribute('transform', `translate(${((p.x + q.x) / 2).toFixed(1)} ${((p.y + q.y) / 2).toFixed(1)})`);
    }
  }

  /** Redraws for the cluster's current time, with `selected` highlighted. */
  render(selected: NodeId | null): void {
    if (this.cluster.ids !== this.built) this.build();
    const states = new Map(this.built.map((id) => [id, this.cluster.node(id)]));
    for (const [id, parts] of this.nodes) this.renderNode(parts, states.get(id) as NodeState, id === selected);
    for (const link of this.links) this.renderLink(link, states);
    this.renderMessages();
  }

  private makeNode(layer: SVGGElement, id: NodeId): NodeParts {
    const group = svg('g', { class: 'node', 'data-node': id }, layer);
    const title = svg('title', {}, group);
    svg('circle', { class: 'node-halo', r: NODE_R + 9 }, group);
    svg('circle', { class: 'node-body', r: NODE_R }, group);
    svg('path', { class: 'node-crown', d: 'M-13 5-15-7-7-1 0-10 7-1 15-7 13 5Z', transform: `translate(0 ${-NODE_R - 14})` }, group);
    const name = svg('text', { class: 'node-id', y: -2 }, group);
    const term = svg('text', { class: 'node-term', y: 17 }, group);
    const badge = svg('rect', { class: 'node-badge', y: NODE_R + 11, height: 22, rx: 11 }, group);
    const role = svg('text', { class: 'node-role', y: NODE_R + 22 }, group);
    const note = svg('text', { class: 'node-note', y: NODE_R + 46 }, group);
    return { group, badge, name, term, role, note, title, drawn: '' };
  }

  private renderNode(parts: NodeParts, s: NodeState, selected: boolean): void {
    const role = s.shown;
    const key = `${s.name}|${role}|${s.term}|${s.commit}|${s.lastIndex}|${s.isolated}|${s.note}|${selected}`;
    if (key === parts.drawn) return;
    parts.drawn = key;
    const g = parts.group;
    setAttr(g, 'data-role', role);
    setAttr(g, 'data-term', String(s.term));
    setAttr(g, 'data-commit', String(s.commit));
    setAttr(g, 'data-isolated', String(s.isolated));
    setAttr(g, 'data-selected', String(selected));
    setAttr(g, 'data-note', s.note || null);
    // Names longer than a node is wide are cut; the title has the whole name.
    setText(parts.name, s.name.length > 9 ? `${s.name.slice(0, 8)}…` : s.name);
    setText(parts.term, `term ${s.term}`);
    setText(parts.role, role);
    // Sized from the label's length: measuring text would force a layout on every role change.
    const width = Math.max(84, role.length * BADGE_EM + 26);
    setAttr(parts.badge, 'x', String(-width / 2));
    setAttr(parts.badge, 'width', String(width));
    setText(parts.note, s.note);
    setText(parts.title, `${s.name === s.id ? s.id : `${s.name} (${s.id})`}: ${role}, term ${s.term}, commit ${s.commit}${s.note ? `, ${s.note}` : ''}`);
  }

  private makeLink(layer: SVGGElement, a: NodeId, b: NodeId): LinkParts {
    const group = svg('g', { class: 'link', 'data-link': `${a}-${b}`, 'data-state': 'open' }, layer);
    const title = svg('title', {}, group);
    const lines = [svg('line', { class: 'link-line' }, group), svg('line', { class: 'link-hit' }, group)];
    const mark = svg('g', { class: 'link-mark' }, group);
    svg('circle', { r: 9 }, mark);
    svg('path', { d: 'M-3.5-3.5 3.5 3.5M3.5-3.5-3.5 3.5' }, mark);
    return { a, b, group, lines, mark, title };
  }

  private renderLink(link: LinkParts, states: ReadonlyMap<NodeId, NodeState>): void {
    const down = states.get(link.a)?.isolated || states.get(link.b)?.isolated;
    const state = down ? 'down' : this.cluster.isCut(link.a, link.b) ? 'cut' : 'open';
    if (link.group.dataset.state === state) return;
    link.group.dataset.state = state;
    const name = `${link.a}–${link.b}`;
    setText(link.title, state === 'down' ? `Link ${name}: an end is isolated` : state === 'cut' ? `Mend the link ${name}` : `Cut the link ${name}`);
  }

  private renderMessages(): void {
    const now = this.cluster.time;
    const seen = new Set<number>();
    const fade = this.cluster.fadeMs;
    for (const f of this.cluster.inFlight()) {
      // A live room's message may name a peer not drawn (yet).
      if (!this.at.has(f.from) || !this.at.has(f.to) || f.from === f.to) continue;
      seen.add(f.id);
      let g = this.messages.get(f.id);
      if (!g) {
        g = this.makeMessage(f);
        this.messages.set(f.id, g);
        this.messageLayer.append(g);
      }
      const { x, y } = this.position(f, now);
      g.setAttribute('transform', `translate(${x.toFixed(1)} ${y.toFixed(1)})`);
      if (f.lostAt !== null && now >= f.lostAt) {
        if (!g.classList.contains('is-lost')) markLost(g);
        g.setAttribute('opacity', Math.max(0, 1 - (now - f.lostAt) / fade).toFixed(2));
      }
    }
    for (const [id, g] of this.messages) {
      if (seen.has(id)) continue;
      g.remove();
      this.messages.delete(id);
    }
  }

  private makeMessage(f: Flight): SVGGElement {
    const g = drawGlyph({ kind: f.kind, reply: f.reply, refusal: f.refusal, entries: f.entries });
    svg('title', {}, g).textContent = f.label;
    return g;
  }

  /** Where `f` is at virtual time `now`: along its link, in its lane, never past the end of its path. */
  private position(f: Flight, now: number): Point {
    const p = this.at.get(f.from) as Point;
    const q = this.at.get(f.to) as Point;
    const length = Math.hypot(q.x - p.x, q.y - p.y);
    const dx = (q.x - p.x) / length;
    const dy = (q.y - p.y) / length;
    const span = f.endAt - f.sentAt;
    const t = f.reach * (span > 0 ? Math.min(1, Math.max(0, (now - f.sentAt) / span)) : 1);
    const along = PORT + t * (length - 2 * PORT);
    return { x: p.x + dx * along - dy * LANE, y: p.y + dy * along + dx * LANE };
  }
}
