/**
 * Raw TCP WebSocket plumbing for tests that speak hand-written bytes to the gate over `node:net`:
 * a recording client, HTTP head and frame parsing, and handshake and frame building.
 */
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';

/** How long any single raw exchange may take before the test gives up waiting. */
export const waitMs = 2000;

/** A raw TCP client that records everything the server sends and whether it ended the stream. */
export interface RawClient {
  readonly socket: Socket;
  /** Every byte received so far. */
  received(): Buffer;
  /** True once the server ended or the socket closed (reset included). */
  readonly ended: boolean;
  /** Resolves true when `done()` holds, false when the socket ended first or `ms` passed. */
  waitFor(done: () => boolean, ms?: number): Promise<boolean>;
  /** Resolves when the socket has ended (true) or `ms` passed (false). */
  waitForEnd(ms?: number): Promise<boolean>;
  /** Resolves when the socket has fully closed (true) or `ms` passed (false). */
  waitForClose(ms?: number): Promise<boolean>;
  /** Writes unless the socket is already gone. */
  write(data: Buffer | string): void;
  /** Drops the socket. */
  destroy(): void;
}

/** Opens a raw TCP connection to 127.0.0.1:`port` and resolves once it is connected. */
export function openRaw(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    let closed = false;
    const listeners = new Set<() => void>();
    const notify = () => {
      for (const l of [...listeners]) l();
    };
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      notify();
    });
    socket.on('end', () => {
      ended = true;
      notify();
    });
    socket.on('close', () => {
      ended = true;
      closed = true;
      notify();
    });
    // A reset from the server (terminate), or EPIPE / ECONNRESET on writes after the server hung
    // up, is an expected way for these exchanges to end.
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      const wait = (done: () => boolean, ms: number, stopOnEnd: boolean) =>
        new Promise<boolean>((res) => {
          const check = () => {
            if (done()) return finish(true);
            if (stopOnEnd && ended) return finish(false);
          };
          const timer = setTimeout(() => finish(done()), ms);
          function finish(value: boolean): void {
            clearTimeout(timer);
            listeners.delete(check);
            res(value);
          }
          listeners.add(check);
          check();
        });
      const client: RawClient = {
        socket,
        received: () => Buffer.concat(chunks),
        get ended() {
          return ended;
        },
        waitFor: (done, ms = waitMs) => wait(done, ms, true),
        waitForEnd: (ms = waitMs) => client.waitFor(() => ended, ms),
        waitForClose: (ms = waitMs) => wait(() => closed, ms, false),
        write(data) {
          if (!socket.destroyed && socket.writable) socket.write(data);
        },
        destroy() {
          socket.destroy();
        },
      };
      resolve(client);
    });
    socket.once('error', reject);
  });
}

/** A parsed HTTP response head. */
export interface HttpHead {
  readonly statusLine: string;
  readonly status: number;
  readonly headers: Record<string, string>;
  /** The raw head, status line to the blank line included. */
  readonly raw: string;
  /** Length in bytes of the head, blank line included. */
  readonly length: number;
  /** Bytes after the head: an HTTP body, or WebSocket frames after a 101. */
  readonly rest: Buffer;
}

const crlf2 = Buffer.from('\r\n\r\n');

/** Parses the HTTP response head at the start of `bytes`, or undefined while it is incomplete. */
export function parseHead(bytes: Buffer): HttpHead | undefined {
  const end = bytes.indexOf(crlf2);
  if (end === -1) return undefined;
  const raw = bytes.subarray(0, end + 4).toString('latin1');
  const [statusLine = '', ...lines] = raw.slice(0, -4).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon === -1) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  return { statusLine, status, headers, raw, length: end + 4, rest: bytes.subarray(end + 4) };
}

/** A fresh random Sec-WebSocket-Key. */
export function newKey(): string {
  return randomBytes(16).toString('base64');
}

/** Turns a string into the bytes a client would send, written as latin1 (UTF-8 for non-ASCII). */
export function wire(value: string): string {
  return Buffer.from(value, 'utf8').toString('latin1');
}

/** An HTTP/1.1 request head (no body); headers are sent in order, exactly as given. */
export function requestHead(
  method: string,
  target: string,
  headers: Iterable<readonly [string, string]>,
): string {
  let out = `${method} ${target} HTTP/1.1\r\n`;
  for (const [name, value] of headers) out += `${name}: ${value}\r\n`;
  return `${out}\r\n`;
}

