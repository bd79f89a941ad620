/** The last `max` items per key, in order (per-host power actions in every PowerLog store). */
export class RecentByKey<T> {
  private readonly byKey = new Map<string, T[]>();

  constructor(private readonly max: number) {}

  add(key: string, item: T): void {
    const list = this.byKey.get(key) ?? [];
    list.push(item);
    if (list.length > this.max) list.splice(0, list.length - this.max);
    this.byKey.set(key, list);
  }

  get(key: string): T[] {
    return [...(this.byKey.get(key) ?? [])];
  }

  all(): T[] {
    return [...this.byKey.values()].flat();
  }
}
