import assert from 'node:assert/strict';
import dns from 'node:dns';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { AddressInfo, Socket } from 'node:net';
import { describe, mock, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { TesseraError } from '../../src/errors.ts';
import { blockedAddress, blockedHostName } from '../../src/image/address.ts';
import { mapConcurrent } from '../../src/concurrency.ts';
import { DEFAULT_FETCH_POLICY, fetchImage } from '../../src/image/fetch.ts';
import { noiseImage } from '../helpers/images.ts';
import { rejectsWith } from '../helpers/errors.ts';

const PNG = await noiseImage(48, 32, 7, 'png');
const SVG = Buffer.from('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');

// A self-signed test certificate (P-256, valid until 2126) for images.test and 127.0.0.1.
const TLS_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgyTRswxglpYL6gaIK
PfwBo8VkHZ1lPjaZ2QUtuxN+kluhRANCAAR7WpHA++Q/EUHSwMXw3M4AnanDgyRH
BU0CTp4r68nUyOMmi3tjmWdsybyrb7EenSRYQDPcIbq8WHFfXFfED5xl
-----END PRIVATE KEY-----`;
const TLS_CERT = `-----BEGIN CERTIFICATE-----
MIIBozCCAUmgAwIBAgIUaIC9+wR7OftRJh+z/agZkf0grLswCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMdGVzc2VyYS10ZXN0MCAXDTI2MTEyOTEwNDgzOVoYDzIxMjYx
MTA1MTA0ODM5WjAXMRUwEwYDVQQDDAx0ZXNzZXJhLXRlc3QwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAR7WpHA++Q/EUHSwMXw3M4AnanDgyRHBU0CTp4r68nUyOMm
i3tjmWdsybyrb7EenSRYQDPcIbq8WHFfXFfED5xlo3EwbzAdBgNVHQ4EFgQUxE2Q
ZT8aS+VmOqLQS4+YtEkYQKwwHwYDVR0jBBgwFoAUxE2QZT8aS+VmOqLQS4+YtEkY
QKwwDwYDVR0TAQH/BAUwAwEB/zAcBgNVHREEFTATggtpbWFnZXMudGVzdIcEfwAA
ATAKBggqhkjOPQQDAgNIADBFAiBpiXE6her8EJpfU5WyekclgF2agNnF9A3ve93M
2qflrgIhAKxD++hY0YHVq6uNF0jbwIZam9d29KBfPrJ1kjf4JQxD
-----END CERTIFICATE-----`;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface TestServer {
  host: string;
  port: number;
  url(path?: string): string;
  /** TCP connections accepted so far. */
  connections: number;
  requests: IncomingMessage[];
  close(): Promise<void>;
}

/** A real HTTP server on a loopback address; port 0 unless given. */
async function serve(host: string, handler: Handler, port = 0): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    state.requests.push(req);
    handler(req, res);
  });
  server.on('connection', (socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  const state: TestServer = {
    host,
    port: bound,
    url: (path = '/') => `http://${shown}:${bound}${path}`,
    connections: 0,
    requests: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return state;
}

const image = (body: Buffer = PNG, type: string | undefined = 'image/png'): Handler => (_req, res) => {
  if (type !== undefined) res.setHeader('content-type', type);
  res.end(body);
};

/** Policy for servers on 127.0.0.1 in tests that are not about address checks. */
const LOCAL = { allowAddresses: ['127.0.0.1'] } as const;


/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const server = await serve('127.0.0.1', () => {});
  await server.close();
  return server.port;
}

/** Replaces dns.lookup for one test; `answer` gets the host name and returns addresses or an error code. */
function fakeDns(t: { mock: typeof mock }, answer: (host: string) => Array<{ address: string; family: number }> | string) {
  const calls: string[] = [];
  const impl = (host: string, options: unknown, cb?: (err: NodeJS.ErrnoException | null, addresses?: unknown) => void) => {
    const callback = typeof options === 'function' ? (options as NonNullable<typeof cb>) : cb!;
    calls.push(host);
    const result = answer(host);
    setImmediate(() => {
      if (typeof result === 'string') {
        const err: NodeJS.ErrnoException = new Error(`getaddrinfo ${result} ${host}`);
        err.code = result;
        callback(err);
      } else if ((options as { all?: boolean }).all) {
        callback(null, result);
      } else {
        (callback as (err: null, address: string, family: number) => void)(null, result[0]!.address, result[0]!.family);
      }
    });
  };
  t.mock.method(dns, 'lookup', impl);
  return calls;
}

