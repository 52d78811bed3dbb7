import type { HandshakeRequest } from './request.js';

/** The ways a credential can arrive on a WebSocket handshake (docs/websocket.md lists them). */
export type TransportName =
  'bearer' | 'subprotocol' | 'ticket' | 'query' | 'cookie' | 'first-message';

/** A credential as it arrived, not yet verified. */
export interface Credential {
  readonly transport: TransportName;
  /** A JWT, or for `ticket` the opaque ticket. */
  readonly value: string;
  /** For `cookie`: the `csrf_token` query value, to match the token's `csrf` claim. */
  readonly csrf?: string;
}

export interface ExtractOptions {
  /** The endpoint wants a refresh token (cookie transport reads `refresh_token_cookie`). */
  readonly refresh: boolean;
  /** `?token=<jwt>` is accepted (demo mode or `--allow-query-tokens`). */
  readonly allowQueryTokens: boolean;
}

/** One credential transport: finds its credential in a handshake, or returns undefined. */
export interface Transport {
  readonly name: TransportName;
  extract(request: HandshakeRequest, options: ExtractOptions): Credential | undefined;
}
