// Time, in two kinds that must not be mixed up:
//   wall   milliseconds since the epoch, for what is stored or shown (a ball's createdMs, an
//          event's time, a peer's last heartbeat as a date). NTP or an operator may step it.
//   mono   a monotonic count of milliseconds, for every duration and deadline inside a process
//          (heartbeat ages, the down grace, throttles, upload lifetimes, read grace). It never
//          steps, so a wall clock jumping +10 s marks no peer down and one jumping back stalls
//          nothing.
// Roles take a Clock so a test can step either kind on its own (SteppedClock).

export interface Clock {
  /** Wall-clock time: milliseconds since the epoch. */
  wallMs(): number;
  /** Monotonic time: milliseconds since some fixed point in this process; only grows. */
  monoMs(): number;
}

export const systemClock: Clock = {
  wallMs: () => Date.now(),
  monoMs: () => performance.now(),
};

/**
 * A clock a test moves by hand: `advance` moves both kinds (time passing), `stepWall` moves only
 * the wall clock (NTP or an operator setting the date), forwards or back.
 */
export class SteppedClock implements Clock {
  private wall: number;
  private mono = 0;

  constructor(wallStartMs = 1_700_000_000_000) {
    this.wall = wallStartMs;
  }

  wallMs(): number {
    return this.wall;
  }

  monoMs(): number {
    return this.mono;
  }

  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`time only moves forward; got ${ms} ms`);
    this.wall += ms;
    this.mono += ms;
  }

  stepWall(ms: number): void {
    this.wall += ms;
  }
}

/**
 * Deadlines that outlive a process are kept in the catalog as wall-clock times. While the SPM
 * runs it reads them against this clock: the wall time at its start plus the monotonic time
 * since, so a wall clock stepped while it runs moves no deadline. A restart re-anchors to the
 * wall clock of that moment (and the SPM then gives uploads under way a fresh lifetime).
 */
export function anchoredWallMs(clock: Clock): () => number {
  const wallAtStartMs = clock.wallMs();
  const monoAtStartMs = clock.monoMs();
  return () => Math.floor(wallAtStartMs + (clock.monoMs() - monoAtStartMs));
}
