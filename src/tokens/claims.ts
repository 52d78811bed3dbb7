/** The kinds of token wsgate issues. An access token never passes for a refresh token, or back. */
export type TokenType = 'access' | 'refresh';

/** JOSE `typ` header per token type; access tokens follow RFC 9068. */
export const headerTypes: Readonly<Record<TokenType, string>> = {
  access: 'at+jwt',
  refresh: 'refresh+jwt',
};

/** The claims of a verified wsgate token. */
export interface TokenClaims {
  readonly iss: string;
  readonly aud: string;
  /** The username. */
  readonly sub: string;
  readonly iat: number;
  readonly nbf: number;
  readonly exp: number;
  readonly jti: string;
  /** Session id; a refresh token family and every socket opened with its tokens share it. */
  readonly sid: string;
  /** Space-separated scopes (RFC 8693 form). */
  readonly scope: string;
  /** True only for an access token minted from a password login. */
  readonly fresh: boolean;
  /** `access` or `refresh`, as fastapi-jwt-auth names it. */
  readonly type: TokenType;
  /** Double-submit CSRF value, present on tokens delivered in cookies. */
  readonly csrf?: string;
  /**
   * Set on the claims of a trusted external issuer's access token (docs/identity-providers.md):
   * `iss` and `sub` are that issuer's, `sid` its `sid` (else the token's `jti`), and this says
   * who to show.
   */
  readonly external?: ExternalSubject;
}

/** What wsgate keeps of an external principal besides the claims it shares with its own tokens. */
export interface ExternalSubject {
  /** `<issuer host>:<name>`: what chat, presence and `X-Wsgate-User` show. */
  readonly displayName: string;
  /** The provider's `sid`, when the token had one (a back-channel logout names it). */
  readonly providerSid: string | undefined;
}

/** Largest token accepted; anything longer is refused before it is parsed. */
export const maxTokenLength = 8192;

/** The set of scopes in a space-separated `scope` string (RFC 6749 §3.3). */
export function parseScope(scope: string): Set<string> {
  return new Set(scope.split(' ').filter(Boolean));
}
