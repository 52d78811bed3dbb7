import { timingSafeEqual } from 'node:crypto';

/**
 * Compares two secrets (CSRF values) in time that does not depend on where they differ. An empty
 * or missing value never matches: an empty header must not pass against an empty cookie.
 */
export function safeEqual(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
