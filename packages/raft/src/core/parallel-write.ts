/**
 * When a node may send a Ready's messages and apply its committed entries before its write is durable.
 * @module
 */
import type { HardState, Ready } from './types.js';

/**
 * Whether this Ready's messages may be sent, and its committed entries applied, while its write is still
 * under way (Raft thesis §10.2.1: "the leader can write to its disk in parallel with replicating to
 * followers"). It holds for a leader whose term and vote are durable already and that installs no snapshot:
 * its messages then promise nothing about its own disk. Appends carry entries the leader is still writing;
 * a commit that counts the leader's own copy of them needs other voters' acknowledgements, so it becomes
 * visible only through a later Ready, which is handed out only after this one's write finished — unless the
 * leader alone is a quorum, which the last clause excludes. So every committed entry of such a Ready is
 * durable here already and on a quorum, and applying it (answering clients) need not wait for the write.
 * Everything else (votes, a follower's acknowledgements, a term first reached in this Ready) still waits,
 * as the contract says.
 *
 * `durable` is the hard state the node's storage holds before this Ready's write (null when none).
 */
export function mayOverlapWrite(rd: Ready, durable: HardState | null): boolean {
  if (rd.role !== 'leader' || rd.snapshot !== null || durable === null) return false;
  const hs = rd.hardState ?? durable;
  if (hs.term !== durable.term || hs.vote !== durable.vote) return false;
  // A leader that is a quorum by itself (a lone voter) commits its new entries in the very Ready that
  // carries them, and its Appends would tell learners so before the entries are on its disk.
  return rd.entries.length === 0 || hs.commit < rd.entries[0].index;
}
