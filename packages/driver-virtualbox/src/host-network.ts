// No top-level Node imports: the flag schema uses the CIDR helpers, and importing the driver stays cheap.

/** An IPv4 host address with its prefix, e.g. `192.168.59.1/24`. */
export interface HostCidr {
  /** The host's own address on the network. */
  ip: string;
  prefix: number;
  netmask: string;
  /** The network address (`192.168.59.0`). */
  network: string;
  broadcast: string;
}

/** Parses an IPv4 address into a 32-bit unsigned number; undefined when it is not one. */
export function ipToNumber(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

/** The dotted form of a 32-bit number. */
export function numberToIp(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * Parses `--virtualbox-hostonly-cidr`: an IPv4 host address (not the network or broadcast
 * address) with a prefix from 8 to 29 (the network must hold the host, the DHCP server and at
 * least one guest). Throws with a one-line reason.
 */
export function parseHostCidr(value: string): HostCidr {
  const match = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(value.trim());
  const address = match === null ? undefined : ipToNumber(match[1] ?? '');
  const prefix = Number(match?.[2]);
  if (match === null || address === undefined) throw new Error(`"${value}" is not an IPv4 CIDR like ${'192.168.59.1/24'}`);
  if (prefix < 8 || prefix > 29) throw new Error(`prefix /${prefix} must be between /8 and /29 (the host, the DHCP server and the VMs need addresses)`);
  const mask = maskOf(prefix);
  const network = (address & mask) >>> 0;
  const broadcast = (network | (~mask >>> 0)) >>> 0;
  if (address === network || address === broadcast) {
    throw new Error(`${match[1]} is the ${address === network ? 'network' : 'broadcast'} address; give the host's address, e.g. ${numberToIp(network + 1)}/${prefix}`);
  }
  return { ip: numberToIp(address), prefix, netmask: numberToIp(mask), network: numberToIp(network), broadcast: numberToIp(broadcast) };
}

/** True when `ip` lies inside the network of `cidr`. */
export function cidrContains(cidr: HostCidr, ip: string): boolean {
  const value = ipToNumber(ip);
  if (value === undefined) return false;
  return ((value & maskOf(cidr.prefix)) >>> 0) === ipToNumber(cidr.network);
}

/**
 * The DHCP server address and lease range create configures for a host-only network: the server
 * beside the network's first address, leases from `.100` (or the upper half of a small network) to
 * the last host address, never including the host's or the server's own address.
 */
export function dhcpRange(cidr: HostCidr): { serverIp: string; lowerIp: string; upperIp: string } {
  const network = ipToNumber(cidr.network) ?? 0;
  const broadcast = ipToNumber(cidr.broadcast) ?? 0;
  const host = ipToNumber(cidr.ip) ?? 0;
  const size = broadcast - network + 1;
  const server = host === network + 1 ? network + 2 : network + 1;
  let lower = network + (size >= 256 ? 100 : Math.max(3, Math.floor(size / 2)));
  let upper = broadcast - 1;
  // The host's address inside the range: lease above it, or below it when it is the top one.
  if (host >= lower && host <= upper) {
    if (host < upper) lower = host + 1;
    else upper = host - 1;
  }
  return { serverIp: numberToIp(server), lowerIp: numberToIp(lower), upperIp: numberToIp(upper) };
}

/** An inclusive IPv4 address range (a DHCP server's leases, or its own address as a one-address range). */
export interface AddressRange {
  lowerIp: string;
  upperIp: string;
}

/**
 * The address a guest without DHCP (`--virtualbox-hostonly-no-dhcp`) takes on the host-only
 * network: the lowest address of the CIDR that is not the network or broadcast address, not the
 * host's own, not one another VM has (`taken`), and not inside a DHCP server's address or lease
 * range (`reserved`). The server address and lease range create gives a new DHCP server
 * ({@link dhcpRange}) are always reserved too, so a machine with DHCP added later never leases a
 * static guest's address. Undefined when no address is left.
 */
export function staticGuestAddress(cidr: HostCidr, taken: readonly string[], reserved: readonly AddressRange[] = []): string | undefined {
  const network = ipToNumber(cidr.network) ?? 0;
  const broadcast = ipToNumber(cidr.broadcast) ?? 0;
  const host = ipToNumber(cidr.ip);
  const used = new Set(taken.map(ipToNumber).filter((value) => value !== undefined));
  const own = dhcpRange(cidr);
  const ranges: [number, number][] = [];
  for (const range of [...reserved, { lowerIp: own.serverIp, upperIp: own.serverIp }, { lowerIp: own.lowerIp, upperIp: own.upperIp }]) {
    const lower = ipToNumber(range.lowerIp);
    const upper = ipToNumber(range.upperIp);
    if (lower !== undefined && upper !== undefined && lower <= upper) ranges.push([lower, upper]);
  }
  for (let value = network + 1; value < broadcast; value++) {
    // Jump over a whole reserved range at once (a /8 has 16 million addresses).
    const inside = ranges.find(([lower, upper]) => value >= lower && value <= upper);
    if (inside !== undefined) {
      value = inside[1];
      continue;
    }
    if (value !== host && !used.has(value)) return numberToIp(value);
  }
  return undefined;
}

/** One IPv4 route of the host. */
export interface HostRoute {
  iface: string;
  network: string;
  prefix: number;
}

/** Parses Linux's `/proc/net/route` (addresses in little-endian hex). */
export function parseProcNetRoute(text: string): HostRoute[] {
  const routes: HostRoute[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    const [iface, destination, , , , , , mask] = fields;
    if (iface === undefined || destination === undefined || mask === undefined) continue;
    const dest = Buffer.from(destination, 'hex').readUInt32LE(0);
    const maskValue = Buffer.from(mask, 'hex').readUInt32LE(0);
    const prefix = countBits(maskValue);
    routes.push({ iface, network: numberToIp(dest >>> 0), prefix });
  }
  return routes;
}

/** Parses `ip -4 route` lines (`192.168.1.0/24 dev eth0 …`, `default via …`). */
export function parseIpRoute(text: string): HostRoute[] {
  const routes: HostRoute[] = [];
  for (const line of text.split('\n')) {
    const match = /^(?:(?:unicast|local|broadcast)\s+)?(default|\d+\.\d+\.\d+\.\d+(?:\/\d+)?)\s.*\bdev\s+(\S+)/.exec(line.trim());
    if (match === null) continue;
    const [destination, iface] = [match[1] ?? '', match[2] ?? ''];
    if (destination === 'default') {
      routes.push({ iface, network: '0.0.0.0', prefix: 0 });
      continue;
    }
    const [ip, prefix] = destination.split('/');
    routes.push({ iface, network: ip ?? '', prefix: prefix === undefined ? 32 : Number(prefix) });
  }
  return routes;
}

/** Parses macOS/BSD `netstat -rn -f inet` (destinations may be abbreviated: `192.168.1`, `10/8`). */
export function parseNetstatRoutes(text: string): HostRoute[] {
  const routes: HostRoute[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const destination = fields[0];
    const iface = fields[3];
    if (destination === undefined || iface === undefined || !/^\d/.test(destination)) continue;
    const [address, explicitPrefix] = destination.split('/');
    const octets = (address ?? '').split('.');
    if (octets.some((octet) => !/^\d+$/.test(octet))) continue;
    const full = [...octets, '0', '0', '0', '0'].slice(0, 4).join('.');
    const prefix = explicitPrefix === undefined ? (octets.length === 4 ? 32 : octets.length * 8) : Number(explicitPrefix);
    routes.push({ iface, network: full, prefix });
  }
  return routes;
}

function countBits(value: number): number {
  let bits = 0;
  for (let v = value >>> 0; v !== 0; v >>>= 1) bits += v & 1;
  return bits;
}

/** Where the host's routes come from (injectable for tests). */
export interface RouteSource {
  platform?: NodeJS.Platform;
  /** Linux: the routing table file (default `/proc/net/route`). */
  procNetRoute?: string;
  /** Replaces the platform's own lookup (tests of other platforms). */
  read?: () => Promise<HostRoute[]>;
}

/** The host's IPv4 routes; an empty list where they cannot be read (the check is then skipped). */
export async function readHostRoutes(source: RouteSource = {}): Promise<HostRoute[]> {
  if (source.read !== undefined) return source.read();
  const platform = source.platform ?? process.platform;
  if (platform === 'linux') {
    try {
      const { readFile } = await import('node:fs/promises');
      return parseProcNetRoute(await readFile(source.procNetRoute ?? '/proc/net/route', 'utf8'));
    } catch {
      return parseIpRoute(await run('ip', ['-4', 'route']).catch(() => ''));
    }
  }
  if (platform === 'darwin' || platform === 'freebsd') return parseNetstatRoutes(await run('netstat', ['-rn', '-f', 'inet']).catch(() => ''));
  return [];
}

async function run(command: string, args: string[]): Promise<string> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    execFile(command, args, { encoding: 'utf8', timeout: 5000 }, (error, stdout) => (error === null ? resolve(stdout) : reject(error)));
  });
}

/**
 * The host routes (other than the default route and those of `ownInterfaces`) whose network
 * overlaps the host-only CIDR: a host-only network there would shadow or be shadowed by them.
 */
export function collidingRoutes(cidr: HostCidr, routes: readonly HostRoute[], ownInterfaces: readonly string[] = []): HostRoute[] {
  const ownNetwork = ipToNumber(cidr.network) ?? 0;
  return routes.filter((route) => {
    if (route.prefix === 0 || ownInterfaces.includes(route.iface)) return false;
    const network = ipToNumber(route.network);
    if (network === undefined) return false;
    const shorter = Math.min(route.prefix, cidr.prefix);
    const mask = maskOf(shorter);
    return ((network & mask) >>> 0) === ((ownNetwork & mask) >>> 0);
  });
}
