/** Whether a message came from the hub's history (a replay) or was published while the stream was open. */
export type Arrival = 'replayed' | 'live';

/** Ids the hub issues: decimal integers that grow with every message it accepts. */
const HUB_ID = /^\d+$/;

/**
 * Tells replayed history from live messages on one connection. A connection opened without a
 * cursor replays nothing: all it carries is live. One that resumes (`earliest`, a chosen id, or
 * a reconnection with `Last-Event-ID`) first replays; the console then reads the hub's position
 * (its last event id, from `/stats`) and every message up to it is history. The first message
 * with a hub id past it ends the replay, and so do all after it. A Mercure publisher's own id
 * (not a number) says nothing about order: such a message takes the state of the connection
 * (replayed until a live one arrived). Messages published while the position is being read
 * count as replayed; it takes one request, so that is at most a few.
 *
 * Messages that arrive before the position is known wait (their rows are shown at once; only
 * the mark waits), in order.
 */
export class ReplayBoundary {
  private position: bigint | undefined;
  private live: boolean;
  private readonly waiting: { id: string | undefined; mark: (arrival: Arrival) => void }[] = [];

  constructor(resumed: boolean) {
    this.live = !resumed;
  }

  /** Sets the hub's position read after the connection opened; `undefined` when it could not be read (all is then live). */
  settle(lastEventId: string | undefined): void {
    if (lastEventId !== undefined && HUB_ID.test(lastEventId)) this.position = BigInt(lastEventId);
    else this.live = true;
    for (const { id, mark } of this.waiting.splice(0)) mark(this.arrivalOf(id));
  }

  /** Calls `mark` with the message's arrival, now or once the position is known. */
  classify(id: string | undefined, mark: (arrival: Arrival) => void): void {
    if (this.live || this.position !== undefined) mark(this.arrivalOf(id));
    else this.waiting.push({ id, mark });
  }

  private arrivalOf(id: string | undefined): Arrival {
    if (!this.live && this.position !== undefined && id !== undefined && HUB_ID.test(id) && BigInt(id) > this.position) this.live = true;
    return this.live ? 'live' : 'replayed';
  }
}
