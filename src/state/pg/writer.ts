/**
 * Ordered writes for the small stores (served, discovered, power): one at a time, in the order given.
 * A write resolves once PostgreSQL has committed it; while the database is unreachable it is kept in
 * order and resolves at once ("queued"), and the queue is written when the link is back. A write the
 * database refuses for another reason rejects (a bug or bad data, never retried forever).
 */
import type { Logger } from '../../log.js';
import type { PgLink } from './link.js';

type Op = (link: PgLink) => Promise<unknown>;
interface Item { op: Op; what: string; done?: { resolve(): void; reject(e: unknown): void } }

const MAX_QUEUE = 50_000;

export class PgWriter {
  private items: Item[] = [];
  private running: Promise<void> | undefined;

  constructor(private readonly link: PgLink, private readonly logger: Logger) {
    link.onUp(() => this.kick());
  }

  write(what: string, op: Op): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.items.length >= MAX_QUEUE) {
        this.logger.error({ what }, 'state write dropped: too many writes waiting for the database');
        resolve();
        return;
      }
      this.items.push({ op, what, done: { resolve, reject } });
      if (!this.link.up) this.deferred();
      this.kick();
    });
  }

  get backlog(): number { return this.items.length; }

  /** The database is down: whoever waits is told "queued" now; the items stay. */
  private deferred(): void {
    for (const it of this.items) { it.done?.resolve(); delete it.done; }
  }

  private kick(): void {
    if (!this.link.up) return;
    // A write between the loop's last look and this finally found `running` still set: look again.
    this.running ??= this.run().finally(() => { this.running = undefined; if (this.items.length) this.kick(); });
  }

  private async run(): Promise<void> {
    while (this.items.length && this.link.up) {
      const it = this.items[0]!;
      try {
        await it.op(this.link);
        this.items.shift();
        it.done?.resolve();
      } catch (err) {
        if (this.link.failed(err)) {
          this.logger.warn({ what: it.what, queued: this.items.length }, 'state write queued until the database is back');
          this.deferred();
          return;
        }
        this.items.shift();
        this.logger.error({ err, what: it.what }, 'state write refused by the database');
        it.done?.reject(err);
      }
    }
  }

  async close(): Promise<void> {
    await this.running;
    if (this.items.length) this.logger.warn({ writes: this.items.length }, 'state writes not done at shutdown (database unreachable)');
  }
}
