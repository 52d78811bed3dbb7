/**
 * The JSON text frames of the `wsgate.v1` protocol, in both directions: the chat on `/chat`, and
 * the control frames every endpoint shares (`auth`, `expiring`, `reauthenticated`, `error`).
 * Types only, plus the room-name rule, so the server and the browser-safe client share them.
 */

/** Room names: lower-case letters, digits, `_` and `-`, 1–64 characters, not starting with `_`/`-`. */
export const roomPattern = /^[a-z0-9][a-z0-9_-]{0,63}$/;

// Client → server

/** Joins a room; `since` asks for the messages after that id (a reconnect's replay). */
export interface JoinFrame {
  type: 'join';
  room: string;
  since?: number;
}

/** Leaves a room. */
export interface LeaveFrame {
  type: 'leave';
  room: string;
}

/** Posts a message; with `id`, the server answers with an `ack` (or an `error`) carrying it. */
export interface SendFrame {
  type: 'send';
  room: string;
  text: string;
  id?: string;
}

/** Presents a new access token in band, e.g. after `expiring`. */
export interface AuthFrame {
  type: 'auth';
  token: string;
}

/** Asks for a `pong`. */
export interface PingFrame {
  type: 'ping';
}

/** Every frame a client sends. */
export type ClientFrame = JoinFrame | LeaveFrame | SendFrame | AuthFrame | PingFrame;

// Server → client

/** First frame on an accepted socket: who the server thinks we are, and the rooms it knows. */
export interface WelcomeFrame {
  type: 'welcome';
  user: string;
  rooms: string[];
}

/** One chat message, live or from history. `id` grows within a room; `ts` is epoch ms. */
export interface MessageFrame {
  type: 'message';
  room: string;
  id: number;
  user: string;
  text: string;
  ts: number;
}

/** Answer to `join`: members now present and the history (last 50, or everything after `since`). */
export interface JoinedFrame {
  type: 'joined';
  room: string;
  members: string[];
  history: MessageFrame[];
}

/** A `send` with an `id` was stored as message `msgId`. */
export interface AckFrame {
  type: 'ack';
  id: string;
  msgId: number;
}

/** A user arrived in or left a room (batched by the server, ~100 ms). */
export interface PresenceFrame {
  type: 'presence';
  room: string;
  user: string;
  state: 'join' | 'leave';
}

/** A frame was refused; `id` is the `send` id when the refused frame carried one. */
export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
  id?: string;
}

/** The access token expires in `in` seconds; send `auth` with a new one to stay connected. */
export interface ExpiringFrame {
  type: 'expiring';
  in: number;
}

/** The in-band `auth` was accepted; the socket now lives until `exp` (epoch seconds). */
export interface ReauthenticatedFrame {
  type: 'reauthenticated';
  exp: number;
}

/** Answer to `ping`. */
export interface PongFrame {
  type: 'pong';
}

/** Every frame a server sends. */
export type ServerFrame =
  | WelcomeFrame
  | JoinedFrame
  | MessageFrame
  | AckFrame
  | PresenceFrame
  | ErrorFrame
  | ExpiringFrame
  | ReauthenticatedFrame
  | PongFrame;
