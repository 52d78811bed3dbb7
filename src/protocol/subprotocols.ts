/** Subprotocol every wsgate client offers, so refusals arrive as close codes, not HTTP statuses. */
export const v1Protocol = 'wsgate.v1';

/** Prefix of the subprotocol that carries an access token (`wsgate.bearer.<jwt>`). */
export const bearerProtocolPrefix = 'wsgate.bearer.';
