import { type LookupAddress, type LookupOptions, lookup } from 'node:dns';
import { isBlockedAddress } from '../core/network.js';

export const BLOCKED_ADDRESS = 'ERR_ZTA_BLOCKED_ADDRESS';

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A drop-in for `dns.lookup` that refuses loopback, private and reserved answers. Given to the socket, it
 * runs at connect time, on the very addresses the socket will use, so a name that resolved to a public
 * address when the webhook was created cannot be rebound to a private one later.
 */
export function guardedLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  lookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) {
      callback(error, []);
      return;
    }
    if (addresses.some((entry) => isBlockedAddress(entry.address))) {
      const blocked = Object.assign(new Error(`${hostname} resolves to a private or reserved address`), {
        code: BLOCKED_ADDRESS,
      });
      callback(blocked, []);
      return;
    }
    const [first] = addresses;
    if (options.all) callback(null, addresses);
    else if (first) callback(null, first.address, first.family);
    else callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
  });
}
