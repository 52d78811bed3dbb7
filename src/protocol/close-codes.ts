/**
 * The WebSocket close codes a wsgate server sends, by meaning. The server's error catalogue and
 * the client's reconnect policy both read them from here.
 */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  abnormal: 1006,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
  badGateway: 1014,
  malformed: 4400,
  unauthorized: 4401,
  forbidden: 4403,
  authTimeout: 4408,
  revoked: 4410,
  expired: 4419,
  rateLimited: 4429,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];