describe('fetching an image', () => {
  test('a PNG arrives intact, with tessera User-Agent and Accept: image/*', async () => {
    const server = await serve('127.0.0.1', image());
    try {
      const bytes = await fetchImage(server.url('/cat.png?size=large#fragment'), LOCAL);
      assert.ok(Buffer.isBuffer(bytes));
      assert.ok(bytes.equals(PNG));
      const req = server.requests[0]!;
      assert.equal(req.method, 'GET');
      assert.equal(req.url, '/cat.png?size=large');
      assert.match(req.headers['user-agent'] ?? '', /tessera/);
      assert.equal(req.headers.accept, 'image/*');
      assert.equal(req.headers.host, `127.0.0.1:${server.port}`);
    } finally {
      await server.close();
    }
  });

  test('application/octet-stream, binary/octet-stream and a missing Content-Type are accepted', async () => {
    for (const type of ['application/octet-stream', 'binary/octet-stream', undefined, 'image/jpeg; charset=binary']) {
      const server = await serve('127.0.0.1', image(PNG, type));
      try {
        assert.ok((await fetchImage(server.url(), LOCAL)).equals(PNG), String(type));
      } finally {
        await server.close();
      }
    }
  });

  test('allowPrivate fetches from loopback', async () => {
    const server = await serve('127.0.0.1', image());
    try {
      assert.ok((await fetchImage(server.url(), { allowPrivate: true })).equals(PNG));
      assert.ok((await fetchImage(`http://localhost:${server.port}/`, { allowPrivate: true })).equals(PNG));
    } finally {
      await server.close();
    }
  });

  test('the defaults are 10 s, 8 MiB, 5 redirects, no private addresses', () => {
    assert.deepEqual({ ...DEFAULT_FETCH_POLICY }, { timeoutMs: 10_000, maxBytes: 8 * 1024 * 1024, maxRedirects: 5, allowPrivate: false });
    assert.ok(Object.isFrozen(DEFAULT_FETCH_POLICY));
  });

  test('a bad policy value is an INVALID_ARGUMENT naming it', async () => {
    await assert.rejects(fetchImage('http://example.com/', { timeoutMs: 0 }), rejectsWith('INVALID_ARGUMENT', /timeoutMs/));
    await assert.rejects(fetchImage('http://example.com/', { maxBytes: 1.5 }), rejectsWith('INVALID_ARGUMENT', /maxBytes/));
    await assert.rejects(fetchImage('http://example.com/', { maxRedirects: -1 }), rejectsWith('INVALID_ARGUMENT', /maxRedirects/));
  });
});

describe('URLs that are not http(s)', () => {
  for (const url of ['ftp://example.com/cat.png', 'file:///etc/passwd', 'gopher://example.com/', 'data:image/png;base64,iVBORw0KGgo=', 'javascript:alert(1)']) {
    test(`${url.split(':')[0]}: is refused`, async () => {
      await assert.rejects(fetchImage(url), rejectsWith('IMAGE_URL_INVALID', /only http and https/));
    });
  }

  test('garbage, relative and empty URLs are refused, naming the URL', async () => {
    for (const url of ['not a url', '/cat.png', '', 'http://', 'http://exa mple.com/']) {
      await assert.rejects(fetchImage(url), rejectsWith('IMAGE_URL_INVALID', /not a valid URL/), url);
    }
    await assert.rejects(fetchImage('not a url'), rejectsWith('IMAGE_URL_INVALID', /^"not a url" is not a valid URL$/));
  });

  test('credentials in the URL are refused', async () => {
    await assert.rejects(fetchImage('http://user:secret@example.com/cat.png'), rejectsWith('IMAGE_URL_INVALID', /credentials/));
    await assert.rejects(fetchImage('https://user@example.com/cat.png'), rejectsWith('IMAGE_URL_INVALID', /credentials/));
  });

  test('a long URL is shown truncated to about 200 characters', async () => {
    const url = `ftp://example.com/${'a'.repeat(5000)}`;
    await assert.rejects(fetchImage(url), (err: unknown) => {
      assert.ok(err instanceof TesseraError);
      const shown = /^"([^"]*)"/.exec(err.message)![1]!;
      assert.equal(shown.length, 200);
      assert.ok(shown.endsWith('...'));
      assert.ok(err.message.length < 300);
      return true;
    });
  });
});

