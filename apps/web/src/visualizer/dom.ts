/**
 * DOM helpers. The views redraw every animation frame, so the setters write only when a value changes:
 * unchanged DOM costs no style recalculation and does not disturb screen readers.
 * @module
 */

const SVG_NS = 'http://www.w3.org/2000/svg';

type Attrs = Readonly<Record<string, string | number>>;

/** Creates an SVG element with attributes, appended to `parent` when given. */
export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Attrs = {}, parent?: Element): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  parent?.append(el);
  return el;
}

/** Creates an HTML element with a class, text and attributes, appended to `parent` when given. */
export function html<K extends keyof HTMLElementTagNameMap>(
  tag: K, options: { class?: string; text?: string; attrs?: Attrs } = {}, parent?: Element,
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (options.class) el.className = options.class;
  if (options.text !== undefined) el.textContent = options.text;
  for (const [name, value] of Object.entries(options.attrs ?? {})) el.setAttribute(name, String(value));
  parent?.append(el);
  return el;
}

/** The element with id `id`, checked to be a `type`; throws when the page lacks it. */
export function byId<T extends Element>(id: string, type: { new (): T; prototype: T }): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`the page has no ${type.name} #${id}`);
  return el;
}

/** Sets `el`'s text if it differs. */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/** Sets (or, with null, removes) an attribute if it differs. */
export function setAttr(el: Element, name: string, value: string | null): void {
  if (value === null) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== value) {
    el.setAttribute(name, value);
  }
}

/** Virtual milliseconds as seconds, e.g. `1.23 s`. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
