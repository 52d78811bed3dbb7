import { hash, verify } from '@node-rs/argon2';

/** OWASP's recommended argon2id parameters: 19 MiB, 2 iterations, 1 lane. */
export const argon2Options = {
  algorithm: 2, // Algorithm.Argon2id (a const enum, which verbatimModuleSyntax cannot import)
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
} as const;

export const maxPasswordLength = 1024;

export function hashPassword(password: string): Promise<string> {
  return hash(password, argon2Options);
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

let dummy: Promise<string> | undefined;

/**
 * Spends the same time as checking a real password, so that an unknown username cannot be told
 * from a wrong password by timing.
 */
export async function verifyDummyPassword(password: string): Promise<false> {
  dummy ??= hashPassword('wsgate-dummy-password-for-timing');
  await verifyPassword(await dummy, password);
  return false;
}
