import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hostChecker, hostOf, splitHost, targetAuthority } from './host.js';
import { isOriginAllowed } from './origin.js';

describe('splitHost', () => {
  it('reads a name, an address and a bracketed IPv6 address, with or without a port', () => {
    assert.deepEqual(splitHost('Chat.Example:8443'), { name: 'chat.example', port: 8443 });
    assert.deepEqual(splitHost('chat.example.'), { name: 'chat.example', port: undefined });
    assert.deepEqual(splitHost('127.0.0.1:80'), { name: '127.0.0.1', port: 80 });
    assert.deepEqual(splitHost('[::1]:8302'), { name: '::1', port: 8302 });
    assert.deepEqual(splitHost('[::1]'), { name: '::1', port: undefined });
  });

  it('refuses what is not a host', () => {
    for (const bad of [
      '',
      ':80',
      'a.example:',
      'a.example:99999',
      'a.example:8x',
      '::1',
      '[::1',
      '[::1]x',
      '[not-v6]:80',
      'a.example/evil',
      'a b',
      'user@a.example',
    ])
      assert.equal(splitHost(bad), undefined, bad);
  });
});

describe('hostChecker', () => {
  const production = hostChecker({
    issuer: 'https://chat.example',
    loopback: false,
    allowed: ['internal.example', 'alt.example:8443'],
  });

  it("answers the issuer's name on its port, or with no port (a TLS terminator in front)", () => {
    assert.equal(production('chat.example'), true);
    assert.equal(production('CHAT.example:443'), true);
    assert.equal(production('chat.example.'), true);
    assert.equal(production('chat.example:8443'), false);
  });

  it('refuses a rebinding name, a missing Host and loopback names off loopback', () => {
    assert.equal(production('rebind.attacker.example:8000'), false);
    assert.equal(production('chat.example.attacker.example'), false);
    assert.equal(production(undefined), false);
    assert.equal(production('127.0.0.1:8302'), false);
    assert.equal(production('localhost'), false);
  });

  it('answers --allowed-host names on any port, and name:port entries on that port only', () => {
    assert.equal(production('internal.example:1234'), true);
    assert.equal(production('alt.example:8443'), true);
    assert.equal(production('alt.example:8444'), false);
    assert.equal(production('alt.example'), false);
  });

  it('answers loopback names on any port when listening on loopback', () => {
    const local = hostChecker({ issuer: 'http://127.0.0.1:8302', loopback: true });
    for (const host of ['127.0.0.1:8302', 'localhost:5173', '[::1]:1', '127.1.2.3'])
      assert.equal(local(host), true, host);
    assert.equal(local('rebind.attacker.example:8302'), false);
  });

  it('follows an issuer known only later', () => {
    let issuer = 'http://wsgate.test:0';
    const check = hostChecker({ issuer: () => issuer, loopback: false });
    assert.equal(check('wsgate.test:4000'), false);
    issuer = 'http://wsgate.test:4000';
    assert.equal(check('wsgate.test:4000'), true);
  });

  it('checks a Host it allowed last time again once the issuer has changed', () => {
    let issuer = 'http://wsgate.test:4000';
    const check = hostChecker({ issuer: () => issuer, loopback: false });
    assert.equal(check('wsgate.test:4000'), true);
    assert.equal(check('wsgate.test:4000'), true);
    issuer = 'http://moved.test:4000';
    assert.equal(check('wsgate.test:4000'), false);
    assert.equal(check('moved.test:4000'), true);
    assert.equal(check('wsgate.test:4000'), false);
  });
});

describe('isOriginAllowed', () => {
  const site = { host: 'chat.example', scheme: 'https' as const, allowed: ['https://app.example'] };

  it('passes a request without Origin (not a browser)', () => {
    assert.equal(isOriginAllowed(undefined, site), true);
  });

  it('compares scheme, host and port with the site', () => {
    assert.equal(isOriginAllowed('https://chat.example', site), true);
    assert.equal(isOriginAllowed('https://chat.example:443', site), true);
    assert.equal(isOriginAllowed('http://chat.example', site), false);
    assert.equal(isOriginAllowed('https://chat.example:8443', site), false);
    assert.equal(
      isOriginAllowed('http://127.0.0.1:8000', {
        ...site,
        host: '127.0.0.1:8000',
        scheme: 'https',
      }),
      false,
    );
  });

  it('passes an allowed origin and refuses null, other schemes and garbage', () => {
    assert.equal(isOriginAllowed('https://app.example', site), true);
    for (const bad of ['null', '', 'file://x', 'chrome-extension://abc', 'not a url'])
      assert.equal(isOriginAllowed(bad, site), false, bad);
  });

  it('refuses every Origin when the Host is missing or malformed', () => {
    assert.equal(isOriginAllowed('https://chat.example', { ...site, host: undefined }), false);
    assert.equal(
      isOriginAllowed('https://chat.example', { ...site, host: 'chat.example/evil' }),
      false,
    );
  });
});

describe('hostOf and targetAuthority', () => {
  const req = (rawHeaders: string[]) => ({
    rawHeaders,
    headers: { host: rawHeaders[1] },
  });

  it('gives every Host when there is more than one, whatever their case', () => {
    assert.equal(hostOf(req(['Host', 'a.example'])), 'a.example');
    assert.deepEqual(hostOf(req(['Host', 'a.example', 'HOST', 'b.example'])), [
      'a.example',
      'b.example',
    ]);
    assert.equal(hostOf({ rawHeaders: [], headers: {} }), undefined);
  });

  it('reads the authority of an absolute-form target only', () => {
    assert.equal(targetAuthority('/login'), undefined);
    assert.equal(targetAuthority('*'), undefined);
    assert.equal(targetAuthority('http://rebind.example:8000/login'), 'rebind.example:8000');
    assert.equal(targetAuthority('not a url'), '');
  });
});
