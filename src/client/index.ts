/**
 * `wsgate/client`: a browser-safe WebSocket client for wsgate servers (no Node built-ins, no
 * server code, no dependencies).
 */
export {
  WsgateClient,
  type ClientEvents,
  type ClientState,
  type ClosedEvent,
  type CredentialErrorEvent,
  type StoppedEvent,
  type WebSocketConstructor,
  type WebSocketLike,
  type WsgateClientOptions,
} from './client.js';
export { backoffDelay, defaultBackoff, type BackoffOptions, type Random } from './backoff.js';
export {
  CloseCode,
  decideClose,
  maxConsecutiveUnauthorized,
  retryAfterMs,
  type CloseDecision,
  type CloseStreak,
} from './close-codes.js';
export { WsgateClientError, type ClientErrorCode } from './errors.js';
export { Emitter, type Listener } from './events.js';
export { systemTimers, type Timers } from '../clock.js';
export {
  roomPattern,
  type AckFrame,
  type AuthFrame,
  type ClientFrame,
  type ErrorFrame,
  type ExpiringFrame,
  type JoinedFrame,
  type JoinFrame,
  type LeaveFrame,
  type MessageFrame,
  type PingFrame,
  type PongFrame,
  type PresenceFrame,
  type ReauthenticatedFrame,
  type SendFrame,
  type ServerFrame,
  type WelcomeFrame,
} from '../protocol/frames.js';
