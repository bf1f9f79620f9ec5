/**
 * The time, client and network controls, and the keyboard shortcuts. Button states are refreshed every
 * frame from the cluster, so they never disagree with what is drawn.
 * @module
 */
import type { ClientRequest, Cluster } from './cluster.js';
import { byId, seconds, setAttr, setText } from './dom.js';
import type { NodePanel } from './node-panel.js';

/** Speed is 2^slider: from 1/8 to 32 times the slow-motion pace. */
function speedOf(slider: HTMLInputElement): number {
  return 2 ** Number(slider.value);
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

function speedText(speed: number): string {
  return speed >= 1 ? `${speed}×` : `1/${1 / speed}×`;
}

/** Wires the transport bar, the client and network cards, and the shortcuts. */
export class Controls {
  private readonly play = byId('play', HTMLButtonElement);
  private readonly playLabel: HTMLElement;
  private readonly stepButton = byId('step', HTMLButtonElement);
  private readonly speed = byId('speed', HTMLInputElement);
  private readonly speedOut = byId('speed-out', HTMLOutputElement);
  private readonly clock = byId('clock', HTMLElement);
  private readonly request = byId('request', HTMLButtonElement);
  private readonly requestStatus = byId('request-status', HTMLElement);
  private readonly split = byId('split', HTMLButtonElement);
  private readonly heal = byId('heal', HTMLButtonElement);
  private readonly loss = byId('loss', HTMLInputElement);
  private readonly lossOut = byId('loss-out', HTMLOutputElement);
  private readonly traffic = byId('traffic', HTMLElement);
  /** The request the status line follows, or the reason the last one was refused. */
  private last: ClientRequest | string | null = null;

  constructor(private readonly cluster: Cluster, private readonly nodes: NodePanel) {
    this.playLabel = this.play.querySelector('.btn-label') ?? this.play;
    this.play.addEventListener('click', () => this.togglePlay());
    this.stepButton.addEventListener('click', () => cluster.step());
    this.speed.addEventListener('input', () => this.applySpeed());
    this.request.addEventListener('click', () => this.sendRequest());
    this.split.addEventListener('click', () => cluster.split());
    this.heal.addEventListener('click', () => cluster.heal());
    this.loss.addEventListener('input', () => {
      cluster.setLoss(Number(this.loss.value) / 100);
      this.lossOut.value = `${this.loss.value}%`;
    });
    document.addEventListener('keydown', this.handleKey);
    this.applySpeed();
  }

  /** Refreshes labels and enabled states. */
  render(): void {
    const c = this.cluster;
    const halted = c.failure !== null;
    setText(this.playLabel, c.playing ? 'Pause' : 'Play');
    this.play.classList.toggle('is-paused', !c.playing);
    this.play.disabled = halted;
    this.stepButton.disabled = c.playing || halted;
    setText(this.clock, seconds(c.time));
    for (const b of [this.request, this.split, this.heal]) b.disabled = halted;
    const stats = c.sim.network.stats;
    let lost = 0;
    for (const n of stats.dropped.values()) lost += n;
    setText(this.traffic, `${count(stats.messages)} sent · ${count(stats.delivered)} delivered · ${count(lost)} lost`);
    this.renderRequest();
  }

  private togglePlay(): void {
    this.cluster.setPlaying(!this.cluster.playing);
  }

  private applySpeed(): void {
    const speed = speedOf(this.speed);
    this.cluster.speed = speed;
    const text = speedText(speed);
    this.speedOut.value = text;
    setAttr(this.speed, 'aria-valuetext', `${text} speed`);
  }

  private sendRequest(): void {
    const outcome = this.cluster.request();
    this.last = outcome.ok ? outcome.request : `Not sent: ${outcome.reason}.`;
  }

  private renderRequest(): void {
    const r = this.last;
    if (r === null) return;
    if (typeof r === 'string') {
      setText(this.requestStatus, r);
      setAttr(this.requestStatus, 'data-state', 'refused');
      setAttr(this.requestStatus, 'data-index', null);
      return;
    }
    // How many logs hold the request's entry: the leader commits it once a majority does.
    const holders = this.cluster.ids.filter((id) => {
      const s = this.cluster.node(id);
      const first = s.snapshot?.index ?? 0;
      // A compacted entry was committed, and it is this request's exactly when the request committed.
      return r.index <= first ? r.state === 'committed' : s.entries[r.index - first - 1]?.term === r.term;
    }).length;
    const where = `${r.label} at index ${r.index} (term ${r.term}, via ${r.leader})`;
    const text = r.state === 'committed' ? `${where}: committed, on ${holders} of ${this.cluster.ids.length} logs.`
      : r.state === 'lost' ? `${where}: lost, another entry won the index. Send it again.`
      : `${where}: on ${holders} of ${this.cluster.ids.length} logs, waiting for a majority.`;
    setText(this.requestStatus, text);
    setAttr(this.requestStatus, 'data-state', r.state);
    setAttr(this.requestStatus, 'data-index', String(r.index));
  }

  /** Single-key shortcuts, ignored while typing in a field or with a modifier held. */
  private readonly handleKey = (event: KeyboardEvent): void => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target instanceof HTMLElement ? event.target : null;
    if (target?.closest('input, textarea, select, [contenteditable="true"]')) return;
    // Space on a focused button already clicks it.
    if (event.key === ' ' && target?.closest('button, a')) return;
    const halted = this.cluster.failure !== null;
    switch (event.key) {
      case ' ': if (!halted) this.togglePlay(); break;
      case 'ArrowRight': this.cluster.step(); break;
      case 'r': case 'R': if (!halted) this.sendRequest(); break;
      case 'h': case 'H': if (!halted) this.cluster.heal(); break;
      case 'c': case 'C': this.nodes.toggleCrash(); break;
      case 'i': case 'I': this.nodes.toggleIsolation(); break;
      default: {
        const id = this.cluster.ids[Number(event.key) - 1];
        if (!/^[1-9]$/.test(event.key) || id === undefined) return;
        this.nodes.select(id);
      }
    }
    event.preventDefault();
  };
}
