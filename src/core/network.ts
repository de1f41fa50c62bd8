import ipaddr from 'ipaddr.js';

const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3');

/**
 * True when `address` (an IP literal) is anything but public unicast: loopback, private, link-local, CGNAT,
 * multicast, broadcast, unspecified, reserved, documentation ranges, or IPv6 forms that translate IPv4
 * (NAT64, 6to4, Teredo), and IPv6 outside global unicast 2000::/3 (IPv4-compatible ::a.b.c.d among them).
 * An IPv4-mapped address (::ffff:a.b.c.d) is judged as the IPv4 address it maps. ipaddr.js owns the range
 * table. Not an IP at all → false.
 */
export function isBlockedAddress(address: string): boolean {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (!ipaddr.isValid(bare)) return false;
  const parsed = ipaddr.process(bare);
  if (parsed.range() !== 'unicast') return true;
  // ipaddr.js calls every IPv6 address outside its table "unicast", including the deprecated
  // IPv4-compatible ::a.b.c.d (::/96) and unallocated space; only 2000::/3 is global unicast.
  return parsed.kind() === 'ipv6' && !parsed.match(GLOBAL_UNICAST_V6);
}

export function isIpLiteral(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return ipaddr.isValid(bare);
}

/** Hostnames that name this machine without being IP literals. */
export function isLocalHostname(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

/**
 * Why a URL's host may not be contacted without `allowPrivateNetworks`, or null when it may.
 * Expects a hostname as WHATWG URL normalises it (decimal, octal, hex and short IPv4 forms are already
 * canonical dotted quads there).
 */
export function privateHostReason(hostname: string): string | null {
  if (isLocalHostname(hostname)) return 'URL must not point to localhost';
  if (isBlockedAddress(hostname)) return 'URL must not point to a private or reserved address';
  return null;
}
