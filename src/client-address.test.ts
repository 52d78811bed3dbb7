import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clientAddress, forwardedProto, trustedProxies } from './client-address.js';

describe('client address behind trusted proxies', () => {
  const trusted = trustedProxies(['10.0.0.0/8', '::1/128']);

  it('matches IPv4 blocks, IPv4-mapped IPv6 and IPv6 addresses', () => {
    assert.ok(trusted('10.1.2.3'));
    assert.ok(trusted('::ffff:10.1.2.3'));
    assert.ok(trusted('::1'));
    assert.ok(!trusted('11.0.0.1'));
    assert.ok(!trusted('not an address'));
    assert.ok(!trustedProxies([])('10.1.2.3'));
  });

  it('believes X-Forwarded-For only from a trusted peer', () => {
    assert.equal(clientAddress('10.0.0.5', '203.0.113.7', trusted), '203.0.113.7');
    assert.equal(clientAddress('198.51.100.1', '203.0.113.7', trusted), '198.51.100.1');
    assert.equal(clientAddress('10.0.0.5', undefined, trusted), '10.0.0.5');
  });

  it('takes the rightmost address that is not a trusted proxy, ignoring what the client wrote', () => {
    assert.equal(
      clientAddress('10.0.0.5', '1.1.1.1, 203.0.113.7, 10.0.0.9', trusted),
      '203.0.113.7',
    );
    assert.equal(clientAddress('10.0.0.5', ['1.1.1.1', '203.0.113.7'], trusted), '203.0.113.7');
    // Garbage stops the walk at the last good hop.
    assert.equal(clientAddress('10.0.0.5', 'nonsense, 10.0.0.9', trusted), '10.0.0.9');
  });

  it('reads X-Forwarded-Proto only from a trusted peer', () => {
    assert.equal(forwardedProto('10.0.0.5', 'https', trusted), 'https');
    assert.equal(forwardedProto('10.0.0.5', 'http, https', trusted), 'https');
    assert.equal(forwardedProto('198.51.100.1', 'https', trusted), undefined);
    assert.equal(forwardedProto('10.0.0.5', 'gopher', trusted), undefined);
  });
});
