import type { ChatMessage } from '../storage/types.js';
import type { ErrorCode } from '../errors.js';
import { roomPattern, type ClientFrame, type MessageFrame } from '../protocol/frames.js';

export { roomPattern } from '../protocol/frames.js';
export type { ClientFrame, ServerFrame, MessageFrame } from '../protocol/frames.js';

export const maxTextLength = 4000;
/**
 * What chat text may not hold: C0 controls and DEL except newline and tab (NUL, BEL, ESC…, which
 * terminals and PostgreSQL treat specially), and the bidi embeddings, overrides and isolates
 * (U+202A–U+202E, U+2066–U+2069) that make a message display other than it reads.
 */
// eslint-disable-next-line no-control-regex
export const forbiddenText = /[\u0000-\u0008\u000b-\u001f\u007f\u202a-\u202e\u2066-\u2069]/;

/** Client message ids (for acks) are short opaque strings. */
const clientIdPattern = /^[A-Za-z0-9_.:-]{1,64}$/;

/** The catalogue's codes an `error` frame may carry (docs/chat.md is tested against this list). */
export const chatErrorCodes = [
  'invalid_request',
  'invalid_room',
  'invalid_text',
  'insufficient_scope',
  'not_joined',
  'too_many_rooms',
  'rate_limited',
  'internal_error',
] as const satisfies readonly ErrorCode[];

export type ChatErrorCode = (typeof chatErrorCodes)[number];

/** A refused frame: answered with an `error` frame, the socket stays open. */
export class FrameError extends Error {
  constructor(
    readonly code: ChatErrorCode,
    message: string,
    readonly id?: string,
  ) {
    super(message);
    this.name = 'FrameError';
  }
}

export function messageFrame(m: ChatMessage): MessageFrame {
  return { type: 'message', room: m.room, id: m.id, user: m.username, text: m.text, ts: m.ts };
}

function room(value: unknown): string {
  if (typeof value !== 'string' || !roomPattern.test(value)) {
    throw new FrameError('invalid_room', 'Room names match ^[a-z0-9][a-z0-9_-]{0,63}$');
  }
  return value;
}

/** Parses and validates one client text frame; every problem is a {@link FrameError}. */
export function parseClientFrame(text: string): ClientFrame {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new FrameError('invalid_request', 'Frames are JSON objects');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new FrameError('invalid_request', 'Frames are JSON objects');
  }
  const frame = raw as Record<string, unknown>;
  switch (frame.type) {
    case 'join': {
      const since = frame.since;
      if (
        since !== undefined &&
        (typeof since !== 'number' || !Number.isSafeInteger(since) || since < 0)
      ) {
        throw new FrameError('invalid_request', 'since is a message id');
      }
      return since === undefined
        ? { type: 'join', room: room(frame.room) }
        : { type: 'join', room: room(frame.room), since };
    }
    case 'leave':
      return { type: 'leave', room: room(frame.room) };
    case 'send': {
      const id = frame.id;
      if (id !== undefined && (typeof id !== 'string' || !clientIdPattern.test(id))) {
        throw new FrameError('invalid_request', 'id is 1–64 characters of [A-Za-z0-9_.:-]');
      }
      const ackId = id;
      const r = (() => {
        try {
          return room(frame.room);
        } catch (err) {
          throw new FrameError('invalid_room', (err as Error).message, ackId);
        }
      })();
      const text = frame.text;
      if (typeof text !== 'string' || text.length === 0 || [...text].length > maxTextLength) {
        throw new FrameError('invalid_text', `Text is 1–${maxTextLength} characters`, ackId);
      }
      if (forbiddenText.test(text)) {
        throw new FrameError(
          'invalid_text',
          'Text may not hold control characters (but newline and tab) or bidi overrides',
          ackId,
        );
      }
      return ackId === undefined
        ? { type: 'send', room: r, text }
        : { type: 'send', room: r, text, id: ackId };
    }
    case 'auth':
      if (typeof frame.token !== 'string' || frame.token === '') {
        throw new FrameError('invalid_request', 'auth needs a token');
      }
      return { type: 'auth', token: frame.token };
    case 'ping':
      return { type: 'ping' };
    default:
      throw new FrameError('invalid_request', 'Unknown frame type');
  }
}
