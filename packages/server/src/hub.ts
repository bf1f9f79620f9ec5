/**
 * Channels and presence of one server: who is subscribed to what, and fan-out of publications, joins and
 * leaves. In memory, one process (a deployment that needs more points clients at a Centrifugo cluster; see
 * docs/signaling.md).
 * @module
 */
import type { ClientInfo, Push } from './protocol.js';

/** A subscription of one connection to one channel, as the hub sees it. */
export interface Subscriber {
  readonly info: ClientInfo;
  /** Sends an encoded frame (one push) to the subscriber's connection. */
  send(frame: string): void;
}

/** Presence counts of a channel, as in Centrifugo's `presence_stats` reply. */
export interface PresenceStats {
  readonly numClients: number;
  readonly numUsers: number;
}

function encodePush(push: Push): string {
  return JSON.stringify({ push });
}

/** The channel registry. */
export class Hub {
  private readonly channels = new Map<string, Map<string, Subscriber>>();
  private subscriptions = 0;

  /** `onVacated` is called when the last subscriber of a channel leaves. */
  constructor(private readonly onVacated: (channel: string) => void = () => {}) {}

  /** Adds `sub` to `channel` and pushes a join to the channel's other subscribers. */
  subscribe(channel: string, sub: Subscriber): void {
    let subs = this.channels.get(channel);
    if (!subs) {
      subs = new Map();
      this.channels.set(channel, subs);
    }
    const frame = encodePush({ channel, join: { info: sub.info } });
    for (const other of subs.values()) other.send(frame);
    subs.set(sub.info.client, sub);
    this.subscriptions++;
  }

  /** Removes client `client` from `channel` and pushes a leave to the rest. Returns whether it was subscribed. */
  unsubscribe(channel: string, client: string): boolean {
    const subs = this.channels.get(channel);
    const sub = subs?.get(client);
    if (!subs || !sub) return false;
    subs.delete(client);
    this.subscriptions--;
    if (subs.size === 0) {
      this.channels.delete(channel);
      this.onVacated(channel);
      return true;
    }
    const frame = encodePush({ channel, leave: { info: sub.info } });
    for (const other of subs.values()) other.send(frame);
    return true;
  }

  /** Delivers a publication to every subscriber of `channel`, the publisher included (as Centrifugo does). Returns how many got it. */
  publish(channel: string, data: unknown, info: ClientInfo): number {
    const subs = this.channels.get(channel);
    if (!subs) return 0;
    const frame = encodePush({ channel, pub: { data, info } });
    for (const sub of subs.values()) sub.send(frame);
    return subs.size;
  }

  /** Presence of `channel`: client id → client info. */
  presence(channel: string): Record<string, ClientInfo> {
    const out: Record<string, ClientInfo> = {};
    for (const [client, sub] of this.channels.get(channel) ?? []) out[client] = sub.info;
    return out;
  }

  /** Presence counts of `channel`. */
  stats(channel: string): PresenceStats {
    const subs = this.channels.get(channel);
    if (!subs) return { numClients: 0, numUsers: 0 };
    const users = new Set<string>();
    for (const sub of subs.values()) users.add(sub.info.user);
    return { numClients: subs.size, numUsers: users.size };
  }

  /** Whether user `user` has a subscription to `channel`. */
  hasUser(channel: string, user: string): boolean {
    for (const sub of this.channels.get(channel)?.values() ?? []) if (sub.info.user === user) return true;
    return false;
  }

  /** Channels with at least one subscriber. */
  get channelCount(): number {
    return this.channels.size;
  }

  /** Subscriptions over all channels. */
  get subscriptionCount(): number {
    return this.subscriptions;
  }
}
