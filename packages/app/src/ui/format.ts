/** Small formatting helpers shared by the screens. @module */

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const secondsFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** `14:05`: the message list's time. */
export const clockTime = (ms: number): string => timeFormat.format(ms);

/** `14:05:09`: the event log's time (elections follow each other within seconds). */
export const clockSeconds = (ms: number): string => secondsFormat.format(ms);

/** The whole date and time, for a `title` or `dateTime`. */
export const fullTime = (ms: number): string => fullFormat.format(ms);

/** `0.4 ms`, `12 ms`, or `–` before the first measure. */
export function rtt(ms: number | null): string {
  if (ms === null) return '–';
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

/** The first letter of a name, for its avatar. */
export const initial = (name: string): string => (name.trim()[0] ?? '?').toUpperCase();

/**
 * A stable colour class (`tint-0` … `tint-7`) for a peer id, so each person keeps a colour on every screen.
 * Classes rather than inline styles: the content security policy allows only the app's own stylesheet.
 */
export function tint(id: string): string {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return `tint-${h % 8}`;
}
