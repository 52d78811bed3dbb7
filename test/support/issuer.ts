import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

/** A signing key of a fixture issuer, with its public JWK as published. */
export interface FixtureKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

export async function fixtureKey(
  alg: string,
  kid: string,
  jwkExtra: JWK = {},
): Promise<FixtureKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
  });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig', ...jwkExtra };
  return { kid, alg, privateKey, publicJwk };
}

/** Lets a test answer a request its own way; returns true when it did. */
export type Override = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * An identity provider reduced to what a resource server sees of it: a real HTTP server on
 * 127.0.0.1:0 publishing OpenID discovery metadata and a JWK Set, and signing tokens with its
 * keys. The test changes its keys and behaviour while it runs and counts the JWKS fetches.
 * (The full provider, oidc-provider, is in test/support/oidc.ts.)
 */
export class FixtureIssuer {
  readonly keys: FixtureKey[] = [];
  jwksFetches = 0;
  discoveryFetches = 0;
  override: Override | undefined;
  /** The issuer the metadata names; by default the issuer itself. */
  metadataIssuer: string | undefined;
  private constructor(
    private readonly server: Server,
    readonly issuer: string,
  ) {}

  static async start(path = ''): Promise<FixtureIssuer> {
    const holder: { self?: FixtureIssuer } = {};
    const server = createServer((req, res) => holder.self?.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    holder.self = new FixtureIssuer(server, `http://127.0.0.1:${port}${path}`);
    return holder.self;
  }

  get jwksUri(): string {
    return `${this.issuer.replace(/\/$/, '')}/jwks`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.override?.(req, res)) return;
    const path = new URL(req.url ?? '/', this.issuer).pathname;
    const issuerPath = new URL(this.issuer).pathname.replace(/\/$/, '');
    if (path === `${issuerPath}/.well-known/openid-configuration`) {
      this.discoveryFetches++;
      return json(res, { issuer: this.metadataIssuer ?? this.issuer, jwks_uri: this.jwksUri });
    }
    if (path === `${issuerPath}/jwks`) {
      this.jwksFetches++;
      return json(res, { keys: this.keys.map((k) => k.publicJwk) });
    }
    res.writeHead(404).end();
  }

  async addKey(alg = 'RS256', kid = `key-${this.keys.length + 1}`, jwkExtra: JWK = {}) {
    const key = await fixtureKey(alg, kid, jwkExtra);
    this.keys.push(key);
    return key;
  }

  removeKey(kid: string): void {
    const index = this.keys.findIndex((k) => k.kid === kid);
    if (index >= 0) this.keys.splice(index, 1);
  }

  /** Signs `claims` (with `iss` defaulting to this issuer) with a key of this issuer. */
  async sign(
    claims: Record<string, unknown>,
    options: { key?: FixtureKey; header?: Record<string, unknown> } = {},
  ): Promise<string> {
    const key = options.key ?? this.keys[0];
    if (!key) throw new Error('the fixture issuer has no key');
    return new SignJWT({ iss: this.issuer, ...claims })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...options.header })
      .sign(key.privateKey);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function json(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
