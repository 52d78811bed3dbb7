import type { ClientRequest, IncomingMessage } from 'node:http';
import { rootCertificates } from 'node:tls';
import WebSocket from 'ws';
import type { UpstreamRequest } from './upstream-request.js';

/** Why an upstream could not be reached; reported in metrics and logs, never to the client. */
export type DialFailure = 'unreachable' | 'refused' | 'timeout' | 'tls' | 'aborted';

export class DialError extends Error {
  constructor(
    readonly reason: DialFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DialError';
  }
}

export interface DialOptions {
  /** The whole handshake, connect to 101; then the dial fails with `timeout`. */
  readonly timeoutMs: number;
  /** Extra PEM CA certificates trusted for `wss://` upstreams, beside the system roots. */
  readonly ca?: readonly string[];
  /** Aborts the dial (the client left). */
  readonly signal?: AbortSignal;
  /** Largest message accepted from the upstream. */
  readonly maxPayload?: number;
}

export const defaultDialTimeoutMs = 5000;

const tlsErrors = /CERT|SELF_SIGNED|UNABLE_TO_|HOSTNAME|ERR_TLS|SSL/;

const ignoreError = (): void => undefined;

/** An open upstream socket and the subprotocol the upstream chose (`''` for none). */
export interface DialedUpstream {
  readonly socket: WebSocket;
  readonly protocol: string;
}

/**
 * Opens the upstream leg of a proxied socket. Resolves with the socket open but paused, so that
 * no frame is read before the pipe listens; `resume()` it once attached. Rejects with a
 * {@link DialError}. Nothing is compressed, so frames pass unchanged; pings are not answered by
 * `ws`, so they can pass through too.
 */
export function dialUpstream(
  request: UpstreamRequest,
  options: DialOptions,
): Promise<DialedUpstream> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new DialError('aborted', 'The client left before the upstream was dialled'));
      return;
    }
    const ca =
      options.ca === undefined || options.ca.length === 0
        ? undefined
        : [...rootCertificates, ...options.ca];
    const ws = new WebSocket(request.url, [...request.protocols], {
      headers: { ...request.headers },
      perMessageDeflate: false,
      autoPong: false,
      followRedirects: false,
      maxPayload: options.maxPayload ?? 100 * 1024 * 1024,
      ...(ca === undefined ? {} : { ca }),
    });
    let settled = false;
    const fail = (error: DialError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      ws.terminate();
      reject(error);
    };
    const onAbort = (): void =>
      fail(new DialError('aborted', 'The client left while the upstream was dialled'));
    const timer = setTimeout(
      () => fail(new DialError('timeout', `No upstream answer within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const onError = (err: NodeJS.ErrnoException): void => {
      const reason: DialFailure = tlsErrors.test(err.code ?? '') ? 'tls' : 'unreachable';
      fail(
        new DialError(reason, `Upstream unreachable: ${err.code ?? err.message}`, { cause: err }),
      );
    };
    const onRefused = (_req: ClientRequest, res: IncomingMessage): void => {
      res.resume();
      fail(new DialError('refused', `Upstream answered ${res.statusCode ?? 0} to the upgrade`));
    };
    ws.on('error', onError);
    ws.on('unexpected-response', onRefused);
    // A server may choose none of the offered subprotocols, which `ws` would refuse: the choice,
    // none included, is the client's to judge (a browser that offered some fails then, as it
    // would against the upstream itself). It is read here, and an absent one stands in as the
    // first offer for `ws`'s check.
    let protocol = '';
    ws.once('upgrade', (res) => {
      const chosen = res.headers['sec-websocket-protocol'];
      if (chosen !== undefined) protocol = chosen;
      else if (request.protocols.length > 0)
        res.headers['sec-websocket-protocol'] = request.protocols[0];
    });
    ws.once('open', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      // The dial's listeners go: they would keep the upstream request (its headers, the identity
      // token) for the socket's whole life. Errors from now on are the pipe's; one listener that
      // holds nothing stays, so that none is ever unhandled.
      ws.off('error', onError);
      ws.off('unexpected-response', onRefused);
      ws.on('error', ignoreError);
      ws.pause();
      resolve({ socket: ws, protocol });
    });
  });
}
