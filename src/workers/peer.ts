/**
 * One end of the IPC between the primary and a worker: requests answered by the other end, and
 * bus messages. Both ends are wsgate processes of one deployment; what crosses is JSON (node:cluster's
 * default serialization), so every value sent must survive `JSON.stringify`.
 */

/** Where messages go and come from: a cluster worker's `process`, the primary's `Worker`, or a port. */
export interface Channel {
  send(message: WireMessage): void;
  onMessage(listener: (message: unknown) => void): void;
  /** Called once when the other end is gone. */
  onClose(listener: () => void): void;
}

export type WireMessage =
  | { readonly wsgate: 'req'; readonly id: number; readonly op: string; readonly args: unknown[] }
  | {
      readonly wsgate: 'res';
      readonly id: number;
      readonly value?: unknown;
      readonly error?: string;
    }
  | { readonly wsgate: 'bus'; readonly channel: string; readonly message: string };

/** Answers a request: returns its value (or a promise of it), throws to refuse it. */
export type Serve = (op: string, args: readonly unknown[]) => unknown;

/** A request the other end could not answer: the op is unknown, or its implementation threw. */
export class PeerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerError';
  }
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

export class Peer {
  readonly #channel: Channel;
  readonly #pending = new Map<number, Pending>();
  #serve: Serve;
  #onBus: ((channel: string, message: string) => void) | undefined;
  #nextId = 1;
  #closed = false;

  constructor(channel: Channel, serve: Serve = unknownOp) {
    this.#channel = channel;
    this.#serve = serve;
    channel.onMessage((message) => this.#receive(message));
    channel.onClose(() => this.#close());
  }

  /** What this end answers from now on. */
  serve(serve: Serve): void {
    this.#serve = serve;
  }

  /** Where bus messages from the other end go. */
  onBus(listener: (channel: string, message: string) => void): void {
    this.#onBus = listener;
  }

  get closed(): boolean {
    return this.#closed;
  }

  request(op: string, ...args: unknown[]): Promise<unknown> {
    if (this.#closed) return Promise.reject(new PeerError(`${op}: the other process is gone`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#send({ wsgate: 'req', id, op, args });
    });
  }

  bus(channel: string, message: string): void {
    this.#send({ wsgate: 'bus', channel, message });
  }

  #send(message: WireMessage): void {
    if (this.#closed) return;
    try {
      this.#channel.send(message);
    } catch {
      // The channel closed under us: onClose follows and fails what is pending.
    }
  }

  #receive(raw: unknown): void {
    if (typeof raw !== 'object' || raw === null) return;
    const message = raw as Partial<Record<string, unknown>>;
    switch (message.wsgate) {
      case 'req':
        if (typeof message.id === 'number' && typeof message.op === 'string')
          this.#answer(message.id, message.op, Array.isArray(message.args) ? message.args : []);
        return;
      case 'res': {
        const pending = typeof message.id === 'number' && this.#pending.get(message.id);
        if (!pending) return;
        this.#pending.delete(message.id as number);
        if (typeof message.error === 'string') pending.reject(new PeerError(message.error));
        else pending.resolve(message.value);
        return;
      }
      case 'bus':
        if (typeof message.channel === 'string' && typeof message.message === 'string')
          this.#onBus?.(message.channel, message.message);
        return;
      default:
      // Not ours (e.g. node:cluster's own messages).
    }
  }

  #answer(id: number, op: string, args: readonly unknown[]): void {
    let result: unknown;
    try {
      result = this.#serve(op, args);
    } catch (err) {
      return this.#send({ wsgate: 'res', id, error: errorText(op, err) });
    }
    if (result instanceof Promise) {
      result.then(
        (value: unknown) => this.#send({ wsgate: 'res', id, value }),
        (err: unknown) => this.#send({ wsgate: 'res', id, error: errorText(op, err) }),
      );
    } else this.#send({ wsgate: 'res', id, value: result });
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [, pending] of this.#pending) {
      pending.reject(new PeerError('the other process is gone'));
    }
    this.#pending.clear();
  }
}

function unknownOp(op: string): never {
  throw new PeerError(`unknown request ${op}`);
}

function errorText(op: string, err: unknown): string {
  return `${op}: ${err instanceof Error ? err.message : String(err)}`;
}
