/**
 * A tiny typed event emitter: Node's `events` is not available in browsers and the library takes no
 * dependencies. The map type `M` names each event and its listener's signature.
 * @module
 */

/** An event map: event name → listener signature. Written as a mapped type so interfaces satisfy it. */
export type EventMap<M> = { [K in keyof M]: (...args: any[]) => void };

/** Typed `on`/`once`/`off`/`emit`. A listener that throws is reported as an `error` event, never to the emitter. */
export class TypedEmitter<M extends EventMap<M>> {
  private readonly listeners = new Map<keyof M, Set<(...args: any[]) => void>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof M>(event: K, listener: M[K]): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Adds a listener that runs once. */
  once<K extends keyof M>(event: K, listener: M[K]): () => void {
    const wrapped = ((...args: Parameters<M[K]>) => { off(); listener(...args); }) as M[K];
    const off = this.on(event, wrapped);
    return off;
  }

  off<K extends keyof M>(event: K, listener: M[K]): void {
    this.listeners.get(event)?.delete(listener);
  }

  /** Number of listeners of `event`. */
  listenerCount<K extends keyof M>(event: K): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  protected emit<K extends keyof M>(event: K, ...args: Parameters<M[K]>): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const l of [...set]) {
      try {
        l(...args);
      } catch (err) {
        // A listener's bug must not break the node's loop; an error listener's own bug is dropped.
        if (event !== 'error') this.emit('error' as K, ...([err] as unknown as Parameters<M[K]>));
      }
    }
  }
}
