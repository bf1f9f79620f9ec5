/**
 * The legend under the diagram: one swatch per message family, then the shapes, each drawn by the same
 * code as the messages themselves so the two cannot drift apart.
 * @module
 */
import { html, svg } from './dom.js';
import { MESSAGE_KINDS } from './messages.js';
import { drawGlyph, markLost, type Glyph } from './stage.js';

const SHAPES: readonly { label: string; glyph: Glyph; lost?: boolean }[] = [
  { label: 'request', glyph: { kind: 'vote', reply: false, refusal: false, entries: 0 } },
  { label: 'reply', glyph: { kind: 'vote', reply: true, refusal: false, entries: 0 } },
  { label: 'refused', glyph: { kind: 'vote', reply: true, refusal: true, entries: 0 } },
  { label: 'carries entries', glyph: { kind: 'append', reply: false, refusal: false, entries: 2 } },
  { label: 'lost', glyph: { kind: 'heartbeat', reply: false, refusal: false, entries: 0 }, lost: true },
];

function item(list: HTMLUListElement, label: string, glyph: Glyph, lost = false, title?: string): void {
  const li = html('li', { class: 'legend-item', attrs: title ? { title } : {} }, list);
  const icon = svg('svg', { class: 'legend-glyph', viewBox: '-9 -9 18 18', 'aria-hidden': 'true' }, li);
  const g = drawGlyph(glyph, icon);
  if (lost) markLost(g);
  html('span', { text: label }, li);
}

/** Fills the family list and the shape list; `live` adds the node layer's forwards, which a simulation never sends. */
export function renderLegend(families: HTMLUListElement, shapes: HTMLUListElement, live: boolean): void {
  for (const { kind, label, types } of MESSAGE_KINDS) {
    if (kind === 'forward' && !live) continue;
    item(families, label, { kind, reply: false, refusal: false, entries: 0 }, false, types);
  }
  for (const { label, glyph, lost } of SHAPES) item(shapes, label, glyph, lost);
}
