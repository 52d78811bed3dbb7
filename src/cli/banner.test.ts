import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../config.js';
import { startupBanner } from './banner.js';

describe('startupBanner', () => {
  it('shows a cluster node its database, Redis, trusted issuers and proxy routes, never a password', () => {
    const config = loadConfig(
      {
        database: 'postgres://wsgate:db-secret@db.internal/wsgate',
        proxy: ['/app=ws://10.0.0.5:9000/'],
        trust: ['https://idp.example', 'https://login.example=https://login.example/keys'],
      },
      { WSGATE_REDIS: 'redis://:redis-secret@cache.internal:6379' },
    );
    const text = startupBanner({
      config,
      version: '1.2.3',
      url: 'http://127.0.0.1:8000',
      issuer: 'https://chat.example',
      users: 2,
    });
    assert.match(text, /^ {2}users +2 \(wsgate user list --database <the same URL>\)$/m);
    assert.match(
      text,
      /^ {2}database +PostgreSQL postgres:\/\/wsgate:\*\*\*@db\.internal\/wsgate; signing keys in the database$/m,
    );
    assert.match(
      text,
      /^ {2}cluster +Redis redis:\/\/:\*\*\*@cache\.internal:6379, prefix wsgate:$/m,
    );
    assert.match(text, /^ {2}issuer +https:\/\/chat\.example$/m);
    assert.match(text, /^ {2}proxy +\/app → ws:\/\/10\.0\.0\.5:9000\/$/m);
    assert.match(text, /^ {2}trusts +https:\/\/idp\.example$/m);
    assert.match(
      text,
      /^ {2}trusts +https:\/\/login\.example \(keys at https:\/\/login\.example\/keys\)$/m,
    );
    assert.doesNotMatch(text, /secret/);
  });
});
