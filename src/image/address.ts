/**
 * Which network addresses and host names a server may fetch images from on a user's behalf.
 * Everything that is not plain public unicast is refused: loopback, private, link-local,
 * carrier-grade NAT, unique-local, multicast, broadcast, reserved and documentation ranges,
 * and IPv6 forms that embed such an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo).
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** Cloud metadata services, refused even when private addresses are allowed. */
const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata.goog', 'metadata', 'instance-data', 'instance-data.ec2.internal']);
const METADATA_ADDRESSES = new Set([
  '169.254.169.254', // AWS, GCP, Azure, Oracle, DigitalOcean, OpenStack
  '169.254.170.2', // AWS ECS task credentials
  '100.100.100.200', // Alibaba Cloud
  'fd00:ec2::254', // AWS IPv6
].map((a) => ipaddr.parse(a).toNormalizedString()));

/** A host name in the canonical form we compare: lower case, without the trailing dot. */
export function canonicalHostName(hostname: string): string {
  return hostname.toLowerCase().replace(/\.+$/, '');
}

/**
 * Why a host name is refused before it is even resolved, or undefined. `localhost` and its
 * subdomains (RFC 6761) always mean this machine; the metadata names are refused even when
 * private addresses are allowed.
 */
export function blockedHostName(hostname: string, allowPrivate: boolean): string | undefined {
  const name = canonicalHostName(hostname);
  if (METADATA_NAMES.has(name)) return 'a cloud metadata service';
  if (!allowPrivate && (name === 'localhost' || name.endsWith('.localhost'))) return 'this machine (localhost)';
  return undefined;
}

/**
 * Why an IP address (canonical text, as dns.lookup returns and WHATWG URL normalises to)
 * is refused, or undefined when it may be fetched from. With `allowPrivate` only the cloud
 * metadata addresses are refused.
 */
export function blockedAddress(address: string, allowPrivate = false): string | undefined {
  const parsed = parseAddress(address);
  if (!parsed) return 'not a valid IP address';
  const embedded = embeddedIPv4(parsed);
  if (METADATA_ADDRESSES.has(parsed.toNormalizedString()) || (embedded && METADATA_ADDRESSES.has(embedded.toNormalizedString()))) {
    return 'a cloud metadata service address';
  }
  return allowPrivate ? undefined : blockedRange(parsed);
}

/** The same address in normalised form, for comparing (undefined if not an address). */
export function normalizeAddress(address: string): string | undefined {
  return parseAddress(address)?.toNormalizedString();
}

function parseAddress(address: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  // net.isIP accepts only the canonical dotted quad: no classful or octal forms to misread.
  // A zone id (fe80::1%eth0) does not change the range, so it is dropped.
  const withoutZone = bare.replace(/%.*$/, '');
  const family = isIP(withoutZone);
  if (family === 0) return undefined;
  // ipaddr.js reads ::a.b.c.d as ::ffff:a.b.c.d; spelling the tail in hex keeps it literal.
  const text = family === 6 ? withoutZone.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) => `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`) : withoutZone;
  try {
    return ipaddr.parse(text);
  } catch {
    return undefined;
  }
}

const TRANSITION_RANGES = new Set(['ipv4Mapped', 'rfc6145', 'rfc6052', '6to4', 'teredo']);

function blockedRange(address: ipaddr.IPv4 | ipaddr.IPv6): string | undefined {
  const range = address.range();
  if (address.kind() === 'ipv4') return range === 'unicast' ? undefined : describeRange(range);
  if (range === 'unspecified' || range === 'loopback') return describeRange(range);
  const embedded = embeddedIPv4(address);
  if (embedded) {
    if (embedded.range() !== 'unicast') return `${describeRange(embedded.range())} (${embedded.toString()}) inside an IPv6 address`;
    // Teredo carries two IPv4 addresses: the client's (inverted, checked above) and the server's.
    const server = range === 'teredo' ? teredoServer(address as ipaddr.IPv6) : undefined;
    if (server && server.range() !== 'unicast') return `${describeRange(server.range())} (${server.toString()}) inside an IPv6 address`;
    if (TRANSITION_RANGES.has(range)) return undefined;
    // What is left is ::a.b.c.d, IPv4-compatible: deprecated since RFC 4291, never legitimate.
    return 'an IPv4-compatible IPv6 address (deprecated)';
  }
  return range === 'unicast' ? undefined : describeRange(range);
}

/**
 * The IPv4 address an IPv6 address routes to, for the forms that embed one: IPv4-mapped
 * (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d, deprecated), SIIT (::ffff:0:a.b.c.d),
 * NAT64 (64:ff9b::a.b.c.d), 6to4 (2002:aabb:ccdd::) and Teredo (client address, inverted).
 * The local-use NAT64 prefix 64:ff9b:1::/48 embeds at a network-specific place and is
 * refused through its range instead.
 */
function embeddedIPv4(address: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | undefined {
  if (address.kind() !== 'ipv6') return undefined;
  const p = (address as ipaddr.IPv6).parts;
  const v4 = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  const zeros = (from: number, to: number) => p.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && p[5] === 0xffff) return v4(p[6]!, p[7]!);
  if (zeros(0, 6) && (p[6] !== 0 || p[7]! > 1)) return v4(p[6]!, p[7]!);
  if (zeros(0, 4) && p[4] === 0xffff && p[5] === 0) return v4(p[6]!, p[7]!);
  if (p[0] === 0x64 && p[1] === 0xff9b && zeros(2, 6)) return v4(p[6]!, p[7]!);
  if (p[0] === 0x2002) return v4(p[1]!, p[2]!);
  if (p[0] === 0x2001 && p[1] === 0) return v4(~p[6]! & 0xffff, ~p[7]! & 0xffff);
  return undefined;
}

function teredoServer(address: ipaddr.IPv6): ipaddr.IPv4 {
  const p = address.parts;
  return new ipaddr.IPv4([p[2]! >> 8, p[2]! & 0xff, p[3]! >> 8, p[3]! & 0xff]);
}

const RANGE_NAMES: Record<string, string> = {
  unspecified: 'an unspecified address',
  broadcast: 'the broadcast address',
  multicast: 'a multicast address',
  linkLocal: 'a link-local address',
  loopback: 'a loopback address',
  carrierGradeNat: 'a carrier-grade NAT address',
  private: 'a private address',
  uniqueLocal: 'a unique-local (private) address',
  reserved: 'a reserved address',
  deprecatedSiteLocal: 'a site-local (private) address',
};

function describeRange(range: string): string {
  return RANGE_NAMES[range] ?? `a special-purpose address (${range})`;
}