/** The handshake headers a well-behaved client sends, host first. */
function upgradeHeaders(host: string): [string, string][] {
  return [
    ['host', host],
    ['upgrade', 'websocket'],
    ['connection', 'Upgrade'],
    ['sec-websocket-version', '13'],
    ['sec-websocket-key', newKey()],
  ];
}

/** A handshake request to 127.0.0.1; `headers` override the defaults in place, `null` drops one. */
export function handshake(
  target: string,
  headers: Record<string, string | null> = {},
  method = 'GET',
): string {
  const all: Record<string, string | null> = {
    ...Object.fromEntries(upgradeHeaders('127.0.0.1')),
    ...headers,
  };
  const present = Object.entries(all).flatMap(([name, value]): [string, string][] =>
    value === null ? [] : [[name, value]],
  );
  return requestHead(method, target, present);
}

/** A handshake request as bytes; `headers` follow the defaults in order, values sent via `wire`. */
export function handshakeBytes(
  target: string,
  host: string,
  headers: [string, string][] = [],
): Buffer {
  const extra = headers.map(([name, value]): [string, string] => [name, wire(value)]);
  return Buffer.from(
    requestHead('GET', wire(target), [...upgradeHeaders(host), ...extra]),
    'latin1',
  );
}

/** WebSocket opcodes used by the tests. */
export const op = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** A client frame: masked unless told otherwise; `length` may lie about the payload size. */
export function frame(
  opcode: number,
  payload: Buffer | string,
  options: { fin?: boolean; mask?: boolean; length?: number } = {},
): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const fin = options.fin ?? true;
  const mask = options.mask ?? true;
  const length = options.length ?? data.length;
  let header: Buffer;
  if (length < 126) {
    header = Buffer.alloc(2);
    header[1] = length;
  } else if (length < 65536) {
    header = Buffer.alloc(4);
    header[1] = 126;
    header.writeUInt16BE(length, 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  header[0] = (fin ? 0x80 : 0) | opcode;
  if (!mask) return Buffer.concat([header, data]);
  header[1] = (header[1] ?? 0) | 0x80;
  const key = randomBytes(4);
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = (data[i] ?? 0) ^ (key[i % 4] ?? 0);
  return Buffer.concat([header, key, masked]);
}

/** A frame as the server sent it. */
export interface ServerFrame {
  readonly fin: boolean;
  readonly opcode: number;
  readonly payload: Buffer;
}

/**
 * Parses the complete (unmasked, server-sent) frames at the start of `bytes`; with
 * `assertUnmasked`, fails the test on any frame header that has the mask bit set.
 */
export function parseFrames(bytes: Buffer, assertUnmasked = false): ServerFrame[] {
  const frames: ServerFrame[] = [];
  let at = 0;
  while (bytes.length - at >= 2) {
    const b0 = bytes[at] ?? 0;
    const b1 = bytes[at + 1] ?? 0;
    let length = b1 & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      if (bytes.length < offset + 2) break;
      length = bytes.readUInt16BE(offset);
      offset += 2;
    } else if (length === 127) {
      if (bytes.length < offset + 8) break;
      length = Number(bytes.readBigUInt64BE(offset));
      offset += 8;
    }
    if (assertUnmasked) assert.equal(b1 & 0x80, 0, 'server frames must not be masked');
    if (bytes.length < offset + length) break;
    frames.push({
      fin: (b0 & 0x80) !== 0,
      opcode: b0 & 0x0f,
      payload: bytes.subarray(offset, offset + length),
    });
    at = offset + length;
  }
  return frames;
}

/** The frames `client` has received after the HTTP response head (none before the head). */
export function framesAfterHead(client: RawClient): ServerFrame[] {
  const head = parseHead(client.received());
  return head ? parseFrames(client.received().subarray(head.length)) : [];
}

/** The close code of a close frame: its first two payload bytes, big-endian. */
export function closeCodeOf(f: ServerFrame): number | undefined {
  return f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined;
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `done` until it holds or `ms` pass; returns its last value. */
export async function eventually(done: () => boolean, ms = waitMs): Promise<boolean> {
  const until = Date.now() + ms;
  while (!done() && Date.now() < until) await delay(10);
  return done();
}
