import type { FastifyInstance } from 'fastify';
import swaggerUi from '@fastify/swagger-ui';
import { catalogue } from '../../errors.js';

/** A Markdown table; `|` inside a cell is escaped. */
function markdownTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/**
 * What the WebSocket endpoints do, for `/openapi.json` and `/docs` (OpenAPI 3.0 cannot describe
 * them): Markdown that the API reference renders as tables. The close codes come from the error
 * catalogue.
 */
export const websocketDescription = `wsgate is authentication and authorization for WebSockets: every credential transport is checked before the upgrade and for the whole life of the socket.

## WebSocket endpoints

${markdownTable(
  ['path', 'credential', 'behaviour'],
  [
    [
      '`/secured-ws`',
      'access token',
      '`Welcome {username}!`, then `You wrote: {data}` for each text frame',
    ],
    [
      '`/ws`',
      'access token',
      '`Successfully Login!`, `Here your decoded token: {claims}`, then echo',
    ],
    ['`/ws/optional`', 'optional', 'as `/ws`; without a credential `Welcome guest!` and echo'],
    [
      '`/ws/fresh`',
      'fresh access token',
      'as `/ws`; a token that is not fresh is refused with 403 / 4403',
    ],
    ['`/ws/refresh`', 'refresh token', 'as `/ws`; an access token is refused'],
    ['`/chat`', 'access token with `chat:read` / `chat:write`', 'the chat protocol (docs/chat.md)'],
  ],
)}

## Credential transports

A credential arrives in exactly one way; two at once are refused (\`ambiguous_credential\`).

${markdownTable(
  ['transport', 'how the client sends it'],
  [
    [
      'Authorization header',
      '`Authorization: Bearer <jwt>` on the upgrade request (not from browsers)',
    ],
    [
      'subprotocol',
      '`Sec-WebSocket-Protocol: wsgate.v1, wsgate.bearer.<jwt>`; the server answers `wsgate.v1` (on a proxied route, offer `wsgate.proxy` too: see docs/proxy.md)',
    ],
    [
      'ticket',
      '`?token=<ticket>` from `POST /ws-ticket`: single use, 30 s, bound to the user and session',
    ],
    [
      'cookie',
      '`access_token_cookie` with `?csrf_token=<csrf_access_token>` and an allowed `Origin`',
    ],
    [
      'first message',
      '`{"type":"auth","token":"<jwt>"}` within 5 s after the upgrade, for `wsgate.v1` clients',
    ],
  ],
)}

## Close codes

Clients that did not offer \`wsgate.v1\` are refused before the upgrade with the HTTP status;
\`wsgate.v1\` clients get the upgrade and then a close frame with the close code and the message as
its reason.

${markdownTable(
  ['error', 'HTTP status before the upgrade', 'close code after it', 'reason'],
  Object.entries(catalogue).map(([code, entry]) => [
    `\`${code}\``,
    String(entry.status),
    String(entry.close),
    entry.message,
  ]),
)}`;

/**
 * `/docs`: the OpenAPI description in Swagger UI, whose scripts and styles are files served from
 * this origin, so the pages' CSP (no inline script or style) holds here too. `/openapi.json`: the
 * description itself.
 */
export async function docsRoutes(app: FastifyInstance): Promise<void> {
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    theme: { title: 'wsgate API' },
    // No call to the public validator.swagger.io.
    validatorUrl: false,
    uiConfig: {
      // The base layout has no top bar: no box to load any other URL's description, and no
      // Swagger logo, an SVG with an inline <style> that the CSP refuses.
      layout: 'BaseLayout',
      docExpansion: 'list',
      defaultModelsExpandDepth: -1,
      deepLinking: false,
    },
  });
}