describe('addresses that are refused', () => {
  // Odd IPv4 spellings are normalised by WHATWG URL before any check:
  // 2130706433, 0177.0.0.1, 0x7f.0.0.1 and 127.1 all become 127.0.0.1.
  test('loopback in every spelling, private, link-local, metadata and unspecified: refused without a connection or a lookup', async (t) => {
    const v4 = await serve('127.0.0.1', image());
    const v6 = await serve('::1', image());
    const lookups = fakeDns(t, () => [{ address: '127.0.0.1', family: 4 }]);
    try {
      const p = v4.port;
      const cases: Array<[string, RegExp]> = [
        [`http://127.0.0.1:${p}/`, /loopback/],
        [`http://localhost:${p}/`, /localhost/],
        [`http://LOCALHOST.:${p}/`, /localhost/],
        [`http://images.localhost:${p}/`, /localhost/],
        [`http://[::1]:${v6.port}/`, /loopback/],
        [`http://2130706433:${p}/`, /loopback/],
        [`http://0177.0.0.1:${p}/`, /loopback/],
        [`http://0x7f.0.0.1:${p}/`, /loopback/],
        [`http://0x7f000001:${p}/`, /loopback/],
        [`http://127.1:${p}/`, /loopback/],
        [`http://127.0.0.2:${p}/`, /loopback/],
        [`http://%31%32%37.0.0.1:${p}/`, /loopback/],
        [`http://[::ffff:127.0.0.1]:${p}/`, /loopback address \(127\.0\.0\.1\) inside an IPv6 address/],
        [`http://[::127.0.0.1]:${p}/`, /loopback/],
        [`http://0.0.0.0:${p}/`, /unspecified/],
        [`http://0:${p}/`, /unspecified/],
        [`http://[::]:${p}/`, /unspecified/],
        ['http://10.0.0.1/cat.png', /private/],
        ['http://172.16.5.4/', /private/],
        ['http://192.168.1.1/', /private/],
        ['http://100.64.0.1/', /carrier-grade NAT/],
        ['http://169.254.1.1/', /link-local/],
        ['http://169.254.169.254/latest/meta-data', /metadata/],
        ['http://metadata.google.internal/computeMetadata/v1/', /metadata/],
        ['http://224.0.0.1/', /multicast/],
        ['http://255.255.255.255/', /broadcast/],
        ['http://240.0.0.1/', /reserved/],
        ['http://192.0.2.1/', /reserved/],
        ['http://[fe80::1]/', /link-local/],
        ['http://[fc00::1]/', /unique-local/],
        ['http://[fd00:ec2::254]/', /metadata/],
        ['http://[ff02::1]/', /multicast/],
        ['http://[::ffff:10.0.0.1]/', /private/],
        ['http://[2002:7f00:1::1]/', /loopback address \(127\.0\.0\.1\)/], // 6to4
        ['http://[2002:c0a8:101::1]/', /private address \(192\.168\.1\.1\)/],
        ['http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/', /loopback address \(127\.0\.0\.1\)/], // Teredo client
        ['http://[64:ff9b::a00:1]/', /private address \(10\.0\.0\.1\)/], // NAT64
      ];
      for (const [url, reason] of cases) {
        await assert.rejects(fetchImage(url, { timeoutMs: 2000 }), rejectsWith('IMAGE_URL_BLOCKED', reason), url);
      }
      assert.equal(v4.connections, 0);
      assert.equal(v6.connections, 0);
      assert.deepEqual(lookups, [], 'IP literals and blocked names are refused before any DNS lookup');
    } finally {
      await v4.close();
      await v6.close();
    }
  });

  test('the refusal says what to do', async () => {
    await assert.rejects(fetchImage('http://10.0.0.1/'), rejectsWith('IMAGE_URL_BLOCKED', /^"http:\/\/10\.0\.0\.1\/" points to a private address; image URLs must point to public addresses \(the server operator can allow private ones with --allow-private-urls\)$/));
  });

  test('a host name is refused when ANY of its addresses is not public, without showing the address', async (t) => {
    fakeDns(t, (host) =>
      host === 'mixed.test'
        ? [{ address: '93.184.215.14', family: 4 }, { address: '10.1.2.3', family: 4 }]
        : [{ address: '2606:4700::1', family: 6 }, { address: '::ffff:169.254.169.254', family: 6 }],
    );
    await assert.rejects(fetchImage('http://mixed.test/cat.png'), (err: unknown) => {
      rejectsWith('IMAGE_URL_BLOCKED', /"http:\/\/mixed\.test\/cat\.png" resolves to a private address/)(err);
      assert.doesNotMatch((err as Error).message, /10\.1\.2\.3/);
      return true;
    });
    await assert.rejects(fetchImage('http://v6.test/'), rejectsWith('IMAGE_URL_BLOCKED', /metadata/));
  });

  test('allowPrivate still refuses cloud metadata services', async () => {
    await assert.rejects(fetchImage('http://169.254.169.254/latest/meta-data', { allowPrivate: true }), rejectsWith('IMAGE_URL_BLOCKED', /metadata/));
    await assert.rejects(fetchImage('http://metadata.google.internal./', { allowPrivate: true }), rejectsWith('IMAGE_URL_BLOCKED', /metadata/));
    await assert.rejects(fetchImage('http://[::ffff:169.254.169.254]/', { allowPrivate: true }), rejectsWith('IMAGE_URL_BLOCKED', /metadata/));
  });

  test('the address classifier: refused and allowed', () => {
    const refused = [
      '127.0.0.1', '127.255.255.254', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.0.1', '169.254.169.254', '169.254.0.1',
      '100.64.0.1', '100.127.255.255', '0.0.0.0', '0.1.2.3', '255.255.255.255', '224.0.0.251', '239.255.255.250', '240.0.0.1',
      '192.0.0.8', '192.0.2.1', '198.18.0.1', '198.51.100.1', '203.0.113.1',
      '::', '::1', 'fe80::1', 'fe80::1%eth0', 'febf::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', 'fec0::1', '2001:db8::1', '100::1',
      '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:0:127.0.0.1', '::127.0.0.1', '::7f00:1', '::8.8.8.8',
      '64:ff9b::127.0.0.1', '64:ff9b:1::1', '2002:a00:1::', '2002:7f00:1::', '2001:0:4136:e378:8000:63bf:80ff:fffe',
      '2001:0:a00:1:8000:63bf:f7f7:f7f7', // Teredo whose server is private
      'not-an-address', '0177.0.0.1', '127.1', '',
    ];
    for (const address of refused) assert.ok(blockedAddress(address) !== undefined, `${address} should be refused`);
    const allowed = ['8.8.8.8', '93.184.215.14', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '2001:4860:4860::8888', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1', '2001:0:4136:e378:8000:63bf:f7f7:f7f7'];
    for (const address of allowed) assert.equal(blockedAddress(address), undefined, `${address} should be allowed`);
    // allowPrivate lets everything but metadata through
    assert.equal(blockedAddress('10.0.0.1', true), undefined);
    assert.equal(blockedAddress('::1', true), undefined);
    assert.match(blockedAddress('169.254.169.254', true) ?? '', /metadata/);
    assert.match(blockedAddress('100.100.100.200', true) ?? '', /metadata/);
    assert.match(blockedHostName('Metadata.Google.Internal.', true) ?? '', /metadata/);
    assert.equal(blockedHostName('localhost', true), undefined);
    assert.match(blockedHostName('localhost', false) ?? '', /localhost/);
    assert.equal(blockedHostName('example.com', false), undefined);
  });
});

describe('DNS', () => {
  test('the connection goes to the address that was checked, not to a second lookup (DNS rebinding)', async (t) => {
    const good = await serve('127.0.0.2', image());
    let evil: TestServer | undefined;
    for (let attempt = 0; !evil && attempt < 5; attempt++) evil = await serve('127.0.0.1', image(), good.port).catch(() => undefined);
    // Without the second server the test proves nothing: fail rather than skip.
    assert.ok(evil, 'could not bind 127.0.0.1 on the same port as 127.0.0.2 (5 tries)');
    try {
      let n = 0;
      const lookups = fakeDns(t, () => [{ address: n++ === 0 ? '127.0.0.2' : '127.0.0.1', family: 4 }]);
      const bytes = await fetchImage(`http://rebind.test:${good.port}/cat.png`, { allowAddresses: ['127.0.0.2'] });
      assert.ok(bytes.equals(PNG));
      assert.deepEqual(lookups, ['rebind.test']);
      assert.equal(good.connections, 1);
      assert.equal(evil.connections, 0);
      assert.equal(good.requests[0]!.headers.host, `rebind.test:${good.port}`);
    } finally {
      await good.close();
      await evil.close();
    }
  });

  test('a name that does not resolve is IMAGE_FETCH_FAILED saying so', async (t) => {
    fakeDns(t, () => 'ENOTFOUND');
    await assert.rejects(fetchImage('http://no-such-host.invalid/cat.png'), rejectsWith('IMAGE_FETCH_FAILED', /no-such-host\.invalid does not resolve/));
  });

  test('a lookup that never answers is cut by the timeout', async (t) => {
    t.mock.method(dns, 'lookup', () => {});
    const started = Date.now();
    await assert.rejects(fetchImage('http://slow-dns.test/', { timeoutMs: 150 }), rejectsWith('IMAGE_FETCH_TIMEOUT'));
    assert.ok(Date.now() - started < 2000);
  });
});

describe('redirects', () => {
  test('relative and absolute redirects are followed, each hop checked', async () => {
    const server = await serve('127.0.0.2', (req, res) => {
      if (req.url === '/a') res.writeHead(302, { location: 'b' }).end();
      else if (req.url === '/b') res.writeHead(307, { location: `http://127.0.0.2:${server.port}/c` }).end();
      else if (req.url === '/c') res.writeHead(301, { location: '/img.png' }).end('moved');
      else image()(req, res);
    });
    try {
      const bytes = await fetchImage(server.url('/a'), { allowAddresses: ['127.0.0.2'] });
      assert.ok(bytes.equals(PNG));
      assert.deepEqual(server.requests.map((r) => r.url), ['/a', '/b', '/c', '/img.png']);
    } finally {
      await server.close();
    }
  });

  test('a redirect to a blocked address is IMAGE_URL_BLOCKED naming the hop, and that address is never contacted', async () => {
    const target = await serve('127.0.0.1', image());
    const server = await serve('127.0.0.2', (_req, res) => res.writeHead(302, { location: target.url('/secret.png') }).end());
    try {
      const start = server.url('/cat.png');
      await assert.rejects(
        fetchImage(start, { allowAddresses: ['127.0.0.2'] }),
        rejectsWith('IMAGE_URL_BLOCKED', new RegExp(`^"${start}" \\(redirected to "${target.url('/secret.png')}"\\) points to a loopback address`)),
      );
      assert.equal(server.requests.length, 1);
      assert.equal(target.connections, 0);
    } finally {
      await server.close();
      await target.close();
    }
  });

  test('a redirect to a blocked name or a non-http scheme is refused', async (t) => {
    const server = await serve('127.0.0.2', (req, res) => {
      const to = req.url === '/meta' ? 'http://169.254.169.254/latest/meta-data/' : req.url === '/local' ? 'http://localhost/' : 'file:///etc/passwd';
      res.writeHead(301, { location: to }).end();
    });
    // After listen(), which looks its host up too.
    const lookups = fakeDns(t, () => [{ address: '127.0.0.1', family: 4 }]);
    try {
      const policy = { allowAddresses: ['127.0.0.2'] };
      await assert.rejects(fetchImage(server.url('/meta'), policy), rejectsWith('IMAGE_URL_BLOCKED', /redirected to "http:\/\/169\.254\.169\.254\/latest\/meta-data\/"\) points to a cloud metadata/));
      await assert.rejects(fetchImage(server.url('/local'), policy), rejectsWith('IMAGE_URL_BLOCKED', /localhost/));
      await assert.rejects(fetchImage(server.url('/file'), policy), rejectsWith('IMAGE_URL_INVALID', /redirected to "file:\/\/\/etc\/passwd", is a file: URL/));
      assert.deepEqual(lookups, []);
    } finally {
      await server.close();
    }
  });

  test('more than maxRedirects redirects is IMAGE_FETCH_FAILED', async () => {
    const server = await serve('127.0.0.1', (req, res) => res.writeHead(302, { location: `/loop?${Number(new URL(req.url!, 'http://x').searchParams.get('n') ?? 0) + 1}` }).end());
    try {
      await assert.rejects(fetchImage(server.url('/loop'), { ...LOCAL, maxRedirects: 3 }), rejectsWith('IMAGE_FETCH_FAILED', /redirected more than 3 times/));
      assert.equal(server.requests.length, 4);
      await assert.rejects(fetchImage(server.url('/loop'), { ...LOCAL, maxRedirects: 0 }), rejectsWith('IMAGE_FETCH_FAILED', /more than 0 times/));
      await assert.rejects(fetchImage(server.url('/loop'), LOCAL), rejectsWith('IMAGE_FETCH_FAILED', /more than 5 times/));
    } finally {
      await server.close();
    }
  });

  test('a redirect without Location is IMAGE_FETCH_FAILED', async () => {
    const server = await serve('127.0.0.1', (_req, res) => res.writeHead(302).end());
    try {
      await assert.rejects(fetchImage(server.url(), LOCAL), rejectsWith('IMAGE_FETCH_FAILED', /without a Location/));
    } finally {
      await server.close();
    }
  });
});

