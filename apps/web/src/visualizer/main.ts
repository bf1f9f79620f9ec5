/**
 * The Raft visualizer's entry point. Two modes, one set of views:
 * - simulation (default): builds the simulated cluster (seeded from `?seed=`, else at random) and its
 *   controls, then lets virtual time flow with the page's animation frames;
 * - live (`?room=<room>&peer=<peerId>`): draws that room as the peer's open room tab publishes it (see
 *   `live.ts`); the simulation's controls are hidden, since nothing here may touch a real room.
 * @module
 */
import type { NodeId } from '@raftrtc/raft';
import { Cluster } from './cluster.js';
import { Controls } from './controls.js';
import { byId, setAttr, setText } from './dom.js';
import { showEvents } from './feed.js';
import { renderLegend } from './legend.js';
import { LiveCluster, type FeedState } from './live.js';
import { LogView } from './log-view.js';
import { NodePanel } from './node-panel.js';
import type { ClusterSource, NodeState } from './source.js';
import { Stage } from './stage.js';
import { Summary } from './summary.js';

/** A longer gap between frames (a background tab) counts as this long, so the cluster does not leap ahead. */
const MAX_FRAME_MS = 100;

/** A message as `state()` lists it. */
export interface FlightView {
  kind: string;
  from: NodeId;
  to: NodeId;
  label: string;
}

/** What the page exposes as `window.__viz`, for tests and for poking at the cluster from the console. */
export interface VizHandle {
  mode: 'simulation' | 'live';
  cluster: Cluster | LiveCluster;
  /** Everything drawn, as plain data; `feed` only in live mode. */
  state(): { time: number; leader: string | null; nodes: NodeState[]; flights: FlightView[]; feed?: FeedState };
}

declare global {
  interface Window {
    __viz?: VizHandle;
  }
}

function randomSeed(): number {
  return Math.floor(Math.random() * 1_000_000);
}

function seedFromUrl(params: URLSearchParams): number {
  const raw = params.get('seed');
  const seed = raw === null || raw === '' ? NaN : Number(raw);
  return Number.isSafeInteger(seed) && seed >= 0 ? seed : randomSeed();
}

/** The views every mode shares; returns the function that redraws them. */
function mountViews(source: ClusterSource, sim: Cluster | null): { nodes: NodePanel; render(): void } {
  const nodes = new NodePanel(source, sim);
  const stage = new Stage(byId('cluster', SVGSVGElement), source, {
    select: (id) => nodes.select(id),
    ...(sim ? { toggleLink: (a: NodeId, b: NodeId) => sim.setLink(a, b, sim.isCut(a, b)) } : {}),
  });
  const logs = new LogView(byId('logs', HTMLOListElement), source);
  const summary = new Summary(source, sim);
  showEvents(byId('events', HTMLOListElement), source);
  renderLegend(byId('legend', HTMLUListElement), byId('legend-shapes', HTMLUListElement), sim === null);
  return {
    nodes,
    render: () => {
      stage.render(nodes.selected);
      logs.render();
      nodes.render();
      summary.render();
    },
  };
}

function flightsOf(source: ClusterSource): FlightView[] {
  return [...source.inFlight()].map((f) => ({ kind: f.kind, from: f.from, to: f.to, label: f.label }));
}

function simulation(params: URLSearchParams): void {
  const seed = seedFromUrl(params);
  const cluster = new Cluster(seed);
  const views = mountViews(cluster, cluster);
  const controls = new Controls(cluster, views.nodes);
  byId('seed', HTMLElement).textContent = String(seed);
  byId('new-run', HTMLAnchorElement).search = `?seed=${randomSeed()}`;

  let last = performance.now();
  const frame = (now: number): void => {
    cluster.advance(Math.min(Math.max(0, now - last), MAX_FRAME_MS));
    last = now;
    views.render();
    controls.render();
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);

  window.__viz = {
    mode: 'simulation',
    cluster,
    state: () => ({ time: cluster.time, leader: cluster.leader(), nodes: cluster.ids.map((id) => cluster.node(id)), flights: flightsOf(cluster) }),
  };
}

function live(room: string, peer: string): void {
  const cluster = new LiveCluster(room, peer);
  document.querySelectorAll<HTMLElement>('.sim-only').forEach((el) => { el.hidden = true; });
  document.body.classList.add('is-live');
  document.title = `Live: ${room} · Raft visualizer · RaftRTC`;
  setText(byId('tagline', HTMLElement), `Live room ${room}: the real RaftNodes of its peers, as one of its tabs sees them`);
  setText(byId('sum-safety-label', HTMLElement), 'Feed');
  const safety = byId('sum-safety', HTMLElement);
  safety.title = 'Whether the room tab is publishing';
  const banner = byId('live-banner', HTMLDivElement);
  banner.hidden = false;
  const empty = byId('stage-empty', HTMLParagraphElement);
  const views = mountViews(cluster, null);

  let drawn = '';
  const renderBanner = (): void => {
    const feed = cluster.state;
    const who = cluster.name ?? `peer ${peer.slice(0, 8)}`;
    const key = `${feed}|${who}`;
    if (key === drawn) return;
    drawn = key;
    setAttr(document.body, 'data-feed', feed);
    setAttr(banner, 'data-feed', feed);
    setAttr(safety, 'data-feed', feed);
    setText(safety, feed);
    banner.replaceChildren();
    const strong = document.createElement('strong');
    strong.textContent = `Live: room ${room}, as seen by ${who}.`;
    const rest = feed === 'live'
      ? ' Its own node is shown exactly, with the messages it sends and receives; the other peers as they last reported (about once a second).'
      : feed === 'waiting'
        ? ' Waiting for the room tab… Keep the room open in this browser (another tab of the same browser profile); this page has heard nothing from it yet.'
        : ' Lost the feed: the room tab was closed, left the room, or stopped answering. What is drawn is the last state it sent. Reopen the room to resume.';
    banner.append(strong, rest);
    empty.textContent = feed === 'lost' ? 'The room tab stopped publishing.' : 'Waiting for the room tab…';
  };

  const frame = (): void => {
    cluster.poll();
    views.render();
    renderBanner();
    empty.hidden = cluster.ids.length > 0;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);

  window.__viz = {
    mode: 'live',
    cluster,
    state: () => ({
      time: cluster.time, leader: cluster.leader(), nodes: cluster.ids.map((id) => cluster.node(id)), flights: flightsOf(cluster), feed: cluster.state,
    }),
  };
}

function main(): void {
  const params = new URLSearchParams(location.search);
  const room = params.get('room');
  const peer = params.get('peer');
  if (room && peer) live(room, peer);
  else simulation(params);
}

main();
