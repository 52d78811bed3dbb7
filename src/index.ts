/**
 * wsgate: authentication and authorization for WebSockets.
 *
 * Use the gate alone in front of any `http.Server` (`createGate`, `createVerifier`), mount it in
 * Fastify (`wsgateFastify`), or run the whole server (`startServer`, or `wsgate serve`).
 */
export { createGate, Gate, defaultGateLimits } from './handshake/gate.js';
export type { GateOptions, GateLimits, ConnectionHandler, RejectEvent } from './handshake/gate.js';
export { guest } from './handshake/authenticate.js';
export type { Policy, Principal, VerifyJwt } from './handshake/authenticate.js';
export { isOriginAllowed, issuerScheme } from './handshake/origin.js';
export type { OriginContext } from './handshake/origin.js';
export { hostChecker, splitHost } from './handshake/host.js';
export type { HostPolicy, HostParts } from './handshake/host.js';
export { trustedProxies, clientAddress } from './client-address.js';
export type { TrustedProxy } from './client-address.js';
export { WsgateError, isWsgateError, catalogue, truncateReason } from './errors.js';
export type { ErrorCode, CatalogueEntry } from './errors.js';
export { MemoryTicketStore, ticketTtlMs } from './credentials/tickets.js';
export type { TicketStore } from './credentials/tickets.js';
export type { Credential, TransportName } from './credentials/credential.js';
export {
  generateSigningKey,
  keySetFromSecret,
  keySetFromStoredKeys,
  loadOrCreateKeyFile,
} from './tokens/keys.js';
export type { KeySet, StoredKey, SigningAlgorithm } from './tokens/keys.js';
export { issueToken } from './tokens/issue.js';
export type { IssueOptions, IssuedToken } from './tokens/issue.js';
export { verifyToken } from './tokens/verify.js';
export type { VerifyOptions } from './tokens/verify.js';
export { createVerifier } from './issuers/verifier.js';
export type { PublicKeys, VerifierOptions } from './issuers/verifier.js';
export type { TokenClaims, TokenType, ExternalSubject } from './tokens/claims.js';
export { loadConfig, ConfigError } from './config.js';
export type { Config, RawOptions } from './config.js';
export { createRuntime } from './runtime.js';
export type { Runtime, RuntimeOptions } from './runtime.js';
export { startServer } from './server/serve.js';
export type { RunningServer } from './server/serve.js';
export { buildApp } from './server/app.js';
export { buildGate, startNode, type Node, type NodeOptions } from './runtime.js';
export { wsgateFastify } from './server/gate-plugin.js';
export { registerSeedEndpoints } from './endpoints/seed.js';
export type { Clock } from './clock.js';
export { createIdentityKey, deriveIdentityKey, identityTokenType } from './proxy/identity.js';
export type { IdentityKey, IdentityClaims } from './proxy/identity.js';
export type { ProxyOptions, ProxyEvents } from './proxy/connect.js';
export type { ProxyRoute, ProxyRouteOptions } from './proxy/route.js';
