import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { proxyRoute } from './route.js';
import {
  buildUpstreamRequest,
  encodeHeaderValue,
  forwardedCookies,
  forwardedQuery,
  isWsgateHeader,
  type UpstreamRequestInput,
} from './upstream-request.js';

function input(overrides: Partial<UpstreamRequestInput> = {}): UpstreamRequestInput {
  return {
    route: proxyRoute('/app/*', 'ws://127.0.0.1:9000/ws'),
    suffix: '/rooms/1',
    query: 'a=1&token=T&b=2',
    protocols: ['wsgate.v1', 'wsgate.bearer.eyJ.x.y', 'chat.v2', 'WSGATE.other'],
    rawHeaders: [
      'Host',
      'gate.example',
      'Origin',
      'https://app.example',
      'User-Agent',
      'test-agent',
      'Authorization',
      'Bearer secret',
      'Cookie',
      'access_token_cookie=AT; theme=dark; csrf_access_token=C',
      'Cookie',
      'refresh_token_cookie=RT; lang=fr',
      'X-Wsgate-User',
      'admin',
      'x-wsgate_scope',
      'wsgate:admin',
      'X_WSGATE_SESSION',
      'spoofed',
      'x-WsGate-Identity',
      'forged.jwt.here',
      'X-Forwarded-For',
      '6.6.6.6',
      'X-Forwarded-Proto',
      'https',
      'X-Forwarded-Host',
      'evil.example',
      'Forwarded',
      'for=6.6.6.6',
      'Sec-WebSocket-Key',
      'dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version',
      '13',
      'Sec-WebSocket-Protocol',
      'wsgate.v1, wsgate.bearer.eyJ.x.y, chat.v2',
      'Sec-WebSocket-Extensions',
      'permessage-deflate',
      'Connection',
      'Upgrade, X-Hop',
      'Upgrade',
      'websocket',
      'X-Hop',
      'drop me',
      'Accept-Language',
      'fr',
      'X-Custom',
      'one',
      'X-Custom',
      'two',
    ],
    forwardedFor: '10.0.0.7',
    proto: 'http',
    host: 'gate.example',
    identity: {
      user: 'johndoe',
      scope: 'chat:read chat:write',
      session: 'sid-1',
      issuer: 'http://wsgate.test',
    },
    identityToken: 'identity.jwt.token',
    ...overrides,
  };
}

describe('upstream request', () => {
  it('targets the upstream path plus the suffix, with the query minus credentials', () => {
    const { url } = buildUpstreamRequest(input());
    assert.equal(url.href, 'ws://127.0.0.1:9000/ws/rooms/1?a=1&b=2');
    const withOwnQuery = buildUpstreamRequest(
      input({
        route: proxyRoute('/app', 'ws://h:1/ws?v=2'),
        suffix: '',
        query: 'csrf_token=c&x=%20y',
      }),
    );
    assert.equal(withOwnQuery.url.href, 'ws://h:1/ws?v=2&x=%20y');
  });

  it('drops token and csrf_token however they are spelled in the query, keeping every other byte', () => {
    assert.equal(
      forwardedQuery('token=a&tok%65n=b&csrf%5Ftoken=c&csrf_token&x=1&y=%2F+z'),
      'x=1&y=%2F+z',
    );
    assert.equal(forwardedQuery('tokens=1&atoken=2'), 'tokens=1&atoken=2');
    assert.equal(forwardedQuery(''), '');
  });

  it('offers the client subprotocols but wsgate.*', () => {
    assert.deepEqual(buildUpstreamRequest(input()).protocols, ['chat.v2']);
  });

  it('never forwards credentials, wsgate cookies or anything that reads as X-Wsgate-*', () => {
    const { headers } = buildUpstreamRequest(input());
    const text = JSON.stringify(headers);
    for (const secret of [
      'Bearer secret',
      'AT',
      'RT',
      'csrf_access_token',
      'eyJ',
      'forged',
      'spoofed',
      'admin',
      '6.6.6.6',
      'evil',
      'drop me',
    ]) {
      assert.ok(!text.includes(secret), `${secret} reached the upstream: ${text}`);
    }
    assert.equal(headers.authorization, undefined);
    assert.equal(headers.cookie, 'theme=dark; lang=fr');
    for (const name of Object.keys(headers)) {
      if (name.startsWith('x-wsgate-'))
        assert.ok(
          [
            'x-wsgate-user',
            'x-wsgate-scope',
            'x-wsgate-session',
            'x-wsgate-issuer',
            'x-wsgate-identity',
          ].includes(name),
          name,
        );
      else assert.ok(!isWsgateHeader(name), name);
    }
  });

  it('passes Origin as sent and the other end-to-end headers, repeated ones kept', () => {
    const { headers } = buildUpstreamRequest(input());
    assert.equal(headers.origin, 'https://app.example');
    assert.equal(headers['user-agent'], 'test-agent');
    assert.equal(headers['accept-language'], 'fr');
    assert.deepEqual(headers['x-custom'], ['one', 'two']);
    assert.equal(headers.host, undefined, 'the dial sets the upstream Host');
    assert.equal(headers['sec-websocket-key'], undefined);
  });

  it('sets X-Forwarded-* and the identity headers itself', () => {
    const { headers } = buildUpstreamRequest(input());
    assert.equal(headers['x-forwarded-for'], '10.0.0.7');
    assert.equal(headers['x-forwarded-proto'], 'http');
    assert.equal(headers['x-forwarded-host'], 'gate.example');
    assert.equal(headers['x-wsgate-user'], 'johndoe');
    assert.equal(headers['x-wsgate-scope'], 'chat:read chat:write');
    assert.equal(headers['x-wsgate-session'], 'sid-1');
    assert.equal(headers['x-wsgate-issuer'], 'http://wsgate.test');
    assert.equal(headers['x-wsgate-identity'], 'identity.jwt.token');
  });

  it('omits a Cookie header left empty once wsgate cookies are gone', () => {
    const { headers } = buildUpstreamRequest(
      input({ rawHeaders: ['Cookie', 'access_token_cookie=AT; csrf_access_token=C'] }),
    );
    assert.equal(headers.cookie, undefined);
    assert.equal(forwardedCookies(' a=1 ;; refresh_token_cookie=x;b=2'), 'a=1; b=2');
  });

  it('reads X-Wsgate-* with _ as - and in any case', () => {
    for (const name of [
      'X-Wsgate-User',
      'x_wsgate_user',
      'X-WSGATE_Identity',
      'x-wsgate-',
      'X_Wsgate-Anything',
    ]) {
      assert.ok(isWsgateHeader(name), name);
    }
    for (const name of ['x-wsgateuser', 'wsgate-user', 'x-forwarded-for', 'x-wsgat-e']) {
      assert.ok(!isWsgateHeader(name), name);
    }
  });

  it('percent-encodes identity values that are not printable ASCII, and % itself', () => {
    assert.equal(encodeHeaderValue('johndoe'), 'johndoe');
    assert.equal(encodeHeaderValue('josé'), 'jos%C3%A9');
    assert.equal(encodeHeaderValue('a%b'), 'a%25b');
    assert.equal(encodeHeaderValue('line\r\nX-Evil: 1'), 'line%0D%0AX-Evil: 1');
    assert.equal(
      encodeHeaderValue('idp.example:ユーザー'),
      `idp.example:${encodeURIComponent('ユーザー')}`,
    );
    assert.equal(decodeURIComponent(encodeHeaderValue('josé 100%')), 'josé 100%');
  });
});
