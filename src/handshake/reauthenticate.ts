import { WsgateError } from '../errors.js';
import type { Credential } from '../credentials/credential.js';
import { principalKey } from '../credentials/principal.js';
import type { LiveSocket } from '../sockets/registry.js';
import { sendJson } from '../sockets/io.js';
import { credentialFromToken } from './first-message.js';
import type { Principal } from './authenticate.js';

/** What an in-band re-authentication needs of the gate. */
export interface Reauthentication {
  /** Checks the new credential against the endpoint's policy. */
  authenticate(credential: Credential): Promise<Principal>;
  /** Gives the socket the new principal (and so its new expiry). */
  renew(principal: Principal): void;
  /** Reports a refused token; returns the error to answer with. */
  refused(err: unknown): WsgateError;
}

/**
 * `{"type":"auth","token"}` on an open socket: a valid token of the same user, satisfying the
 * endpoint's policy, extends the socket's life (answered `reauthenticated`); anything else gets
 * an `error` frame and the socket keeps its old expiry.
 */
export async function reauthenticate(
  live: LiveSocket,
  token: string,
  gate: Reauthentication,
): Promise<void> {
  const { ws } = live;
  try {
    const principal = await gate.authenticate(credentialFromToken(token));
    // The same user: the same username, or the same external issuer and subject.
    if (principalKey(principal) !== principalKey(live.principal)) {
      throw new WsgateError('invalid_token', 'The new token is for another user');
    }
    gate.renew(principal);
    sendJson(ws, { type: 'reauthenticated', exp: principal.claims?.exp ?? null });
  } catch (err) {
    const error = gate.refused(err);
    sendJson(ws, { type: 'error', code: error.code, message: error.message });
  }
}
