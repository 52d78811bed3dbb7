/**
 * The WebSocket close codes wsgate sends or reads, by meaning: the only place they are written.
 * The error catalogue, the gate, the proxy's pipe and the client's reconnect policy read them here.
 */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  /** Received only: the close frame had no code (RFC 6455 §7.1.5). */
  noStatus: 1005,
  /** Received only: the connection dropped without a close frame. */
  abnormal: 1006,
  invalidPayload: 1007,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
  badGateway: 1014,
  /** Received only: the TLS handshake failed. */
  tlsFailed: 1015,
  malformed: 4400,
  unauthorized: 4401,
  forbidden: 4403,
  authTimeout: 4408,
  revoked: 4410,
  expired: 4419,
  rateLimited: 4429,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];
