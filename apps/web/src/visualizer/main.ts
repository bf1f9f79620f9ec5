/**
 * The Raft visualizer's entry point: builds the simulated cluster (seeded from `?seed=`, else at random),
 * the views and the controls, then lets virtual time flow with the page's animation frames.
 * @module
 */
import { Cluster, type NodeState } from './cluster.js';
import { Controls } from './controls.js';
import { byId } from './dom.js';
import { showEvents } from './feed.js';
import { renderLegend } from './legend.js';
import { LogView } from './log-view.js';
import { NodePanel } from './node-panel.js';
import { Stage } from './stage.js';
import { Summary } from './summary.js';

/** A longer gap between frames (a background tab) counts as this long, so the cluster does not leap ahead. */
const MAX_FRAME_MS = 100;

/** What the page exposes as `window.__viz`, for tests and for poking at the cluster from the console. */
export interface VizHandle {
  cluster: Cluster;
  /** Everything drawn, as plain data. */
  state(): { time: number; leader: string | null; nodes: NodeState[] };
}

declare global {
  interface Window {
    __viz?: VizHandle;
  }
}

function randomSeed(): number {
  return Math.floor(Math.random() * 1_000_000);
}

function seedFromUrl(): number {
  const raw = new URLSearchParams(location.search).get('seed');
  const seed = raw === null || raw === '' ? NaN : Number(raw);
  return Number.isSafeInteger(seed) && seed >= 0 ? seed : randomSeed();
}

function main(): void {
  const seed = seedFromUrl();
  const cluster = new Cluster(seed);
  const nodes = new NodePanel(cluster);
  const controls = new Controls(cluster, nodes);
  const stage = new Stage(byId('cluster', SVGSVGElement), cluster, {
    select: (id) => nodes.select(id),
    toggleLink: (a, b) => cluster.setLink(a, b, cluster.isCut(a, b)),
  });
  const logs = new LogView(byId('logs', HTMLOListElement), cluster);
  const summary = new Summary(cluster);
  showEvents(byId('events', HTMLOListElement), cluster);
  renderLegend(byId('legend', HTMLUListElement), byId('legend-shapes', HTMLUListElement));
  byId('seed', HTMLElement).textContent = String(seed);
  byId('new-run', HTMLAnchorElement).search = `?seed=${randomSeed()}`;

  let last = performance.now();
  const frame = (now: number): void => {
    cluster.advance(Math.min(Math.max(0, now - last), MAX_FRAME_MS));
    last = now;
    stage.render(nodes.selected);
    logs.render();
    nodes.render();
    controls.render();
    summary.render();
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);

  window.__viz = {
    cluster,
    state: () => ({ time: cluster.time, leader: cluster.leader(), nodes: cluster.ids.map((id) => cluster.node(id)) }),
  };
}

main();
