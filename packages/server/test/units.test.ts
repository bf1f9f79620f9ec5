// Unit tests of the pieces with no sockets: HS256 tokens, the signaling payload validator, the token bucket,
// the frame parser, and the Prometheus text.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DisconnectError } from '../src/codes.ts';
import { JwtError, signJwt, verifyJwt } from '../src/jwt.ts';
import { createLogger } from '../src/log.ts';
import { MetricsRegistry } from '../src/metrics.ts';
import { DEFAULT_LIMITS, resolveLimits, resolveTiming } from '../src/options.ts';
import { parseFrame } from '../src/protocol.ts';
import { TokenBucket } from '../src/rate-limit.ts';
import { isSignalingMessage, validateSignalingMessage } from '../src/signaling-messages.ts';

const key = Buffer.from('k');

describe('jwt', () => {
  test('round trip, and the refusals with their reasons', () => {
    const token = signJwt({ sub: 'a', exp: 200 }, key);
    assert.deepEqual(verifyJwt(token, key, 100), { sub: 'a', exp: 200 });
    const reason = (f: () => unknown): string => {
      try {
        f();
      } catch (err) {
        assert.ok(err instanceof JwtError, 'refusals are JwtErrors');
        return err.reason;
      }
      return 'accepted';
    };
    assert.equal(reason(() => verifyJwt(token, key, 200)), 'expired', 'exp is exclusive');
    assert.equal(reason(() => verifyJwt(token, Buffer.from('other'), 100)), 'signature');
    const [h, , s] = token.split('.');
    const forgedClaims = Buffer.from(JSON.stringify({ sub: 'b', exp: 200 })).toString('base64url');
    assert.equal(reason(() => verifyJwt(`${h}.${forgedClaims}.${s}`, key, 100)), 'signature', 'changed claims break the signature');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${forgedClaims}.`;
    assert.equal(reason(() => verifyJwt(none, key, 100)), 'algorithm', 'alg none is refused');
    assert.equal(reason(() => verifyJwt('a.b', key, 100)), 'malformed');
    assert.equal(reason(() => verifyJwt('!!.!!.!!', key, 100)), 'malformed');
    assert.equal(reason(() => verifyJwt(signJwt({ nbf: 150 }, key), key, 100)), 'not-yet-valid');
    assert.equal(reason(() => verifyJwt(signJwt({ exp: 'soon' }, key), key, 100)), 'malformed');
  });
});

describe('signaling messages', () => {
  const valid = [
    { type: 'offer', from: 'a', to: 'b', sdp: 'v=0' },
    { type: 'answer', from: 'a', to: 'b', sdp: 'v=0', generation: 3 },
    { type: 'ice-candidate', from: 'a', to: 'b', candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 } },
    { type: 'ice-candidate', from: 'a', to: 'b', candidate: null },
    { type: 'peer-joined', from: 'a' },
    { type: 'peer-joined', from: 'a', name: 'Ann' },
    { type: 'peer-list', from: 'a', to: 'b', peers: ['c', 'd'] },
  ];
  for (const m of valid) {
    test(`accepts ${JSON.stringify(m)}`, () => {
      const r = validateSignalingMessage(m);
      assert.ok(r.ok, r.ok ? '' : r.reason);
      assert.ok(isSignalingMessage(m), 'the type guard agrees');
    });
  }

  const invalid: Array<[string, unknown]> = [
    ['not an object', 'offer'],
    ['an unknown type', { type: 'chat', from: 'a' }],
    ['an extra field', { type: 'offer', from: 'a', to: 'b', sdp: 'v=0', raft: {} }],
    ['no to on an offer', { type: 'offer', from: 'a', sdp: 'v=0' }],
    ['to on peer-joined', { type: 'peer-joined', from: 'a', to: 'b' }],
    ['an empty sdp', { type: 'answer', from: 'a', to: 'b', sdp: '' }],
    ['a bad peer id', { type: 'peer-joined', from: 'a b' }],
    ['a negative generation', { type: 'peer-joined', from: 'a', generation: -1 }],
    ['a candidate with an extra field', { type: 'ice-candidate', from: 'a', to: 'b', candidate: { candidate: 'c', foo: 1 } }],
    ['a candidate without candidate', { type: 'ice-candidate', from: 'a', to: 'b', candidate: {} }],
    ['a bad sdpMLineIndex', { type: 'ice-candidate', from: 'a', to: 'b', candidate: { candidate: 'c', sdpMLineIndex: 1.5 } }],
    ['peers not ids', { type: 'peer-list', from: 'a', to: 'b', peers: ['c', 7] }],
    ['a long name', { type: 'peer-joined', from: 'a', name: 'x'.repeat(65) }],
  ];
  for (const [what, m] of invalid) {
    test(`refuses ${what}`, () => {
      const r = validateSignalingMessage(m);
      assert.ok(!r.ok && r.reason.length > 0, `refused with a reason: ${JSON.stringify(r)}`);
    });
  }
});

describe('token bucket', () => {
  test('allows the burst, then the rate', () => {
    let t = 0;
    const bucket = new TokenBucket(2, 3, () => t);
    assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [true, true, true, false]);
    t = 499;
    assert.equal(bucket.take(), false, 'under one token after 499 ms at 2/s');
    t = 500;
    assert.equal(bucket.take(), true, 'one token after 500 ms');
    t = 60_000;
    assert.ok(bucket.isFull(), 'refills to the burst, not beyond');
    assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [true, true, true, false]);
  });
});

describe('frames', () => {
  test('newline-separated commands, empty lines skipped, {} is a pong', () => {
    const cmds = parseFrame('{"id":1,"connect":{"token":"t"}}\n\n{}\n{"id":2,"presence":{"channel":"room:a"}}');
    assert.deepEqual(
      cmds.map((c) => c.method),
      ['connect', 'pong', 'presence'],
    );
  });
  test('unknown fields of a request are ignored (newer clients send more)', () => {
    const [cmd] = parseFrame('{"id":3,"subscribe":{"channel":"room:a","token":"t","flag":1,"join_leave":true}}');
    assert.deepEqual(cmd, { method: 'subscribe', id: 3, req: { channel: 'room:a', token: 't' } });
  });
  for (const bad of ['', '\n', 'nope', '{"id":1}', '{"id":-1,"presence":{"channel":"room:a"}}', '{"id":1,"publish":{"channel":"room:a"}}', '{"id":1,"refresh":{}}']) {
    test(`${JSON.stringify(bad)} is a bad request`, () => {
      assert.throws(() => parseFrame(bad), (err: unknown) => err instanceof DisconnectError && err.disconnect.code === 3501);
    });
  }
});

describe('metrics text', () => {
  test('families with HELP and TYPE, labels escaped, unused counters at 0', () => {
    const r = new MetricsRegistry();
    const c = r.counter('x_total', 'X.');
    r.counter('unused_total', 'Never used.');
    r.gauge('g', 'G.', () => 7);
    c({ path: 'a"b\\c\nd' }, 2);
    c({ path: 'a"b\\c\nd' });
    assert.equal(r.render(), ['# HELP x_total X.', '# TYPE x_total counter', 'x_total{path="a\\"b\\\\c\\nd"} 3', '# HELP unused_total Never used.', '# TYPE unused_total counter', 'unused_total 0', '# HELP g G.', '# TYPE g gauge', 'g 7', ''].join('\n'));
  });
});

describe('options', () => {
  test('undefined overrides keep the defaults; non-positive values are refused', () => {
    assert.equal(resolveLimits({ peersPerRoom: undefined }).peersPerRoom, DEFAULT_LIMITS.peersPerRoom);
    assert.equal(resolveTiming({ pingIntervalMs: 100 }).pingIntervalMs, 100);
    assert.throws(() => resolveLimits({ messagesPerSecond: 0 }), RangeError);
    assert.throws(() => resolveTiming({ pongTimeoutMs: Number.NaN }), RangeError);
  });
});

describe('logs', () => {
  test('JSON lines at the level and above; RAFTRTC_LOG applies when no level is given', () => {
    const lines: string[] = [];
    const log = createLogger('info', (l) => lines.push(l));
    log.debug('hidden');
    log.info('shown', { room: 'a' });
    log.error('also');
    assert.deepEqual(
      lines.map((l) => JSON.parse(l)).map(({ level, msg, room }) => ({ level, msg, room })),
      [
        { level: 'info', msg: 'shown', room: 'a' },
        { level: 'error', msg: 'also', room: undefined },
      ],
    );
    const saved = process.env.RAFTRTC_LOG;
    try {
      process.env.RAFTRTC_LOG = 'debug';
      const fromEnv: string[] = [];
      createLogger(undefined, (l) => fromEnv.push(l)).debug('x');
      assert.equal(fromEnv.length, 1, 'RAFTRTC_LOG=debug shows debug lines');
      process.env.RAFTRTC_LOG = 'nonsense';
      const quiet: string[] = [];
      createLogger(undefined, (l) => quiet.push(l)).info('x');
      assert.equal(quiet.length, 0, 'an unknown RAFTRTC_LOG falls back to warn');
    } finally {
      if (saved === undefined) delete process.env.RAFTRTC_LOG;
      else process.env.RAFTRTC_LOG = saved;
    }
  });
});
