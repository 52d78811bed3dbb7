import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { startTestServer } from './support/server.js';
import { FixtureIssuer } from './support/issuer.js';
import { bearer, typed } from './support/external.js';
import { repo } from './support/cli.js';
import type { RawOptions } from '../src/config.js';

/**
 * docs/identity-providers.md works as written: each provider's `wsgate serve` flags, with its
 * issuer swapped for a fixture issuer on loopback, accept a token shaped like that provider's
 * and show the user and grant the scopes the page says.
 */
const doc = readFileSync(`${repo}/docs/identity-providers.md`, 'utf8');

/** The flags of the first ```sh block under `## <provider>`, as the CLI would read them. */
function documentedFlags(provider: string): Record<string, string[]> {
  const section = doc.split(/^## /m).find((s) => s.startsWith(`${provider}\n`));
  assert.ok(section, `no section for ${provider}`);
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, `no sh block for ${provider}`);
  const words = block.replace(/\\\n/g, ' ').trim().split(/\s+/);
  assert.deepEqual(words.slice(0, 2), ['wsgate', 'serve']);
  const flags: Record<string, string[]> = {};
  for (let i = 2; i < words.length; i += 2) {
    const name = words[i]!.replace(/^--/, '');
    (flags[name] ??= []).push(words[i + 1]!);
  }
  return flags;
}

const lists = new Set(['trust', 'trust-audience', 'backchannel-audience', 'admin-issuer']);

interface Case {
  readonly provider: string;
  /** The path of the provider's issuer URL (Auth0 ends in a slash). */
  readonly path: string;
  readonly header: Record<string, unknown>;
  readonly claims: Record<string, unknown>;
  readonly name: string;
}

const cases: Case[] = [
  {
    provider: 'Keycloak',
    path: '/realms/chat',
    header: { typ: 'JWT' },
    claims: {
      sub: randomUUID(),
      preferred_username: 'kate',
      aud: ['account', 'wsgate'],
      azp: 'chat-app',
      sid: randomUUID(),
      scope: 'openid profile email',
      realm_access: { roles: ['chat:read', 'chat:write', 'offline_access'] },
      resource_access: { account: { roles: ['view-profile'] } },
    },
    name: 'kate',
  },
  {
    provider: 'Auth0',
    path: '/',
    header: { typ: 'at+jwt' },
    claims: {
      sub: 'auth0|65f0c0ffee',
      aud: ['https://chat.example/api', 'https://tenant.eu.auth0.com/userinfo'],
      azp: 'YOUR_CLIENT_ID',
      scope: 'openid profile',
      permissions: ['chat:read', 'chat:write'],
      'https://chat.example/username': 'ann',
    },
    name: 'ann',
  },
  {
    provider: 'Okta',
    path: '/oauth2/default',
    header: {},
    claims: {
      ver: 1,
      sub: 'olga@example.com',
      uid: '00u1abcd',
      cid: '0oa1efgh',
      aud: 'api://default',
      scp: ['chat:read', 'chat:write'],
    },
    name: 'olga@example.com',
  },
  {
    provider: 'Amazon Cognito',
    path: '/eu-west-1_AbCdEf123',
    header: {},
    claims: {
      sub: randomUUID(),
      username: 'cora',
      client_id: '1example23456789',
      token_use: 'access',
      scope: 'aws.cognito.signin.user.admin',
      'cognito:groups': ['chat:read', 'chat:write'],
    },
    name: 'cora',
  },
];

describe('docs/identity-providers.md, provider by provider', () => {
  for (const c of cases) {
    it(`${c.provider}: the documented flags accept its access tokens, with its name and scopes`, async () => {
      const idp = await FixtureIssuer.start(c.path);
      await idp.addKey('RS256', 'k1');
      const flags = documentedFlags(c.provider);
      const options: RawOptions = {};
      for (const [name, values] of Object.entries(flags)) {
        if (name === 'issuer') continue; // the test server's own
        (options as Record<string, unknown>)[name] = lists.has(name) ? values : values[0];
      }
      options.trust = [idp.issuer];
      const server = await startTestServer(options);
      try {
        const now = Math.floor(server.clock() / 1000);
        const token = await idp.sign(
          { iat: now, exp: now + 300, jti: randomUUID(), ...c.claims },
          { header: c.header },
        );
        const socket = await bearer(server, '/chat', token);
        const welcome = JSON.parse(await socket.next(typed('welcome'))) as { user: string };
        assert.equal(welcome.user, `${new URL(idp.issuer).host}:${c.name}`);
        socket.send({ type: 'join', room: 'general' });
        await socket.next(typed('joined'));
        socket.send({ type: 'send', room: 'general', text: `hi from ${c.provider}`, id: '1' });
        await socket.next(typed('ack'));
        socket.ws.close();
      } finally {
        await server.stop();
        await idp.close();
      }
    });
  }
});
