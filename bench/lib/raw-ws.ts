import { connect, type Socket } from 'node:net';

/**
 * A minimal WebSocket client over a raw TCP socket, for the load generator. It does the least a
 * client can do (a fixed key, a zero mask, no extensions), so that the core it runs on is spent
 * on the servers' answers and every server under test meets exactly the same client.
 */

export interface RawOpenOptions {
  readonly port: number;
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Local address to connect from (any of 127/8), to spread ephemeral ports. */
  readonly localAddress?: string;
}

/** A refused upgrade: the HTTP status the server answered with. */
export class UpgradeRefused extends Error {
  constructor(readonly status: number) {
    super(`upgrade refused with HTTP ${status}`);
  }
}

const fixedKey = 'dGhlIHNhbXBsZSBub25jZQ==';
const headerEnd = Buffer.from('\r\n\r\n');
const zeroMask = Buffer.alloc(4);

/** One frame's bytes as a client must send it: masked (with a zero key, so the payload is as is). */
export function clientFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const extra = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const head = Buffer.allocUnsafe(2 + extra + 4);
  head[0] = 0x80 | opcode;
  if (extra === 0) head[1] = 0x80 | length;
  else if (extra === 2) {
    head[1] = 0x80 | 126;
    head.writeUInt16BE(length, 2);
  } else {
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(length), 2);
  }
  zeroMask.copy(head, 2 + extra);
  return Buffer.concat([head, payload]);
}

const closeFrame = clientFrame(8, Buffer.from([0x03, 0xe8]));

export class RawWs {
  /** Called with each text frame the server sends; by default frames wait for {@link nextText}. */
  onText: (text: string) => void = (text) => this.#inbox.push(text);
  /** Called once when the connection ends, with the close code the server sent (1006 if none). */
  onClose: (code: number) => void = () => undefined;
  closeCode = 1006;
  /** Text frames answered automatically and not passed on, e.g. Engine.IO's ping `2` → `3`. */
  readonly replies = new Map<string, string>();
  readonly #socket: Socket;
  #buffer: Buffer = Buffer.alloc(0);
  readonly #inbox: string[] = [];
  #closed = false;

  private constructor(socket: Socket, rest: Buffer) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#data(chunk));
    socket.on('close', () => this.#end());
    socket.on('error', () => undefined);
    if (rest.length > 0) queueMicrotask(() => this.#data(rest));
  }

  /** Opens a WebSocket; rejects with {@link UpgradeRefused} when the server answers other than 101. */
  static open(options: RawOpenOptions): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const socket = connect({
        port: options.port,
        host: '127.0.0.1',
        noDelay: true,
        ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
      });
      let head: Buffer = Buffer.alloc(0);
      const fail = (err: Error) => {
        socket.destroy();
        reject(err);
      };
      const closedEarly = () =>
        fail(new Error('connection closed before the upgrade was answered'));
      const onData = (chunk: Buffer) => {
        head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
        const end = head.indexOf(headerEnd);
        if (end < 0) return;
        socket.off('data', onData);
        socket.off('error', fail);
        socket.off('close', closedEarly);
        const status = Number(head.subarray(9, 12).toString('latin1'));
        if (status !== 101) {
          socket.destroy();
          return reject(new UpgradeRefused(status));
        }
        resolve(new RawWs(socket, head.subarray(end + 4)));
      };
      socket.on('data', onData);
      socket.on('error', fail);
      socket.on('close', closedEarly);
      let request = `GET ${options.path} HTTP/1.1\r\nHost: 127.0.0.1:${options.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${fixedKey}\r\nSec-WebSocket-Version: 13\r\n`;
      for (const [name, value] of Object.entries(options.headers ?? {}))
        request += `${name}: ${value}\r\n`;
      socket.write(`${request}\r\n`);
    });
  }

  /** Resolves with the next text frame (or rejects if the socket closes first). */
  nextText(): Promise<string> {
    return new Promise((resolve, reject) => {
      const waiting = this.#inbox.shift();
      if (waiting !== undefined) return resolve(waiting);
      if (this.#closed) return reject(new Error(`closed with ${this.closeCode}`));
      const previousText = this.onText;
      const previousClose = this.onClose;
      this.onText = (text) => {
        this.onText = previousText;
        this.onClose = previousClose;
        resolve(text);
      };
      this.onClose = (code) => {
        this.onText = previousText;
        this.onClose = previousClose;
        previousClose(code);
        reject(new Error(`closed with ${code}`));
      };
    });
  }

  send(text: string): void {
    this.#socket.write(clientFrame(1, Buffer.from(text)));
  }

  /** Sends a close frame and ends the TCP connection, without waiting for the server's answer. */
  close(): void {
    if (this.#closed) return;
    this.#socket.end(closeFrame);
  }

  /** Drops the TCP connection with no close frame. */
  destroy(): void {
    this.#socket.destroy();
  }

  #data(chunk: Buffer): void {
    let buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      if (buffer.length < 2) break;
      const opcode = (buffer[0] as number) & 0x0f;
      let length = (buffer[1] as number) & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffer.length < 4) break;
        length = buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (buffer.length < 10) break;
        length = Number(buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (buffer.length < offset + length) break;
      const payload = buffer.subarray(offset, offset + length);
      buffer = buffer.subarray(offset + length);
      if (opcode === 1) {
        const text = payload.toString();
        const reply = this.replies.get(text);
        if (reply === undefined) this.onText(text);
        else this.send(reply);
      } else if (opcode === 8) {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.#socket.end();
      } else if (opcode === 9) this.#socket.write(clientFrame(10, Buffer.from(payload)));
    }
    this.#buffer = buffer;
  }

  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onClose(this.closeCode);
  }
}
