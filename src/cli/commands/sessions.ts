import { UsageError, type Command } from '../command.js';
import { table } from '../table.js';

export const sessionsList: Command = {
  name: 'sessions list',
  summary: 'list live sessions',
  flags: {
    user: { kind: 'string', arg: 'NAME', help: "only this user's sessions" },
    all: { kind: 'boolean', help: 'include expired and revoked sessions' },
  },
  config: 'deployment',
  async run({ flags, io, openRuntime }) {
    const user = flags.user as string | undefined;
    const { storage, clock } = await openRuntime();
    const list = await storage.listSessions({
      ...(user === undefined ? {} : { username: user }),
      ...(flags.all === true ? {} : { activeAt: clock() }),
    });
    const rows = list.map((s) => [
      s.id,
      s.username,
      s.revokedAt === null
        ? s.expiresAt > clock()
          ? 'active'
          : 'expired'
        : `revoked (${s.revokedReason ?? ''})`,
      new Date(s.createdAt).toISOString(),
      new Date(s.expiresAt).toISOString(),
    ]);
    io.out(table(['SESSION', 'USER', 'STATE', 'CREATED', 'EXPIRES'], rows));
    return 0;
  },
};

export const sessionsRevoke: Command = {
  name: 'sessions revoke',
  args: [{ name: 'session-id', optional: true }],
  summary: 'end a session, or every session of a user; their sockets close with 4410',
  flags: {
    user: { kind: 'string', arg: 'NAME', help: 'revoke every session of this user' },
  },
  config: 'deployment',
  async run({ args, flags, io, openRuntime }) {
    const user = flags.user as string | undefined;
    const [id] = args;
    if (user !== undefined && id !== undefined) {
      throw new UsageError('give a session id or --user, not both');
    }
    if (user === undefined && id === undefined) {
      throw new UsageError('missing <session-id> (or --user NAME)');
    }
    const { sessions } = await openRuntime();
    if (user !== undefined) {
      const ids = await sessions.revokeUser(user, 'admin');
      io.out(`revoked ${ids.length} session(s) of ${user}\n`);
      return 0;
    }
    if (!(await sessions.revoke(id as string, 'admin'))) {
      io.err(`wsgate: no live session "${id}"\n`);
      return 1;
    }
    io.out(`revoked session ${id}\n`);
    return 0;
  },
};
