/**
 * Errors the simulator throws. Each names the simulation, its seed and the virtual time, and says how to
 * replay the run, because a failure found by a random schedule is only useful if it can be reproduced.
 * @module
 */

/** Where and when a simulated run failed. */
export interface RunInfo {
  /** The simulation's name (its `id` option). */
  simulation: string;
  seed: number;
  /** Virtual time in milliseconds. */
  now: number;
  /** The command that replays the run, e.g. `npm run chaos -- --seed 123`. */
  replay: string | undefined;
}

function describeRun(run: RunInfo): string {
  const replay = run.replay ?? `run the simulation again with seed ${run.seed} and the same options and actions`;
  return `simulation ${run.simulation}, seed ${run.seed}, at ${run.now} ms\n  replay: ${replay}`;
}

/** A misuse of the simulator or a core that broke the Ready cycle (threw, or never stopped having Readys). */
export class SimulationError extends Error {
  readonly seed: number;
  readonly simulation: string;
  readonly now: number;

  constructor(message: string, run: RunInfo, options?: { cause?: unknown }) {
    super(`${message}\n  ${describeRun(run)}`, options);
    this.name = 'SimulationError';
    this.seed = run.seed;
    this.simulation = run.simulation;
    this.now = run.now;
  }
}

/** A broken Raft safety property, with the paper section that states it. */
export class InvariantViolation extends Error {
  readonly property: string;
  readonly section: string;
  readonly detail: string;
  readonly seed: number;
  readonly simulation: string;
  readonly now: number;

  constructor(property: string, section: string, detail: string, run: RunInfo) {
    super(`${property} (${section}) violated: ${detail}\n  ${describeRun(run)}`);
    this.name = 'InvariantViolation';
    this.property = property;
    this.section = section;
    this.detail = detail;
    this.seed = run.seed;
    this.simulation = run.simulation;
    this.now = run.now;
  }
}
