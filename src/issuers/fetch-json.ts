import { IssuerError } from './issuer-error.js';

export interface FetchLimits {
  /** Abort the whole request, headers and body, after this long (ms). */
  readonly timeoutMs: number;
  /** Refuse a body larger than this many bytes, without reading the rest. */
  readonly maxBytes: number;
}

/**
 * GETs a JSON document from an issuer: no redirects (a redirect is how a key set gets swapped for
 * someone else's), a timeout over headers and body together, a size cap enforced while reading (a
 * lying or absent Content-Length does not help), and a JSON object or nothing.
 */
export async function fetchJson(url: URL, limits: FetchLimits): Promise<Record<string, unknown>> {
  const signal = AbortSignal.timeout(limits.timeoutMs);
  const where = `${url.origin}${url.pathname}`;
  let text: string;
  try {
    const response = await fetch(url, {
      redirect: 'manual',
      signal,
      headers: { accept: 'application/json' },
    });
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel();
      throw new IssuerError('redirect', `${where} answered with a redirect, which is not followed`);
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new IssuerError('http_status', `${where} answered ${response.status}`, {
        status: response.status,
      });
    }
    text = await readCapped(response, limits.maxBytes, where);
  } catch (err) {
    if (err instanceof IssuerError) throw err;
    if (signal.aborted)
      throw new IssuerError('timeout', `${where} did not answer within ${limits.timeoutMs} ms`);
    throw new IssuerError('unreachable', `${where} could not be fetched`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new IssuerError('not_json', `${where} did not return JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new IssuerError('not_json', `${where} did not return a JSON object`);
  return value as Record<string, unknown>;
}

async function readCapped(response: Response, maxBytes: number, where: string): Promise<string> {
  const tooLarge = () => new IssuerError('too_large', `${where} is larger than ${maxBytes} bytes`);
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel();
    throw tooLarge();
  }
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return new TextDecoder('utf-8', { fatal: false }).decode(Buffer.concat(chunks));
}
