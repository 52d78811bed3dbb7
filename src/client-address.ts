import { BlockList, isIP } from 'node:net';

/** Says whether a peer address lies inside one of the `--trust-proxy` CIDR blocks. */
export type TrustedProxy = (address: string) => boolean;

/** A matcher for addresses inside the given blocks (`10.0.0.0/8`, `::1/128`); IPv4-mapped too. */
export function trustedProxies(cidrs: readonly string[]): TrustedProxy {
  if (cidrs.length === 0) return () => false;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address = '', prefix = ''] = cidr.split('/');
    const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    list.addSubnet(address, Number(prefix || (family === 'ipv4' ? 32 : 128)), family);
  }
  return (address) => {
    const bare = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? address;
    const family = isIP(bare);
    return family !== 0 && list.check(bare, family === 4 ? 'ipv4' : 'ipv6');
  };
}

/**
 * The client's address: the TCP peer, unless the peer is a trusted proxy; then `X-Forwarded-For`
 * is read from the right, skipping trusted proxies, and the first other address is the client.
 * Entries a client wrote itself sit left of that and are never believed.
 */
export function clientAddress(
  peer: string,
  forwardedFor: string | string[] | undefined,
  trusted: TrustedProxy,
): string {
  if (!trusted(peer) || forwardedFor === undefined) return peer;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map((hop) => hop.trim());
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] ?? '';
    if (isIP(hop) === 0) return client;
    client = hop;
    if (!trusted(hop)) return hop;
  }
  return client;
}

/**
 * The key per-address limits count a client under: an IPv4 address as it is (an IPv4-mapped
 * IPv6 one read as IPv4), an IPv6 address by its /64. A host or a home network is given a whole
 * /64, so counting single IPv6 addresses handed one client 2^64 budgets: a fresh attack sprayed
 * 200 usernames from one /64 without a 429.
 */
export function addressKey(ip: string): string {
  const bare = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1] ?? ip;
  const family = isIP(bare);
  if (family !== 6) return bare;
  const address = bare.replace(/%.*$/, '').toLowerCase();
  const [head = '', tail] = address.split('::');
  const groups = (part: string | undefined): string[] =>
    part === undefined || part === '' ? [] : part.split(':');
  const left = groups(head);
  // Only the first four groups matter, and a dotted IPv4 tail lies past them.
  const right = groups(tail);
  const missing = 8 - left.length - right.length - (address.includes('.') ? 1 : 0);
  const full = tail === undefined ? left : [...left, ...Array<string>(missing).fill('0'), ...right];
  return `${full
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

/** `http` or `https` from `X-Forwarded-Proto` of a trusted peer (its last entry), else undefined. */
export function forwardedProto(
  peer: string,
  header: string | string[] | undefined,
  trusted: TrustedProxy,
): 'http' | 'https' | undefined {
  if (header === undefined || !trusted(peer)) return undefined;
  const last = (Array.isArray(header) ? header.join(',') : header).split(',').pop()?.trim();
  const proto = last?.toLowerCase();
  return proto === 'http' || proto === 'https' ? proto : undefined;
}
