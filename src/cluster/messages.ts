import { roomPattern, type MessageFrame, type PresenceFrame } from '../protocol/frames.js';
import {
  revocationReasons,
  type ExternalRevocation,
  type RevocationReason,
} from '../storage/types.js';

/**
 * Everything nodes say to each other, one union: each message names the node that published it
 * (a node ignores its own) and travels on the channel of its kind.
 */
export type ClusterMessage =
  | {
      readonly kind: 'revoke';
      readonly node: string;
      readonly sessionIds: readonly string[];
      readonly reason: RevocationReason;
      /** Sessions or subjects of external issuers (back-channel logout, admin revoke). */
      readonly external?: readonly ExternalRevocation[];
    }
  /** A message stored, or a presence change made, on the publishing node. */
  | { readonly kind: 'chat'; readonly node: string; readonly frame: MessageFrame | PresenceFrame }
  /** `hello` when a node starts (others answer with their presence), `beat` while it lives. */
  | { readonly kind: 'hello' | 'beat'; readonly node: string };

/** The bus channel each kind travels on. */
export const channels = { revoke: 'revoke', chat: 'chat', nodes: 'nodes' } as const;
export type Channel = (typeof channels)[keyof typeof channels];

export function channelOf(message: ClusterMessage): Channel {
  return message.kind === 'hello' || message.kind === 'beat' ? channels.nodes : message.kind;
}

/** What goes on the wire: the kind is implied by the channel, except on `nodes`. */
export function encode(message: ClusterMessage): string {
  if (message.kind === 'chat') return JSON.stringify({ node: message.node, frame: message.frame });
  if (message.kind === 'revoke') {
    const { node, sessionIds, reason, external } = message;
    return JSON.stringify({ node, sessionIds, reason, external });
  }
  return JSON.stringify({ node: message.node, kind: message.kind });
}

/** Parses and checks a message read off `channel`; throws a {@link TypeError} naming what is wrong. */
export function decode(channel: Channel, text: string): ClusterMessage {
  const value: unknown = JSON.parse(text);
  if (!isRecord(value)) throw new TypeError('not an object');
  const node = value.node;
  if (typeof node !== 'string' || node === '') throw new TypeError('no node id');
  switch (channel) {
    case channels.revoke: {
      const { sessionIds, reason, external } = value;
      if (!isStrings(sessionIds)) throw new TypeError('sessionIds must be strings');
      if (!isReason(reason)) throw new TypeError('unknown revocation reason');
      if (external === undefined) return { kind: 'revoke', node, sessionIds, reason };
      if (!Array.isArray(external)) throw new TypeError('external must be a list');
      return {
        kind: 'revoke',
        node,
        sessionIds,
        reason,
        external: external.map(externalRevocation),
      };
    }
    case channels.chat:
      return { kind: 'chat', node, frame: chatFrame(value.frame) };
    case channels.nodes: {
      const kind = value.kind;
      if (kind !== 'hello' && kind !== 'beat') throw new TypeError('kind must be hello or beat');
      return { kind, node };
    }
  }
}

function chatFrame(value: unknown): MessageFrame | PresenceFrame {
  if (!isRecord(value)) throw new TypeError('frame must be an object');
  const { type, room, user } = value;
  if (typeof room !== 'string' || !roomPattern.test(room)) throw new TypeError('bad room');
  if (typeof user !== 'string' || user === '') throw new TypeError('bad user');
  if (type === 'presence') {
    const { state } = value;
    if (state !== 'join' && state !== 'leave') throw new TypeError('bad presence state');
    return { type, room, user, state };
  }
  if (type === 'message') {
    const { id, text, ts } = value;
    if (typeof id !== 'number' || !Number.isSafeInteger(id)) throw new TypeError('bad message id');
    if (typeof text !== 'string') throw new TypeError('bad message text');
    if (typeof ts !== 'number' || !Number.isFinite(ts)) throw new TypeError('bad message ts');
    return { type, room, id, user, text, ts };
  }
  throw new TypeError('frame must be a message or presence');
}

function externalRevocation(value: unknown): ExternalRevocation {
  if (!isRecord(value)) throw new TypeError('an external revocation must be an object');
  const { issuer, kind, value: subject, revokedAt, expiresAt } = value;
  if (typeof issuer !== 'string' || issuer === '') throw new TypeError('bad external issuer');
  if (kind !== 'sid' && kind !== 'sub' && kind !== 'sub_without_sid')
    throw new TypeError('bad external revocation kind');
  if (typeof subject !== 'string' || subject === '') throw new TypeError('bad external value');
  if (!isTime(revokedAt) || !isTime(expiresAt)) throw new TypeError('bad external times');
  return { issuer, kind, value: subject, revokedAt, expiresAt };
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

function isReason(value: unknown): value is RevocationReason {
  return (revocationReasons as readonly unknown[]).includes(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
