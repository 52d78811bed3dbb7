/**
 * Codes the client itself gives its errors. Errors from the server's `error` frames keep the
 * server's code (`not_joined`, `insufficient_scope`, …).
 */
export type ClientErrorCode =
  /** A send, join or ping while the client is not connected; nothing is queued. */
  | 'not_connected'
  /** The socket closed (or `close()` was called) before the server answered. */
  | 'disconnected'
  /** A room name that does not match the protocol's pattern. */
  | 'invalid_room'
  /** A chat call on a client built with `protocol: 'raw'`. */
  | 'unsupported';

/** Every error the client rejects or throws with; switch on `code`. */
export class WsgateClientError extends Error {
  override readonly name = 'WsgateClientError';

  constructor(
    /** A {@link ClientErrorCode}, or the code of the server's `error` frame. */
    readonly code: ClientErrorCode | (string & {}),
    message: string,
  ) {
    super(message);
  }
}
