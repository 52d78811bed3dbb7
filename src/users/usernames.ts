/**
 * Usernames are short, printable and safe to show anywhere: ASCII letters, digits and `._@-`, so
 * never a `:` (which only external identities carry, as `<issuer host>:<name>`), and NFKC leaves
 * them as they are. They are unique after case-folding (a unique index on their lower case).
 */
export const usernamePattern = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export function isValidUsername(username: string): boolean {
  return usernamePattern.test(username);
}

/** Scopes every new user gets unless told otherwise. */
export const defaultScopes = 'chat:read chat:write';

export const scopePattern = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
