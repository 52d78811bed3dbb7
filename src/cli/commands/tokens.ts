import { UserError } from '../../users/user-service.js';
import type { Command } from '../command.js';

export const tokenIssue: Command = {
  name: 'token issue',
  args: [{ name: 'name' }],
  summary: 'open a session and print an access token',
  description:
    "Opens a session for the user and prints its access token, signed for the deployment's stored issuer and audience, so it verifies on every node. With --json, prints the token response with the refresh token and session id.",
  flags: {
    json: { kind: 'boolean', help: 'print {access_token, refresh_token, session_id, …} as JSON' },
  },
  config: 'deployment',
  async run({ args, flags, io, openRuntime }) {
    const [name] = args as [string];
    const runtime = await openRuntime();
    // The first command to sign a token fixes the deployment's issuer, as a first serve would.
    await runtime.claimDeployment();
    const user = await runtime.storage.getUser(name);
    if (!user || user.disabled) throw new UserError(`no active user "${name}"`);
    const pair = await runtime.sessions.openSession(name);
    if (flags.json === true) {
      io.out(
        `${JSON.stringify({
          access_token: pair.accessToken,
          token_type: 'bearer',
          expires_in: pair.expiresIn,
          refresh_token: pair.refreshToken,
          scope: pair.access.scope,
          session_id: pair.access.sid,
        })}\n`,
      );
    } else {
      io.out(`${pair.accessToken}\n`);
    }
    return 0;
  },
};
