/**
 * The event feed: elections, faults, network changes and client requests as they happen, newest first.
 * It is an ARIA log, so screen readers announce each event; messages are far too many to list here.
 * @module
 */
import { html } from './dom.js';
import type { ClusterEvent, ClusterSource } from './source.js';

/** Older events are dropped beyond this many. */
const KEEP = 60;

/** Shows `cluster`'s events in `list` as they happen. */
export function showEvents(list: HTMLOListElement, cluster: ClusterSource): void {
  cluster.onEvent((event: ClusterEvent) => {
    const item = html('li', { class: `event tone-${event.tone}` });
    html('time', { class: 'event-time', text: cluster.timeLabel(event.at) }, item);
    html('span', { class: 'event-text', text: event.text }, item);
    list.prepend(item);
    while (list.childElementCount > KEEP) list.lastElementChild?.remove();
  });
}
