import type { FastifyInstance } from 'fastify';
import { escapeHtml, htmlPage } from '../html.js';

/** What the WebSocket endpoints do, for `/openapi.json` (OpenAPI 3.0 cannot describe them). */
export const websocketDescription = `wsgate is authentication and authorization for WebSockets.

## WebSocket endpoints

| path | credential | behaviour |
|---|---|---|
| \`/secured-ws\` | access token | \`Welcome {username}!\`, then \`You wrote: {data}\` for each text frame |
| \`/ws\` | access token | \`Successfully Login!\`, \`Here your decoded token: {claims}\`, then echo |
| \`/ws/optional\` | optional | as \`/ws\`; without a credential \`Welcome guest!\` and echo |
| \`/ws/fresh\` | fresh access token | as \`/ws\`; a token that is not fresh is refused with 403 / 4403 |
| \`/ws/refresh\` | refresh token | as \`/ws\`; an access token is refused |
| \`/chat\` | access token with \`chat:read\` / \`chat:write\` | the chat protocol |

A credential arrives in exactly one way: \`Authorization: Bearer\`; subprotocols
\`wsgate.v1, wsgate.bearer.<jwt>\`; \`?token=<ticket>\` from \`POST /ws-ticket\`; the
\`access_token_cookie\` cookie with \`?csrf_token=\` and an allowed \`Origin\`; or a first message
\`{"type":"auth","token":"…"}\` within 5 s for \`wsgate.v1\` clients. Clients that did not offer
\`wsgate.v1\` are refused before the upgrade with an HTTP status; \`wsgate.v1\` clients get the
upgrade and then a close frame whose code says why (4401 invalid token, 4403 forbidden, 4410
revoked, 4419 expired, 4429 rate limited; see docs/protocol.md).`;

/** Turns the `code` spans of already-escaped text into <code> elements. */
function inlineCode(escaped: string): string {
  return escaped.replace(/`([^`]+)`/g, '<code>$1</code>');
}

interface Operation {
  summary?: string;
  description?: string;
  tags?: string[];
}

/** `/docs`: the OpenAPI description rendered as a page, with no script at all. */
export function docsRoutes(app: FastifyInstance): void {
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.get('/docs', { schema: { hide: true } }, async (_request, reply) => {
    const spec = app.swagger() as { paths?: Record<string, Record<string, Operation>> };
    const rows: string[] = [];
    for (const [path, methods] of Object.entries(spec.paths ?? {})) {
      for (const [method, op] of Object.entries(methods)) {
        rows.push(`<div class="card">
<p><span class="method method-${escapeHtml(method)}">${escapeHtml(method.toUpperCase())}</span> <code>${escapeHtml(path)}</code> — ${escapeHtml(op.summary ?? '')}</p>
${op.description ? `<p class="muted">${inlineCode(escapeHtml(op.description))}</p>` : ''}
</div>`);
      }
    }
    const ws = websocketDescription
      .split('\n\n')
      .map((para) => `<pre>${escapeHtml(para)}</pre>`)
      .join('\n');
    const body = `<main>
<h1>wsgate API</h1>
<p>The machine-readable description is at <a href="/openapi.json"><code>/openapi.json</code></a>.</p>
<h2>HTTP endpoints</h2>
${rows.join('\n')}
<h2>WebSocket endpoints</h2>
${ws}
</main>`;
    return reply.type('text/html; charset=utf-8').send(htmlPage('wsgate API', body));
  });
}
