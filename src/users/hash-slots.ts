/** Thrown by {@link HashSlots.run} when every slot is busy and the queue is full. */
export class HashSlotsFull extends Error {
  constructor() {
    super('Password hashing is saturated');
    this.name = 'HashSlotsFull';
  }
}

export interface HashSlotsOptions {
  /** Hashes computed at once. */
  readonly concurrency: number;
  /** Callers that may wait for a slot; one more is refused at once. */
  readonly queue: number;
}

/**
 * Bounds password hashing. Argon2 is built to be expensive, so a flood of logins would otherwise
 * queue without end in libuv's thread pool and make every honest login wait behind it. With at
 * most `concurrency` hashes running and `queue` waiting, the excess is refused at once (503 with
 * `Retry-After`) and an honest login waits for at most a short queue.
 */
export class HashSlots {
  readonly #o: HashSlotsOptions;
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(options: HashSlotsOptions) {
    this.#o = options;
  }

  /** Hashes running now. */
  get running(): number {
    return this.#running;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Runs `work` in a slot, waiting in the queue if need be; throws {@link HashSlotsFull}. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#o.concurrency) {
      if (this.#waiting.length >= this.#o.queue) throw new HashSlotsFull();
      // The slot is handed over by the finishing caller, so #running never dips in between.
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}
