import { WsgateError } from '../errors.js';
import { bearerProtocolPrefix, proxyProtocol } from './request.js';
import type { Transport } from './credential.js';

/**
 * `Sec-WebSocket-Protocol: wsgate.v1, wsgate.bearer.<jwt>`: browsers cannot set headers, but can
 * offer subprotocols. The token comes with a subprotocol the server can select instead of it —
 * `wsgate.v1`, or `wsgate.proxy` (a proxied route's backend may select its own) — so the token is
 * never echoed back.
 */
export const subprotocol: Transport = {
  name: 'subprotocol',
  extract(request) {
    let carrier: string | undefined;
    for (const p of request.protocols) {
      if (!p.startsWith(bearerProtocolPrefix)) continue;
      if (carrier !== undefined) throw new WsgateError('ambiguous_credential');
      carrier = p;
    }
    if (carrier === undefined) return undefined;
    if (!request.offeredV1 && !request.protocols.includes(proxyProtocol)) {
      throw new WsgateError(
        'invalid_request',
        'wsgate.bearer.* must be offered with wsgate.v1 or wsgate.proxy',
      );
    }
    const token = carrier.slice(bearerProtocolPrefix.length);
    if (token === '') throw new WsgateError('invalid_request', 'Empty bearer subprotocol');
    return { transport: 'subprotocol', value: token };
  },
};
