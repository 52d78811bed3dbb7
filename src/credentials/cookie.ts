import { WsgateError } from '../errors.js';
import type { Transport } from './credential.js';

export const accessCookie = 'access_token_cookie';
export const refreshCookie = 'refresh_token_cookie';
export const csrfCookie = 'csrf_access_token';
export const csrfRefreshCookie = 'csrf_refresh_token';

/**
 * Cookie `access_token_cookie` with `?csrf_token=` (fastapi-jwt-auth's way). The cookie alone is
 * ambient — every same-site request carries it — so it only counts as a credential together with
 * the CSRF value, which the gate checks against the token's `csrf` claim and an allowed `Origin`.
 */
export const cookie: Transport = {
  name: 'cookie',
  extract(request, options) {
    if (!request.hasQuery) return undefined;
    const csrf = request.query.getAll('csrf_token');
    if (csrf.length === 0) return undefined;
    if (csrf.length > 1) throw new WsgateError('ambiguous_credential');
    const token = request.cookie(options.refresh ? refreshCookie : accessCookie);
    if (token === undefined || token === '')
      throw new WsgateError('credential_missing', 'No token cookie');
    return { transport: 'cookie', value: token, csrf: csrf[0] as string };
  },
};
