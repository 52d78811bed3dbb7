/** Subprotocol every wsgate client offers, so refusals arrive as close codes, not HTTP statuses. */
export const v1Protocol = 'wsgate.v1';

/** Prefix of the subprotocol that carries an access token (`wsgate.bearer.<jwt>`). */
export const bearerProtocolPrefix = 'wsgate.bearer.';

/**
 * Subprotocol a client offers so that its handshake succeeds where the server would select none
 * of its offers: a proxied route whose backend uses no subprotocol (browsers and `ws` fail a
 * handshake that offered subprotocols and got none back). wsgate selects it only when nothing
 * else is selected; it never reaches a backend.
 */
export const proxyProtocol = 'wsgate.proxy';
