import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkSuffix,
  matchProxyRoute,
  proxyRoute,
  upstreamPath,
  ProxyRouteError,
} from './route.js';
import { isWsgateError } from '../errors.js';

describe('proxy routes', () => {
  it('takes an exact path and a prefix path, and the upstream URL without its query as audience', () => {
    const exact = proxyRoute('/app', 'ws://127.0.0.1:9000/ws?v=2');
    assert.equal(exact.prefix, false);
    assert.equal(exact.base, '/app');
    assert.equal(exact.audience, 'ws://127.0.0.1:9000/ws');
    const prefix = proxyRoute('/app/*', 'wss://backend.internal/socket', {
      scopes: ['chat:read'],
      audience: 'backend',
    });
    assert.equal(prefix.prefix, true);
    assert.equal(prefix.base, '/app');
    assert.deepEqual(prefix.scopes, ['chat:read']);
    assert.equal(prefix.audience, 'backend');
  });

  it('refuses paths and upstreams that cannot be served, naming the route', () => {
    for (const [path, upstream] of [
      ['app', 'ws://h/'],
      ['/a*b', 'ws://h/'],
      ['/a/*/b/*', 'ws://h/'],
      ['/a/../b', 'ws://h/'],
      ['/a//b', 'ws://h/'],
      ['/a/%2e%2e', 'ws://h/'],
      ['/app/', 'ws://h/'],
      ['/app', 'http://h/'],
      ['/app', 'not a url'],
      ['/app', 'ws://user:pw@h/'],
      ['/app', 'ws://h/#x'],
    ] as const) {
      assert.throws(
        () => proxyRoute(path, upstream),
        (err: unknown) => err instanceof ProxyRouteError && err.message.includes(path),
        `${path} = ${upstream}`,
      );
    }
  });

  it('matches an exact route only on its own path, a prefix route on its base and below', () => {
    const exact = proxyRoute('/app', 'ws://h/ws');
    assert.equal(matchProxyRoute(exact, '/app'), '');
    assert.equal(matchProxyRoute(exact, '/app/x'), undefined);
    assert.equal(matchProxyRoute(exact, '/apps'), undefined);
    const prefix = proxyRoute('/app/*', 'ws://h/ws');
    assert.equal(matchProxyRoute(prefix, '/app'), '');
    assert.equal(matchProxyRoute(prefix, '/app/'), '/');
    assert.equal(matchProxyRoute(prefix, '/app/rooms/42'), '/rooms/42');
    assert.equal(matchProxyRoute(prefix, '/apps/x'), undefined);
    const root = proxyRoute('/*', 'ws://h/');
    assert.equal(matchProxyRoute(root, '/anything/here'), '/anything/here');
  });

  it('appends the suffix to the upstream path without doubling a slash', () => {
    assert.equal(upstreamPath(proxyRoute('/app/*', 'ws://h/ws'), '/rooms/1'), '/ws/rooms/1');
    assert.equal(upstreamPath(proxyRoute('/app/*', 'ws://h/ws/'), '/rooms/1'), '/ws/rooms/1');
    assert.equal(upstreamPath(proxyRoute('/app/*', 'ws://h'), '/rooms/1'), '/rooms/1');
    assert.equal(upstreamPath(proxyRoute('/app', 'ws://h/ws'), ''), '/ws');
  });

  it('refuses suffixes that climb out of the upstream path, as 400 invalid_request', () => {
    for (const suffix of [
      '/..',
      '/../admin',
      '/a/../../b',
      '/.',
      '/./x',
      '/%2e%2e/admin',
      '/%2E./x',
      '/.%2e',
      '/a%2fb',
      '/a%2F..',
      '/a%5cb',
      '/a\\b',
      '//evil',
      '/a//b',
      '/a%00',
    ]) {
      assert.throws(
        () => checkSuffix(suffix),
        (err: unknown) =>
          isWsgateError(err) && err.status === 400 && err.code === 'invalid_request',
        suffix,
      );
    }
    for (const suffix of ['', '/', '/rooms/42', '/a.b/c..d/.hidden', '/%20x', '/caf%C3%A9']) {
      assert.doesNotThrow(() => checkSuffix(suffix), suffix);
    }
  });
});
