import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { ESLint } from 'eslint';

/** A file of each folder, and an import its layer forbids (the first one listed is allowed). */
const cases: Record<string, { file: string; allowed: string; wrong: string }> = {
  protocol: {
    file: 'src/protocol/frames.ts',
    allowed: '../clock.js',
    wrong: '../storage/types.js',
  },
  pubsub: {
    file: 'src/pubsub/memory.ts',
    allowed: '../clock.js',
    wrong: '../sessions/revocations.js',
  },
  storage: {
    file: 'src/storage/types.ts',
    allowed: '../protocol/frames.js',
    wrong: '../tokens/keys.js',
  },
  tokens: {
    file: 'src/tokens/keys.ts',
    allowed: '../storage/types.js',
    wrong: '../credentials/principal.js',
  },
  issuers: {
    file: 'src/issuers/jwks.ts',
    allowed: '../tokens/keys.js',
    wrong: '../handshake/gate.js',
  },
  credentials: {
    file: 'src/credentials/principal.ts',
    allowed: '../tokens/claims.js',
    wrong: '../sessions/revocations.js',
  },
  users: {
    file: 'src/users/user-service.ts',
    allowed: '../storage/types.js',
    wrong: '../sessions/session-service.js',
  },
  sessions: {
    file: 'src/sessions/revocations.ts',
    allowed: '../users/passwords.js',
    wrong: '../handshake/gate.js',
  },
  sockets: {
    file: 'src/sockets/io.ts',
    allowed: '../credentials/principal.js',
    wrong: '../handshake/gate.js',
  },
  proxy: {
    file: 'src/proxy/route.ts',
    allowed: '../credentials/principal.js',
    wrong: '../handshake/authenticate.js',
  },
  handshake: {
    file: 'src/handshake/origin.ts',
    allowed: '../sockets/registry.js',
    wrong: '../server/app.js',
  },
  rooms: {
    file: 'src/rooms/rooms.ts',
    allowed: '../protocol/frames.js',
    wrong: '../chat/chat-service.js',
  },
  cluster: {
    file: 'src/cluster/messages.ts',
    allowed: '../rooms/rooms.js',
    wrong: '../chat/chat-service.js',
  },
  chat: {
    file: 'src/chat/protocol.ts',
    allowed: '../rooms/rooms.js',
    wrong: '../cluster/cluster.js',
  },
  endpoints: {
    file: 'src/endpoints/seed.ts',
    allowed: '../handshake/gate.js',
    wrong: '../server/app.js',
  },
  scan: {
    file: 'src/scan/types.ts',
    allowed: '../protocol/frames.js',
    wrong: '../handshake/gate.js',
  },
  server: {
    file: 'src/server/errors.ts',
    allowed: '../chat/chat-service.js',
    wrong: '../cli/main.js',
  },
  workers: {
    file: 'src/workers/channels.ts',
    allowed: '../server/serve.js',
    wrong: '../cli/main.js',
  },
  cli: { file: 'src/cli/table.ts', allowed: '../server/serve.js', wrong: '../client/index.js' },
  client: {
    file: 'src/client/errors.ts',
    allowed: '../protocol/frames.js',
    wrong: '../server/app.js',
  },
};

const eslint = new ESLint();

/** The boundary errors ESLint reports for `file` with `line` added at its top. */
async function boundaryErrors(file: string, line: string): Promise<string[]> {
  const text = `${line}\n${readFileSync(file, 'utf8')}`;
  const [result] = await eslint.lintText(text, { filePath: file });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'no-restricted-imports' && m.line === 1)
    .map((m) => m.message);
}

describe('layer rules in ESLint', () => {
  it('cover every folder under src/', async () => {
    const folders = readdirSync('src', { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    assert.deepEqual(Object.keys(cases).sort(), folders);
    for (const folder of folders) {
      const config = (await eslint.calculateConfigForFile(`src/${folder}/any.ts`)) as {
        rules?: Record<string, [string, { patterns?: { message?: string }[] }]>;
      };
      const patterns = config.rules?.['no-restricted-imports']?.[1]?.patterns ?? [];
      assert.ok(
        patterns.some((p) => p.message?.startsWith(`src/${folder} may import`)),
        `no layer rule for src/${folder}`,
      );
    }
  });

  for (const [part, { file, allowed, wrong }] of Object.entries(cases)) {
    it(`fail on an import src/${part} may not make, and pass one it may`, async () => {
      const refused = await boundaryErrors(file, `export type { X } from '${wrong}';`);
      assert.equal(refused.length, 1, `${file} importing ${wrong}: ${JSON.stringify(refused)}`);
      assert.deepEqual(await boundaryErrors(file, `export type { X } from '${allowed}';`), []);
    });
  }

  it('keep web/ to the browser-safe client', async () => {
    const file = 'web/src/chat.ts';
    assert.equal(
      (await boundaryErrors(file, "export type { X } from '../../src/server/app.js';")).length,
      1,
    );
    assert.deepEqual(
      await boundaryErrors(file, "export type { X } from '../../src/client/index.js';"),
      [],
    );
  });

  it('keep the root modules below every folder', async () => {
    const refused = await boundaryErrors(
      'src/clock.ts',
      "export type { X } from './sessions/revocations.js';",
    );
    assert.equal(refused.length, 1);
    assert.equal((await boundaryErrors('src/client/errors.ts', "import 'node:fs';")).length, 1);
  });
});
