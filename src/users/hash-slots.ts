/** Thrown when every hashing slot is busy and the queue is full. */
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

/** Gives back a hashing slot; calling it again does nothing. */
export type ReleaseSlot = () => void;

/**
 * Where a password check takes its slot: this process's {@link HashSlots}, or, under
 * `--workers`, the primary's, so that the bound is the machine's and not each worker's.
 */
export interface PasswordSlots {
  /** Resolves with a slot once one is free; rejects with {@link HashSlotsFull} at once when the queue is full. */
  acquire(): Promise<ReleaseSlot>;
}

/** Runs `work` in a slot of `slots`, waiting in the queue if need be; throws {@link HashSlotsFull}. */
export async function withSlot<T>(slots: PasswordSlots, work: () => Promise<T>): Promise<T> {
  const release = await slots.acquire();
  try {
    return await work();
  } finally {
    release();
  }
}

/**
 * Bounds password hashing. Argon2 is built to be expensive, so a flood of logins would otherwise
 * queue without end in libuv's thread pool and make every honest login wait behind it. With at
 * most `concurrency` hashes running and `queue` waiting, the excess is refused at once (503 with
 * `Retry-After`) and an honest login waits for at most a short queue.
 */
export class HashSlots implements PasswordSlots {
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

  acquire(): Promise<ReleaseSlot> {
    if (this.#running < this.#o.concurrency) {
      this.#running++;
      return Promise.resolve(this.#release());
    }
    if (this.#waiting.length >= this.#o.queue) return Promise.reject(new HashSlotsFull());
    // The slot is handed over by the releasing caller, so #running never dips in between.
    return new Promise((resolve) => this.#waiting.push(() => resolve(this.#release())));
  }

  /** Runs `work` in a slot, waiting in the queue if need be; throws {@link HashSlotsFull}. */
  run<T>(work: () => Promise<T>): Promise<T> {
    return withSlot(this, work);
  }

  #release(): ReleaseSlot {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    };
  }
}
