import type { Transport } from './credential.js';
import { bearerHeader } from './bearer-header.js';
import { subprotocol } from './subprotocol.js';
import { queryToken } from './query.js';
import { cookie } from './cookie.js';

/** Every handshake transport, in the order they are looked for. First-message auth comes later. */
export const handshakeTransports: readonly Transport[] = [
  bearerHeader,
  subprotocol,
  queryToken,
  cookie,
];
