export interface Deadline<T> {
  readonly at: number;
  readonly item: T;
}

/**
 * A min-heap of deadlines: one queue and one timer for every socket, instead of a `setTimeout`
 * per socket per token. Entries are never removed in place; a caller whose deadline moved pushes
 * a new entry and ignores the stale one when it comes out.
 */
export class DeadlineQueue<T> {
  readonly #heap: Deadline<T>[] = [];

  get size(): number {
    return this.#heap.length;
  }

  /** The earliest deadline, or undefined when empty. */
  peek(): number | undefined {
    return this.#heap[0]?.at;
  }

  push(at: number, item: T): void {
    this.#heap.push({ at, item });
    let i = this.#heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#at(parent) <= at) break;
      this.#swap(i, parent);
      i = parent;
    }
  }

  /** Removes and returns every entry due at `now`, earliest first. */
  popDue(now: number): Deadline<T>[] {
    const due: Deadline<T>[] = [];
    while (this.#heap.length > 0 && this.#at(0) <= now) due.push(this.#pop());
    return due;
  }

  #at(i: number): number {
    return (this.#heap[i] as Deadline<T>).at;
  }

  #swap(i: number, j: number): void {
    const heap = this.#heap;
    [heap[i], heap[j]] = [heap[j] as Deadline<T>, heap[i] as Deadline<T>];
  }

  #pop(): Deadline<T> {
    const heap = this.#heap;
    const top = heap[0] as Deadline<T>;
    const last = heap.pop() as Deadline<T>;
    if (heap.length === 0) return top;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < heap.length && this.#at(l) < this.#at(smallest)) smallest = l;
      if (r < heap.length && this.#at(r) < this.#at(smallest)) smallest = r;
      if (smallest === i) return top;
      this.#swap(i, smallest);
      i = smallest;
    }
  }
}
