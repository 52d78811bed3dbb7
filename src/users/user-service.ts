import type { Clock } from '../clock.js';
import type { AuditEvent, RevocationReason, Storage, User } from '../storage/types.js';
import { hashPassword, maxPasswordLength } from './passwords.js';
import { defaultScopes, isValidUsername, scopePattern } from './usernames.js';

export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** Shortest password accepted outside demo mode (demo mode keeps the seed's `test`/`test`). */
export const minPasswordLength = 8;
const minDemoPasswordLength = 4;

function checkPassword(password: string, min: number): void {
  // Characters are code points: four emoji are eight UTF-16 units, and were let through as eight.
  if ((password.length >= 2 * min ? min : [...password].length) < min)
    throw new UserError(`password must be at least ${min} characters`);
  if (password.length > maxPasswordLength) {
    throw new UserError(`password must be at most ${maxPasswordLength} characters`);
  }
}

function normaliseScopes(scopes: string): string {
  const list = scopes.split(/[\s,]+/).filter(Boolean);
  for (const s of list) if (!scopePattern.test(s)) throw new UserError(`invalid scope "${s}"`);
  return [...new Set(list)].join(' ');
}

/** What managing users needs of the sessions part: an audit trail, and ending a user's sessions. */
export interface UserSessions {
  audit(event: Omit<AuditEvent, 'ts'>): Promise<void>;
  /** Revokes every live session of `username` and returns their ids. */
  revokeUser(username: string, reason: RevocationReason): Promise<string[]>;
}

/** Adding users, changing passwords and disabling users; the last two end every session. */
export class UserService {
  readonly #minPassword: number;

  constructor(
    private readonly storage: Storage,
    private readonly sessions: UserSessions,
    private readonly clock: Clock,
    options: { demo?: boolean } = {},
  ) {
    this.#minPassword = options.demo === true ? minDemoPasswordLength : minPasswordLength;
  }

  async add(username: string, password: string, scopes: string = defaultScopes): Promise<User> {
    if (!isValidUsername(username)) {
      throw new UserError(
        'username must be 1–64 letters, digits or . _ @ - and start with a letter or digit',
      );
    }
    checkPassword(password, this.#minPassword);
    const user = await this.storage.createUser({
      username,
      passwordHash: await hashPassword(password),
      scopes: normaliseScopes(scopes),
      now: this.clock(),
    });
    await this.sessions.audit({ event: 'user.add', username });
    return user;
  }

  /** Sets a new password and revokes every session of the user (4410 on their sockets). */
  async setPassword(username: string, password: string): Promise<string[]> {
    checkPassword(password, this.#minPassword);
    const changed = await this.storage.setPassword(
      username,
      await hashPassword(password),
      this.clock(),
    );
    if (!changed) throw new UserError(`no user "${username}"`);
    await this.sessions.audit({ event: 'user.password_change', username });
    return this.sessions.revokeUser(username, 'password_change');
  }

  /** Disables a user and revokes every session; enabling again does not restore them. */
  async setDisabled(username: string, disabled: boolean): Promise<string[]> {
    if (!(await this.storage.setDisabled(username, disabled)))
      throw new UserError(`no user "${username}"`);
    await this.sessions.audit({ event: disabled ? 'user.disable' : 'user.enable', username });
    return disabled ? this.sessions.revokeUser(username, 'user_disabled') : [];
  }

  list(): Promise<User[]> {
    return this.storage.listUsers();
  }
}

/** The seed documents' users, created by `--demo` when missing. */
export const demoUsers: readonly { username: string; password: string }[] = [
  { username: 'johndoe', password: 'secret' },
  { username: 'janedoe', password: 'secret2' },
  { username: 'test', password: 'test' },
];
