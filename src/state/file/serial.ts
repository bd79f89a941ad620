/**
 * Write-through of a whole in-memory document: requests made while a write runs coalesce into one
 * more write of the latest state, so a burst of changes costs two writes, and every request resolves
 * only after a write that started after it.
 */
export class SerialWriter {
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  constructor(private readonly write: () => Promise<void>) {}

  request(): Promise<void> {
    if (!this.running) {
      this.running = this.write().finally(() => { this.running = undefined; });
      return this.running;
    }
    this.next ??= this.running.catch(() => undefined).then(() => {
      this.next = undefined;
      return this.request();
    });
    return this.next;
  }

  async idle(): Promise<void> {
    await this.next?.catch(() => undefined);
    await this.running?.catch(() => undefined);
  }
}
