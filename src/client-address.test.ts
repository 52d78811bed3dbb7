import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addressKey, clientAddress, forwardedProto, trustedProxies } from './client-address.js';

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

describe('the key per-address limits count under', () => {
  it('is an IPv4 address itself, also written IPv4-mapped', () => {
    assert.equal(addressKey('198.51.100.7'), '198.51.100.7');
    assert.equal(addressKey('::ffff:198.51.100.7'), '198.51.100.7');
    assert.equal(addressKey('::FFFF:198.51.100.7'), '198.51.100.7');
  });

  it('is the /64 of an IPv6 address, however it is written', () => {
    const key = '2001:db8:1:2::/64';
    for (const ip of [
      '2001:db8:1:2::1',
      '2001:0DB8:0001:0002:ffff:1:2:3',
      '2001:db8:1:2:61:0:0:6',
      '2001:db8:1:2:3:4:1.2.3.4',
      '2001:db8:1:2::',
    ])
      assert.equal(addressKey(ip), key, ip);
    assert.notEqual(addressKey('2001:db8:1:3::1'), key);
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
  });

  it('leaves anything else as it is', () => {
    assert.equal(addressKey(''), '');
    assert.equal(addressKey('unknown'), 'unknown');
  });
});
