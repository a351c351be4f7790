import type { FastifyReply } from 'fastify';
import { TesseraError } from '../errors.ts';

/**
 * Stopping a replica without failing what it accepted. Once the drain begins, every new
 * request (on a new connection or a kept-alive one) is answered 503 SHUTTING_DOWN with
 * `Retry-After` and `Connection: close`, so clients and load balancers move to another
 * replica, while the requests already admitted run to their normal answers. The listener
 * stays open until those are done: a request that arrives meanwhile gets our 503 rather
 * than a refused or reset connection. Only then does the caller close the server.
 */
export class Drain {
  private draining = false;
  private inFlight = 0;
  private idle: (() => void) | undefined;

  get closing(): boolean {
    return this.draining;
  }

  /** Counts the request in until its response is finished or abandoned; SHUTTING_DOWN once draining. */
  admit(reply: FastifyReply): void {
    if (this.draining) {
      throw new TesseraError('SHUTTING_DOWN', 'this server is stopping; retry on another replica', {
        headers: { 'retry-after': '1', connection: 'close' },
      });
    }
    this.inFlight++;
    // 'close' comes after the answer is sent and also when the client goes away first.
    reply.raw.once('close', () => {
      this.inFlight--;
      if (this.inFlight === 0) this.idle?.();
    });
  }

  /** Refuses new requests from now on; resolves once every admitted one is done. */
  begin(): Promise<void> {
    this.draining = true;
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => (this.idle = resolve));
  }
}
