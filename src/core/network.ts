import ipaddr from 'ipaddr.js';

/**
 * True when `address` (an IP literal) is anything but public unicast: loopback, private, link-local, CGNAT,
 * multicast, broadcast, unspecified, reserved, documentation ranges, or IPv6 forms that embed or translate
 * IPv4 (IPv4-mapped, NAT64, 6to4, Teredo). ipaddr.js owns the range table. Not an IP at all → false.
 */
export function isBlockedAddress(address: string): boolean {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (!ipaddr.isValid(bare)) return false;
  return ipaddr.process(bare).range() !== 'unicast';
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
