// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Dependencies point one way: server → chat/sessions/handshake → credentials/tokens → storage/pubsub. */
const lowerLayers = [
  'src/tokens/**',
  'src/issuers/**',
  'src/credentials/**',
  'src/storage/**',
  'src/pubsub/**',
];

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
    // Only src/server may import the HTTP framework.
    files: ['src/**/*.ts'],
    ignores: ['src/server/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['fastify', '@fastify/*'], message: 'Only src/server imports Fastify.' },
          ],
        },
      ],
    },
  },
  {
    files: lowerLayers,
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['fastify', '@fastify/*'], message: 'Only src/server imports Fastify.' },
            {
              group: [
                '**/server/*',
                '**/chat/*',
                '**/handshake/*',
                '**/sessions/*',
                '**/cli/*',
                '**/rooms/*',
              ],
              message: 'Lower layers must not import the layers above them.',
            },
          ],
        },
      ],
    },
  },
  {
    // wsgate/client is browser-safe and self-contained: no Node built-ins, no package, and from
    // the rest of src only the wire protocol and the clock. Its tests (real servers, node:test) are exempt.
    files: ['src/client/**'],
    ignores: ['src/client/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(node:|\\.\\./(?!protocol/|clock\\.js$)|ws$|fastify$|@fastify/)',
              message:
                'The client is browser-safe and imports nothing outside src/client, src/protocol and src/clock.ts.',
            },
          ],
        },
      ],
    },
  },
  {
    // The wire protocol is shared by the server and the browser-safe client: it imports nothing.
    files: ['src/protocol/**'],
    ignores: ['src/protocol/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', '../*', 'ws', 'fastify', '@fastify/*'],
              message: 'src/protocol is shared with the browser-safe client: it imports nothing.',
            },
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
