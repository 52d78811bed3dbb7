import { WsgateError } from '../errors.js';
import type { Transport } from './credential.js';

const jwtLike = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * `?token=`: a single-use ticket from `POST /ws-ticket`, or (compat, fastapi-jwt-auth) a JWT when
 * query tokens are allowed. A JWT in a URL ends up in proxy and browser logs, hence the switch.
 */
export const queryToken: Transport = {
  name: 'ticket',
  extract(request, options) {
    if (!request.hasQuery) return undefined;
    const values = request.query.getAll('token');
    if (values.length === 0) return undefined;
    if (values.length > 1) throw new WsgateError('ambiguous_credential');
    const value = values[0] as string;
    if (value === '') throw new WsgateError('invalid_request', 'Empty token parameter');
    if (!jwtLike.test(value)) return { transport: 'ticket', value };
    if (!options.allowQueryTokens) {
      throw new WsgateError(
        'invalid_request',
        'Tokens in the URL are disabled; use a ticket from POST /ws-ticket',
      );
    }
    return { transport: 'query', value };
  },
};