describe('timeouts and size limits', () => {
  test('a server that never sends headers is cut at the timeout', async () => {
    const server = await serve('127.0.0.1', () => {});
    try {
      const started = Date.now();
      await assert.rejects(fetchImage(server.url(), { ...LOCAL, timeoutMs: 200 }), rejectsWith('IMAGE_FETCH_TIMEOUT', /took longer than the 200 ms limit/));
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 180 && elapsed < 2000, `took ${elapsed} ms`);
    } finally {
      await server.close();
    }
  });

  test('a body dribbled slower than the timeout allows is cut, and the server sees the connection close', async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((resolve) => (closed = resolve));
    const server = await serve('127.0.0.1', (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length });
      let i = 0;
      const timer = setInterval(() => res.write(PNG.subarray(i, ++i)), 20);
      res.on('close', () => {
        clearInterval(timer);
        closed();
      });
    });
    try {
      const started = Date.now();
      await assert.rejects(fetchImage(server.url(), { ...LOCAL, timeoutMs: 250 }), rejectsWith('IMAGE_FETCH_TIMEOUT'));
      assert.ok(Date.now() - started < 2000);
      await serverSawClose;
    } finally {
      await server.close();
    }
  });

  test('a Content-Length over maxBytes is refused before the body, and the connection is closed', async () => {
    let closed!: (finished: boolean) => void;
    const serverSawClose = new Promise<boolean>((resolve) => (closed = resolve));
    const server = await serve('127.0.0.1', (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': 50_000_000 });
      res.write(PNG);
      res.on('close', () => closed(res.writableFinished));
    });
    try {
      await assert.rejects(fetchImage(server.url(), { ...LOCAL, maxBytes: 10_000 }), rejectsWith('IMAGE_TOO_LARGE', /is 50000000 bytes, more than the limit of 10000 bytes/));
      assert.equal(await serverSawClose, false);
    } finally {
      await server.close();
    }
  });

  test('an endless body without Content-Length is cut at maxBytes, and the server sees the connection close', async () => {
    let written = 0;
    let closed!: () => void;
    const serverSawClose = new Promise<void>((resolve) => (closed = resolve));
    const server = await serve('127.0.0.1', (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png' }); // chunked
      const chunk = Buffer.concat([PNG, Buffer.alloc(16 * 1024 - PNG.length)]);
      let open = true;
      res.on('close', () => {
        open = false;
        closed();
      });
      const pump = () => {
        while (open && res.write(chunk)) written += chunk.length;
        if (open) res.once('drain', pump);
      };
      pump();
    });
    try {
      await assert.rejects(fetchImage(server.url(), { ...LOCAL, maxBytes: 100_000 }), rejectsWith('IMAGE_TOO_LARGE', /larger than the limit of 100000 bytes/));
      await serverSawClose;
      const atClose = written;
      await sleep(50);
      assert.equal(written, atClose, 'the server stopped writing');
    } finally {
      await server.close();
    }
  });

  test('a body of exactly maxBytes is accepted; one byte more is not', async () => {
    const server = await serve('127.0.0.1', (req, res) => {
      const chunked = req.url === '/chunked';
      res.writeHead(200, chunked ? { 'content-type': 'image/png' } : { 'content-type': 'image/png', 'content-length': PNG.length });
      res.end(PNG);
    });
    try {
      assert.ok((await fetchImage(server.url('/'), { ...LOCAL, maxBytes: PNG.length })).equals(PNG));
      assert.ok((await fetchImage(server.url('/chunked'), { ...LOCAL, maxBytes: PNG.length })).equals(PNG));
      await assert.rejects(fetchImage(server.url('/'), { ...LOCAL, maxBytes: PNG.length - 1 }), rejectsWith('IMAGE_TOO_LARGE'));
      await assert.rejects(fetchImage(server.url('/chunked'), { ...LOCAL, maxBytes: PNG.length - 1 }), rejectsWith('IMAGE_TOO_LARGE'));
    } finally {
      await server.close();
    }
  });
});

