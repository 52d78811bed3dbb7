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
  /**
   * Slots, running and waiting together, that callers naming one key (a client address) may
   * hold at once; one more is refused at once. Without it one address filled the whole queue and
   * every other client's login got 503. Default: no bound.
   */
  readonly perKey?: number;
}

/**
 * Password checks one client address may have running or waiting at once: enough for a few
 * people behind one NAT signing in together, far from the whole queue.
 */
export const hashSlotsPerAddress = 2;

/** Gives back a hashing slot; calling it again does nothing. */
export type ReleaseSlot = () => void;

/**
 * Where a password check takes its slot: this process's {@link HashSlots}, or, under
 * `--workers`, the primary's, so that the bound is the machine's and not each worker's.
 */
export interface PasswordSlots {
  /**
   * Resolves with a slot once one is free; rejects with {@link HashSlotsFull} at once when the
   * queue is full, or when `key` (a client address) holds its share already.
   */
  acquire(key?: string): Promise<ReleaseSlot>;
}

/** Runs `work` in a slot of `slots`, waiting in the queue if need be; throws {@link HashSlotsFull}. */
export async function withSlot<T>(
  slots: PasswordSlots,
  work: () => Promise<T>,
  key?: string,
): Promise<T> {
  const release = await slots.acquire(key);
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
  /** Slots held (running or waiting) per key, for keys that hold any. */
  readonly #held = new Map<string, number>();

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

  acquire(key?: string): Promise<ReleaseSlot> {
    if (key === undefined || this.#o.perKey === undefined) return this.#acquire();
    const held = this.#held.get(key) ?? 0;
    if (held >= this.#o.perKey) return Promise.reject(new HashSlotsFull());
    const slot = this.#acquire();
    this.#held.set(key, held + 1);
    const forget = () => {
      const left = (this.#held.get(key) ?? 1) - 1;
      if (left > 0) this.#held.set(key, left);
      else this.#held.delete(key);
    };
    return slot.then(
      (release) => {
        let released = false;
        return () => {
          if (released) return;
          released = true;
          forget();
          release();
        };
      },
      (err: unknown) => {
        forget();
        throw err;
      },
    );
  }

  #acquire(): Promise<ReleaseSlot> {
    if (this.#running < this.#o.concurrency) {
      this.#running++;
      return Promise.resolve(this.#release());
    }
    if (this.#waiting.length >= this.#o.queue) return Promise.reject(new HashSlotsFull());
    // The slot is handed over by the releasing caller, so #running never dips in between.
    return new Promise((resolve) => this.#waiting.push(() => resolve(this.#release())));
  }

  /** Runs `work` in a slot, waiting in the queue if need be; throws {@link HashSlotsFull}. */
  run<T>(work: () => Promise<T>, key?: string): Promise<T> {
    return withSlot(this, work, key);
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
