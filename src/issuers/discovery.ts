import { checkIssuerUrl } from './issuer-url.js';
import { fetchJson, type FetchLimits } from './fetch-json.js';
import { IssuerError } from './issuer-error.js';

/** What wsgate takes from an issuer's metadata: only where its keys are. */
export interface IssuerMetadata {
  readonly issuer: string;
  readonly jwksUri: URL;
  /** The document it came from, for messages and `/readyz`. */
  readonly source: 'openid-configuration' | 'oauth-authorization-server';
}

/** OpenID Connect Discovery 1.0 §4: the well-known path is appended to the issuer's path. */
export function openIdConfigurationUrl(issuer: URL): URL {
  const url = new URL(issuer.href);
  url.pathname = `${url.pathname.replace(/\/$/, '')}/.well-known/openid-configuration`;
  url.search = '';
  return url;
}

/** RFC 8414 §3: the well-known path is inserted between the host and the issuer's path. */
export function authorizationServerMetadataUrl(issuer: URL): URL {
  const url = new URL(issuer.href);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  url.pathname = `/.well-known/oauth-authorization-server${path}`;
  url.search = '';
  return url;
}

/**
 * Reads an issuer's metadata: OpenID Connect discovery, or RFC 8414 metadata when that is 404.
 * Its `issuer` must equal the trusted URL exactly (OIDC Discovery §4.3, RFC 8414 §3.3: otherwise
 * a document could vouch for another issuer), and keys come only from its `jwks_uri`, which
 * obeys the same https rule as the issuer.
 */
export async function discoverIssuer(issuer: string, limits: FetchLimits): Promise<IssuerMetadata> {
  const issuerUrl = checkIssuerUrl(issuer, '--trust');
  let source: IssuerMetadata['source'] = 'openid-configuration';
  let document: Record<string, unknown>;
  try {
    document = await fetchJson(openIdConfigurationUrl(issuerUrl), limits);
  } catch (err) {
    if (!(err instanceof IssuerError && err.status === 404)) throw err;
    source = 'oauth-authorization-server';
    document = await fetchJson(authorizationServerMetadataUrl(issuerUrl), limits);
  }
  const named = document.issuer;
  if (typeof named !== 'string')
    throw new IssuerError('bad_metadata', `the metadata of ${issuer} has no issuer`);
  if (named !== issuer)
    throw new IssuerError(
      'issuer_mismatch',
      `the metadata of --trust ${issuer} names another issuer: ${named}`,
    );
  if (typeof document.jwks_uri !== 'string')
    throw new IssuerError('bad_metadata', `the metadata of ${issuer} has no jwks_uri`);
  return { issuer, jwksUri: checkIssuerUrl(document.jwks_uri, 'jwks_uri'), source };
}