describe('failures', () => {
  test('404 and 500 are IMAGE_FETCH_FAILED with the status', async () => {
    const server = await serve('127.0.0.1', (req, res) => res.writeHead(req.url === '/missing' ? 404 : 500, { 'content-type': 'text/html' }).end('<h1>nope</h1>'));
    try {
      await assert.rejects(fetchImage(server.url('/missing'), LOCAL), rejectsWith('IMAGE_FETCH_FAILED', /answered HTTP 404 Not Found$/));
      await assert.rejects(fetchImage(server.url('/broken'), LOCAL), rejectsWith('IMAGE_FETCH_FAILED', /HTTP 500/));
    } finally {
      await server.close();
    }
  });

  test('connection refused is IMAGE_FETCH_FAILED saying so', async () => {
    const port = await freePort();
    await assert.rejects(fetchImage(`http://127.0.0.1:${port}/cat.png`, LOCAL), rejectsWith('IMAGE_FETCH_FAILED', /connection was refused/));
  });

  test('a connection dropped mid-body is IMAGE_FETCH_FAILED', async () => {
    const server = await serve('127.0.0.1', (req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length });
      res.write(PNG.subarray(0, 100), () => req.socket.destroy());
    });
    try {
      await assert.rejects(fetchImage(server.url(), LOCAL), rejectsWith('IMAGE_FETCH_FAILED', /closed before the whole body arrived/));
    } finally {
      await server.close();
    }
  });

  test('text/html and application/json bodies are refused by their Content-Type', async () => {
    const server = await serve('127.0.0.1', (req, res) => {
      if (req.url === '/json') res.writeHead(200, { 'content-type': 'application/json' }).end('{"error":"no"}');
      else res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><p>login</p>');
    });
    try {
      await assert.rejects(fetchImage(server.url('/page'), LOCAL), rejectsWith('IMAGE_FETCH_FAILED', /not an image: the server says it is text\/html/));
      await assert.rejects(fetchImage(server.url('/json'), LOCAL), rejectsWith('IMAGE_FETCH_FAILED', /application\/json/));
    } finally {
      await server.close();
    }
  });

  test('an image Content-Type on bytes that are no image is refused by signature', async () => {
    const server = await serve('127.0.0.1', image(Buffer.from('<!doctype html><p>login</p>'), 'image/png'));
    try {
      await assert.rejects(fetchImage(server.url(), LOCAL), rejectsWith('IMAGE_FORMAT_UNSUPPORTED', /not an image in a known format; only JPEG, PNG/));
    } finally {
      await server.close();
    }
  });

  test('SVG is refused, as image/svg+xml or disguised as octet-stream', async () => {
    for (const type of ['image/svg+xml', 'application/octet-stream']) {
      const server = await serve('127.0.0.1', image(SVG, type));
      try {
        await assert.rejects(fetchImage(server.url('/logo.svg'), LOCAL), rejectsWith('IMAGE_FORMAT_UNSUPPORTED', /is a SVG file; only JPEG, PNG, WebP, GIF, AVIF or TIFF/));
      } finally {
        await server.close();
      }
    }
  });

  test('an empty body is IMAGE_FETCH_FAILED', async () => {
    const server = await serve('127.0.0.1', image(Buffer.alloc(0)));
    try {
      await assert.rejects(fetchImage(server.url(), LOCAL), rejectsWith('IMAGE_FETCH_FAILED', /empty body/));
    } finally {
      await server.close();
    }
  });
});

