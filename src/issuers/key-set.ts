import { invalidToken } from '../tokens/jws.js';
import type { Clock } from '../clock.js';
import { discoverIssuer } from './discovery.js';
import { fetchJson } from './fetch-json.js';
import { IssuerError } from './issuer-error.js';
import { importJwks, type IssuerKey } from './jwks.js';
import type { ExternalAlgorithm } from './algorithms.js';

export interface KeySetOptions {
  /** A key set older than this is fetched again before use (ms). */
  readonly refreshMs: number;
  /** At most one fetch per this long, whatever asks for it: an unknown `kid`, a failure (ms). */
  readonly cooldownMs: number;
  /** How long the last good keys keep serving while fetches fail, counted from that fetch (ms). */
  readonly staleMs: number;
  /** Each request (discovery, JWKS) is abandoned after this long (ms). */
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly maxKeys: number;
  readonly clock: Clock;
}

export const keySetDefaults = {
  refreshMs: 10 * 60_000,
  cooldownMs: 30_000,
  staleMs: 60 * 60_000,
  timeoutMs: 5_000,
  maxBytes: 1024 * 1024,
  maxKeys: 100,
} as const;

/** The longest `--trust-stale` accepted. */
export const maxStaleMs = 24 * 60 * 60_000;

/**
 * `pending`: no fetch finished yet; `ready`: keys from a fetch within the refresh interval;
 * `stale`: fetches fail, the last good keys still serve; `unavailable`: no usable keys (never
 * fetched, or stale beyond `--trust-stale`), so the issuer's tokens get 401.
 */
export type IssuerState = 'pending' | 'ready' | 'stale' | 'unavailable';

export interface IssuerStatus {
  readonly issuer: string;
  readonly state: IssuerState;
  readonly keys: number;
  /** When the keys in use were fetched (ms since the epoch). */
  readonly fetchedAt: number | undefined;
  /** Why the last fetch failed, when it did: an {@link IssuerError} code and message. */
  readonly error: { readonly code: string; readonly message: string } | undefined;
}

/**
 * Where an issuer's keys come from: discovery, a JWKS URL given with `--trust`, or a JWK Set
 * given in code (`createVerifier`).
 */
export type KeySource =
  | { readonly jwksUri: URL }
  | { readonly discover: true }
  | { readonly jwks: Record<string, unknown> };

/**
 * The verification keys of one trusted issuer. What jose's `createRemoteJWKSet` does (a cache
 * lifetime, a cooldown on unknown `kid`, a timeout), plus what it lacks: an injected clock (so
 * every rule here is tested without sleeping), bounded staleness while fetches fail, size and
 * count caps, algorithms bound to each key, discovery, and a state for `/readyz`.
 *
 * A fetched set replaces the previous one whole, so a key the issuer withdrew stops verifying at
 * the first good fetch without it. Keys belong to this issuer only: callers pick the key set by
 * the token's trusted `iss`, never by `kid` across issuers.
 */
export class IssuerKeySet {
  readonly issuer: string;
  private readonly source: KeySource;
  private readonly options: KeySetOptions;
  private keys: readonly IssuerKey[] = [];
  private jwksUri: URL | undefined;
  private fetchedAt: number | undefined;
  private attemptedAt: number | undefined;
  private lastError: IssuerError | undefined;
  private inflight: Promise<void> | undefined;

  constructor(issuer: string, source: KeySource, options: KeySetOptions) {
    this.issuer = issuer;
    this.source = source;
    this.options = options;
    if ('jwksUri' in source) this.jwksUri = source.jwksUri;
  }

  /**
   * Fetches the key set now unless a fetch is under way (then waits for it) or one started less
   * than the cooldown ago. Never throws: a failure is kept for {@link status}, and the previous
   * keys serve until they are too stale.
   */
  refresh(): Promise<void> {
    if (this.inflight) return this.inflight;
    const now = this.options.clock();
    if (this.attemptedAt !== undefined && now - this.attemptedAt < this.options.cooldownMs)
      return Promise.resolve();
    this.attemptedAt = now;
    this.inflight = this.fetchKeys().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async fetchKeys(): Promise<void> {
    const limits = { timeoutMs: this.options.timeoutMs, maxBytes: this.options.maxBytes };
    try {
      let keys: readonly IssuerKey[];
      if ('jwks' in this.source) {
        keys = importJwks(this.source.jwks, 'the given JWK Set', this.options.maxKeys).keys;
      } else {
        // Discovery is repeated until it succeeds once; its jwks_uri then stays for the process.
        const jwksUri = this.jwksUri ?? (await discoverIssuer(this.issuer, limits)).jwksUri;
        this.jwksUri = jwksUri;
        const document = await fetchJson(jwksUri, limits);
        ({ keys } = importJwks(
          document,
          `${jwksUri.origin}${jwksUri.pathname}`,
          this.options.maxKeys,
        ));
      }
      this.keys = keys;
      this.fetchedAt = this.options.clock();
      this.lastError = undefined;
    } catch (err) {
      this.lastError =
        err instanceof IssuerError
          ? err
          : new IssuerError('unreachable', `the keys of ${this.issuer} could not be read`, {
              cause: err,
            });
    }
  }

  /** Keys are usable within the refresh interval, or within `staleMs` while fetches fail. */
  private usable(now: number): boolean {
    if (this.fetchedAt === undefined) return false;
    return now - this.fetchedAt < Math.max(this.options.refreshMs, this.options.staleMs);
  }

  private candidates(kid: string | undefined, alg: ExternalAlgorithm): IssuerKey[] {
    if (kid === undefined) {
      // Without a kid only an unambiguous key will do.
      const matching = this.keys.filter((k) => k.algorithms.has(alg));
      return matching.length === 1 ? matching : [];
    }
    // A key published without a kid (a PEM given to createVerifier) may verify any kid.
    return this.keys.filter((k) => (k.kid === kid || k.kid === undefined) && k.algorithms.has(alg));
  }

  /**
   * The keys that may verify a token with this `kid` and `alg`, fetching first when the set is
   * due for refresh or the `kid` is unknown (within the cooldown). Throws `invalid_token` with
   * the reason as its cause when there is none.
   */
  async keysFor(kid: string | undefined, alg: ExternalAlgorithm): Promise<IssuerKey[]> {
    const due =
      this.fetchedAt === undefined ||
      this.options.clock() - this.fetchedAt >= this.options.refreshMs;
    if (due) await this.refresh();
    if (!this.usable(this.options.clock())) throw invalidToken('issuer keys unavailable');
    let found = this.candidates(kid, alg);
    if (found.length > 0) return found;
    if (kid !== undefined && this.keys.some((k) => k.kid === kid))
      throw invalidToken('algorithm not allowed for this key');
    // An unknown kid may be a key the issuer just rotated in.
    await this.refresh();
    if (!this.usable(this.options.clock())) throw invalidToken('issuer keys unavailable');
    found = this.candidates(kid, alg);
    if (found.length === 0) throw invalidToken('unknown key');
    return found;
  }

  status(): IssuerStatus {
    const now = this.options.clock();
    let state: IssuerState;
    if (!this.usable(now))
      state = this.fetchedAt === undefined && !this.lastError ? 'pending' : 'unavailable';
    else state = this.lastError ? 'stale' : 'ready';
    return {
      issuer: this.issuer,
      state,
      keys: this.keys.length,
      fetchedAt: this.fetchedAt,
      error: this.lastError && { code: this.lastError.code, message: this.lastError.message },
    };
  }
}
