import { systemClock, type Clock } from '../clock.js';
import {
  mapExternalAccessToken,
  type ClaimMapping,
  type ExternalIdentity,
} from './access-token.js';
import { verifyExternalJwt } from './external-jwt.js';
import { IssuerError } from './issuer-error.js';
import { checkIssuerUrl } from './issuer-url.js';
import {
  IssuerKeySet,
  keySetDefaults,
  maxStaleMs,
  type IssuerStatus,
  type KeySetOptions,
} from './key-set.js';
import { checkLogoutToken, type LogoutRequest } from './logout-token.js';

/** One `--trust` value: an issuer, with its JWKS URL when discovery is skipped. */
export interface TrustSpec {
  readonly issuer: string;
  readonly jwksUri?: string;
}

/**
 * Parses `--trust <issuer>` or `--trust <issuer>=<jwks-url>`. An issuer URL has no query (OIDC
 * Discovery §2), so the first `=` that is followed by a URL scheme splits the two. Throws an
 * {@link IssuerError} naming the bad part.
 */
export function parseTrustSpec(value: string): TrustSpec {
  const split = /^(.+?)=(https?:\/\/.+)$/.exec(value);
  const issuer = split ? (split[1] as string) : value;
  checkIssuerUrl(issuer, '--trust');
  if (!split) return { issuer };
  const jwksUri = split[2] as string;
  checkIssuerUrl(jwksUri, `--trust ${issuer}=`);
  return { issuer, jwksUri };
}

export interface TrustOptions extends ClaimMapping {
  /** `aud` values accepted on logout tokens: the client ids registered at the providers. */
  readonly backchannelAudiences: readonly string[];
  readonly clock?: Clock;
  /** Overrides of the key-set rules; the defaults are the documented ones. */
  readonly keySets?: Partial<Omit<KeySetOptions, 'clock'>>;
}

/**
 * The trusted external issuers of a deployment: one key set each, the access-token mapping and
 * the logout-token rules. Every node fetches its keys on its own; nothing here is shared.
 */
export class TrustedIssuers {
  private readonly keySets = new Map<string, IssuerKeySet>();
  private readonly options: TrustOptions;
  private readonly clock: Clock;
  private timer: NodeJS.Timeout | undefined;
  readonly refreshMs: number;

  constructor(specs: readonly TrustSpec[], options: TrustOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    const keySetOptions: KeySetOptions = {
      ...keySetDefaults,
      ...options.keySets,
      clock: this.clock,
    };
    if (keySetOptions.staleMs > maxStaleMs) throw new RangeError('--trust-stale is at most 24 h');
    this.refreshMs = keySetOptions.refreshMs;
    for (const spec of specs) {
      if (this.keySets.has(spec.issuer)) continue;
      const source =
        spec.jwksUri === undefined
          ? { discover: true as const }
          : { jwksUri: checkIssuerUrl(spec.jwksUri, `--trust ${spec.issuer}=`) };
      this.keySets.set(spec.issuer, new IssuerKeySet(spec.issuer, source, keySetOptions));
    }
  }

  get size(): number {
    return this.keySets.size;
  }

  has(issuer: string): boolean {
    return this.keySets.has(issuer);
  }

  issuers(): string[] {
    return [...this.keySets.keys()];
  }

  /**
   * Fetches every issuer's keys once, in parallel. Resolves whether or not they answered (an
   * unreachable issuer does not stop a server: its tokens get 401 until its keys arrive), but
   * rejects when an issuer is misconfigured — its metadata names another issuer, or its
   * `jwks_uri` breaks the https rule — which no retry will fix.
   */
  async start(): Promise<void> {
    await Promise.all([...this.keySets.values()].map((k) => k.refresh()));
    for (const status of this.statuses()) {
      const code = status.error?.code;
      if (code === 'issuer_mismatch' || code === 'insecure_url')
        throw new IssuerError(code, status.error?.message ?? code);
    }
  }

  /** Refreshes every key set each refresh interval in the background, so handshakes rarely wait. */
  startRefreshing(): void {
    if (this.timer || this.keySets.size === 0) return;
    this.timer = setInterval(() => {
      for (const keySet of this.keySets.values()) void keySet.refresh();
    }, this.refreshMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Each issuer's key-set state, for `/readyz` and the log. */
  statuses(): IssuerStatus[] {
    return [...this.keySets.values()].map((k) => k.status());
  }

  private keySetOf = (issuer: string): IssuerKeySet | undefined => this.keySets.get(issuer);

  /** Verifies an external access token and maps its claims; every failure is a `WsgateError`. */
  async verifyAccessToken(token: string): Promise<ExternalIdentity> {
    const verified = await verifyExternalJwt(token, this.keySetOf);
    return mapExternalAccessToken(token, verified, this.options, this.clock());
  }

  /** Verifies a back-channel logout token, all but the replay check. */
  async verifyLogoutToken(token: string): Promise<LogoutRequest> {
    const verified = await verifyExternalJwt(token, this.keySetOf);
    return checkLogoutToken(verified, this.options.backchannelAudiences, this.clock());
  }
}