describe('https', () => {
  test('a certificate that is not trusted is IMAGE_FETCH_FAILED (verification stays on)', async () => {
    const server = createHttpsServer({ key: TLS_KEY, cert: TLS_CERT }, image());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      await assert.rejects(fetchImage(`https://127.0.0.1:${port}/cat.png`, LOCAL), rejectsWith('IMAGE_FETCH_FAILED', /TLS handshake failed/));
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  // The CA must be trusted from process start (NODE_EXTRA_CA_CERTS), so this runs in a child.
  test('with the pinned address the certificate is still checked against the URL host name, sent as SNI', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-fetch-'));
    const names: Array<string | false | null> = [];
    const server = createHttpsServer({ key: TLS_KEY, cert: TLS_CERT }, (req, res) => {
      names.push((req.socket as TLSSocket).servername);
      image()(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await writeFile(join(dir, 'ca.pem'), TLS_CERT);
      const { port } = server.address() as AddressInfo;
      const fetchModule = fileURLToPath(new URL('../../src/image/fetch.ts', import.meta.url));
      const script = `
        import dns from 'node:dns';
        const { fetchImage } = await import(${JSON.stringify(fetchModule)});
        dns.lookup = (host, options, callback) => setImmediate(() => options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4));
        const policy = { allowAddresses: ['127.0.0.1'] };
        const bytes = await fetchImage('https://images.test:${port}/cat.png', policy);
        let wrong;
        try { await fetchImage('https://wrong.test:${port}/cat.png', policy); } catch (err) { wrong = err.code + ': ' + err.message; }
        console.log(JSON.stringify({ length: bytes.length, wrong }));
      `;
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') },
      });
      const result = JSON.parse(stdout.trim().split('\n').pop()!) as { length: number; wrong: string };
      assert.equal(result.length, PNG.length);
      assert.match(result.wrong, /^IMAGE_FETCH_FAILED: .*TLS handshake failed.*wrong\.test/);
      assert.deepEqual(names, ['images.test']);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('cancelling', () => {
  test("the caller's signal cancels the download and closes the connection", async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((resolve) => (closed = resolve));
    const server = await serve('127.0.0.1', (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.write(PNG.subarray(0, 10));
      res.on('close', () => closed());
    });
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      await assert.rejects(fetchImage(server.url(), LOCAL, controller.signal), rejectsWith('REQUEST_CANCELLED', /was cancelled/));
      await serverSawClose;
    } finally {
      await server.close();
    }
  });

  test('a signal already aborted makes no connection; a TesseraError reason is passed on', async () => {
    const server = await serve('127.0.0.1', image());
    try {
      await assert.rejects(fetchImage(server.url(), LOCAL, AbortSignal.abort()), rejectsWith('REQUEST_CANCELLED'));
      const reason = new TesseraError('REQUEST_CANCELLED', 'the client went away');
      const controller = new AbortController();
      const pending = fetchImage(server.url('/slow'), { ...LOCAL, maxBytes: 10 ** 9 }, controller.signal);
      controller.abort(reason);
      await assert.rejects(pending, (err) => err === reason);
      assert.ok(server.connections <= 1);
      assert.ok(server.requests.every((r) => r.url === '/slow'));
    } finally {
      await server.close();
    }
  });
});

describe('mapConcurrent', () => {
  test('keeps the order and never has more than `limit` in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const items = Array.from({ length: 20 }, (_, i) => i);
    const results = await mapConcurrent(items, 4, async (item, index) => {
      assert.equal(item, index);
      inFlight++;
      most = Math.max(most, inFlight);
      await sleep(((item * 7) % 5) * 3);
      inFlight--;
      return item * 10;
    });
    assert.deepEqual(results, items.map((i) => i * 10));
    assert.equal(most, 4);
  });

  test('a limit above the item count and an empty list are fine', async () => {
    assert.deepEqual(await mapConcurrent([1, 2], 10, async (x) => x + 1), [2, 3]);
    assert.deepEqual(await mapConcurrent([], 3, async (x: number) => x), []);
  });

  test('the first error rejects at once, aborts the others and starts no more', async () => {
    const started: number[] = [];
    const aborted: number[] = [];
    const failure = new Error('item 2 failed');
    const began = Date.now();
    await assert.rejects(
      mapConcurrent(Array.from({ length: 10 }, (_, i) => i), 3, (item, _index, signal) => {
        started.push(item);
        if (item === 2) return sleep(10).then(() => Promise.reject(failure));
        return new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => resolve(item), 5000);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            aborted.push(item);
            reject(signal.reason);
          });
        });
      }),
      (err) => err === failure,
    );
    assert.ok(Date.now() - began < 1000);
    assert.deepEqual(started, [0, 1, 2]);
    assert.deepEqual(aborted.sort(), [0, 1]);
  });

  test('a synchronous throw counts as a rejection', async () => {
    await assert.rejects(mapConcurrent([1], 1, () => { throw new Error('sync'); }), /sync/);
  });

  test("the caller's signal aborts it", async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    setTimeout(() => controller.abort(reason), 20);
    await assert.rejects(
      mapConcurrent([1, 2, 3], 2, (_item, _i, signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))), controller.signal),
      (err) => err === reason,
    );
    await assert.rejects(mapConcurrent([1], 1, async (x) => x, AbortSignal.abort(reason)), (err) => err === reason);
  });

  test('a bad limit is INVALID_ARGUMENT', async () => {
    await assert.rejects(mapConcurrent([1], 0, async (x) => x), rejectsWith('INVALID_ARGUMENT', /limit/));
    await assert.rejects(mapConcurrent([1], 1.5, async (x) => x), rejectsWith('INVALID_ARGUMENT', /limit/));
  });

  test('fetches many images with a limit, in order', async () => {
    const server = await serve('127.0.0.1', (req, res) => {
      const n = Number(req.url!.slice(1));
      setTimeout(() => image()(req, res), (n % 3) * 10);
    });
    try {
      const urls = Array.from({ length: 6 }, (_, i) => server.url(`/${i}`));
      const images = await mapConcurrent(urls, 2, (url, _i, signal) => fetchImage(url, LOCAL, signal));
      assert.equal(images.length, 6);
      for (const bytes of images) assert.ok(bytes.equals(PNG));
      assert.deepEqual(server.requests.map((r) => r.url).sort(), urls.map((_, i) => `/${i}`));
    } finally {
      await server.close();
    }
  });
});
