import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { channelOf, decode, encode, type ClusterMessage } from './messages.js';

describe('cluster messages', () => {
  const messages: ClusterMessage[] = [
    { kind: 'revoke', node: 'a', sessionIds: ['s1', 's2'], reason: 'logout' },
    {
      kind: 'revoke',
      node: 'a',
      sessionIds: [],
      reason: 'backchannel_logout',
      external: [
        { issuer: 'https://idp.example', kind: 'sid', value: 'x1', revokedAt: 1, expiresAt: 2 },
      ],
    },
    {
      kind: 'chat',
      node: 'a',
      frame: { type: 'message', room: 'general', id: 7, user: 'johndoe', text: 'hi', ts: 1 },
    },
    {
      kind: 'chat',
      node: 'a',
      frame: { type: 'presence', room: 'general', user: 'johndoe', state: 'leave' },
    },
    { kind: 'hello', node: 'a' },
    { kind: 'beat', node: 'a' },
  ];

  it('decodes what it encodes, on the channel of its kind', () => {
    for (const message of messages) {
      assert.deepEqual(decode(channelOf(message), encode(message)), message);
    }
  });

  it('refuses what another node could not have sent, saying what is wrong', () => {
    const cases: Array<[Parameters<typeof decode>[0], string, RegExp]> = [
      ['nodes', 'not json', /JSON/],
      ['nodes', '[]', /not an object/],
      ['nodes', '{"kind":"beat"}', /no node id/],
      ['nodes', '{"node":"a","kind":"bye"}', /hello or beat/],
      ['revoke', '{"node":"a","sessionIds":[1],"reason":"logout"}', /sessionIds/],
      ['revoke', '{"node":"a","sessionIds":["s"],"reason":"because"}', /reason/],
      ['revoke', '{"node":"a","sessionIds":[],"reason":"admin","external":{}}', /list/],
      [
        'revoke',
        '{"node":"a","sessionIds":[],"reason":"admin","external":[{"issuer":"i","kind":"jti","value":"v","revokedAt":1,"expiresAt":2}]}',
        /kind/,
      ],
      [
        'chat',
        '{"node":"a","frame":{"type":"welcome","room":"general","user":"x"}}',
        /message or presence/,
      ],
      [
        'chat',
        '{"node":"a","frame":{"type":"presence","room":"Bad Room","user":"x","state":"join"}}',
        /room/,
      ],
      [
        'chat',
        '{"node":"a","frame":{"type":"presence","room":"r","user":"x","state":"away"}}',
        /state/,
      ],
      [
        'chat',
        '{"node":"a","frame":{"type":"message","room":"r","user":"x","id":"7","text":"t","ts":1}}',
        /id/,
      ],
      [
        'chat',
        '{"node":"a","frame":{"type":"message","room":"r","user":"x","id":7,"ts":1}}',
        /text/,
      ],
    ];
    for (const [channel, text, error] of cases) {
      assert.throws(() => decode(channel, text), error, text);
    }
  });
});
