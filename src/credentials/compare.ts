import { timingSafeEqual } from 'node:crypto';

/** Compares two secrets (CSRF values) in time that does not depend on where they differ. */
export function safeEqual(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
