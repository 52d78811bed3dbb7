// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Dependencies point one way: what each folder of src/ may import from the others. A folder not
 * listed here fails the test that checks the list covers src/ (test/lint-boundaries.test.ts).
 * From the root modules, only `runtime.ts`, `index.ts` and `config.ts` are off limits below
 * the server and the CLI; `clock.ts`, `errors.ts`, `token-bucket.ts`, `client-address.ts`,
 * `log.ts` and `metrics.ts` are for everyone, and import no folder themselves.
 */
const layers = {
  protocol: [],
  pubsub: [],
  storage: ['protocol'],
  tokens: ['storage'],
  issuers: ['tokens', 'storage', 'protocol'],
  credentials: ['tokens', 'issuers', 'storage', 'protocol'],
  users: ['storage'],
  sessions: ['users', 'credentials', 'tokens', 'issuers', 'storage', 'pubsub', 'protocol'],
  sockets: ['credentials', 'tokens', 'protocol'],
  proxy: ['sockets', 'credentials', 'tokens', 'protocol'],
  handshake: [
    'proxy',
    'sockets',
    'sessions',
    'credentials',
    'issuers',
    'tokens',
    'storage',
    'protocol',
  ],
  rooms: ['protocol'],
  cluster: ['rooms', 'sessions', 'pubsub', 'storage', 'protocol'],
  chat: ['rooms', 'handshake', 'sockets', 'credentials', 'tokens', 'storage', 'protocol'],
  endpoints: ['chat', 'handshake', 'sockets', 'credentials', 'tokens', 'protocol'],
  scan: ['protocol'],
  // The server may import every folder but the workers, the CLI and the client: set below.
  server: [],
  // Several processes on one port: the primary and its workers, each a server.
  workers: [
    'server',
    'sessions',
    'users',
    'handshake',
    'credentials',
    'tokens',
    'pubsub',
    'storage',
    'protocol',
  ],
  cli: [
    'workers',
    'server',
    'scan',
    'sessions',
    'users',
    'credentials',
    'issuers',
    'tokens',
    'storage',
    'pubsub',
    'protocol',
  ],
  // Browser-safe: no Node built-ins and no package either (see the rule below).
  client: ['protocol'],
};

layers.server = Object.keys(layers).filter(
  (p) => !['server', 'workers', 'cli', 'client'].includes(p),
);

const fastifyOnlyInServer = {
  group: ['fastify', '@fastify/*'],
  message: 'Only src/server imports Fastify.',
};

/** The import rule of one folder: every other folder it is not allowed is forbidden. */
function boundary(part, allowed) {
  const forbidden = Object.keys(layers).filter((p) => p !== part && !allowed.includes(p));
  const wiring = ['server', 'workers', 'cli'];
  const roots = wiring.includes(part) ? [] : ['runtime', 'index', 'config'];
  const alternatives = [...forbidden.map((p) => `${p}/`), ...roots.map((r) => `${r}\\.js$`)];
  const patterns = [];
  if (part !== 'server') patterns.push(fastifyOnlyInServer);
  if (alternatives.length > 0) {
    patterns.push({
      regex: `^(\\.\\./)+(${alternatives.join('|')})`,
      message: `src/${part} may import only ${allowed.length ? allowed.join(', ') : 'no other folder'} (eslint.config.js, layers).`,
    });
  }
  if (part === 'client') {
    patterns.push({
      regex: '^(node:|ws$)',
      message: 'The client is browser-safe: no Node built-ins, no package.',
    });
  }
  return {
    files: [`src/${part}/**/*.ts`],
    ignores: ['**/*.test.ts', '**/*.test-suite.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns }] },
  };
}

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'dist-check/**',
      'node_modules/**',
      'data/**',
      'coverage/**',
      'test-results/**',
      'web/dist/**',
      'bench/.build/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Only src/server may import the HTTP framework; the root modules import no folder but
    // src/protocol, except the few that wire the node.
    files: ['src/*.ts'],
    ignores: ['src/index.ts', 'src/runtime.ts', 'src/config.ts', '**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            fastifyOnlyInServer,
            {
              regex: '^\\./(?!protocol/)[a-z-]+/',
              message:
                'The root modules are below every folder but src/protocol: they import no other.',
            },
          ],
        },
      ],
    },
  },
  ...Object.entries(layers).map(([part, allowed]) => boundary(part, allowed)),
  {
    // The pages see the server only through the browser-safe client.
    files: ['web/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(\\.\\./)+src/(?!client/)',
              message: 'web/ imports only src/client.',
            },
            { regex: '^(node:|ws$|fastify$|@fastify/)', message: 'web/ runs in the browser.' },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      parserOptions: { projectService: false, project: null },
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
    },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      // node:assert/strict is declared with `export =`, which the type-aware rules cannot follow.
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
);
