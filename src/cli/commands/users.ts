import type { Command } from '../command.js';
import { table } from '../table.js';

const passwordNote =
  'The password is read from a prompt, or from the first line of standard input when it is not a terminal; never from the command line.';

export const userAdd: Command = {
  name: 'user add',
  args: [{ name: 'name' }],
  summary: 'create a user',
  description: `Creates a user who can log in with a password. ${passwordNote}`,
  flags: {
    scopes: {
      kind: 'string',
      arg: 'SCOPES',
      default: 'chat:read chat:write',
      help: 'space-separated scopes the user may be granted',
    },
  },
  config: 'deployment',
  async run({ args, flags, io, openRuntime }) {
    const [name] = args as [string];
    const scopes = flags.scopes as string | undefined;
    const { users } = await openRuntime();
    const password = await io.readSecret(`Password for ${name}: `);
    await users.add(name, password, ...(scopes === undefined ? [] : [scopes]));
    io.out(`created user ${name}\n`);
    return 0;
  },
};

export const userPasswd: Command = {
  name: 'user passwd',
  args: [{ name: 'name' }],
  summary: 'change a password; ends every session of the user',
  description: `Sets a new password and revokes every session of the user (their sockets close with 4410). ${passwordNote}`,
  config: 'deployment',
  async run({ args, io, openRuntime }) {
    const [name] = args as [string];
    const { users } = await openRuntime();
    const password = await io.readSecret(`New password for ${name}: `);
    const revoked = await users.setPassword(name, password);
    io.out(`password changed for ${name}; ${revoked.length} session(s) revoked\n`);
    return 0;
  },
};

export const userDisable: Command = {
  name: 'user disable',
  args: [{ name: 'name' }],
  summary: 'stop a user logging in; ends every session of the user',
  config: 'deployment',
  async run({ args, io, openRuntime }) {
    const [name] = args as [string];
    const revoked = await (await openRuntime()).users.setDisabled(name, true);
    io.out(`disabled user ${name}; ${revoked.length} session(s) revoked\n`);
    return 0;
  },
};

export const userEnable: Command = {
  name: 'user enable',
  args: [{ name: 'name' }],
  summary: 'let a disabled user log in again',
  config: 'deployment',
  async run({ args, io, openRuntime }) {
    const [name] = args as [string];
    await (await openRuntime()).users.setDisabled(name, false);
    io.out(`enabled user ${name}\n`);
    return 0;
  },
};

export const userList: Command = {
  name: 'user list',
  summary: 'list the users',
  config: 'deployment',
  async run({ io, openRuntime }) {
    const rows = (await (await openRuntime()).users.list()).map((u) => [
      u.username,
      u.disabled ? 'disabled' : 'active',
      u.scopes,
      new Date(u.createdAt).toISOString(),
    ]);
    io.out(table(['USERNAME', 'STATE', 'SCOPES', 'CREATED'], rows));
    return 0;
  },
};
