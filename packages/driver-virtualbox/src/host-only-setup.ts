import { InvalidConfigError, NotFoundError, ProviderError, type ResourceRunner } from '@machine/driver-core';
import {
  type AddressRange,
  cidrContains,
  collidingRoutes,
  dhcpRange,
  type HostCidr,
  parseHostCidr,
  type RouteSource,
  readHostRoutes,
  staticGuestAddress,
} from './host-network.ts';
import type { VBoxClient } from './vbox-client.ts';
import { parseBlocks, parseVmList } from './vboxmanage.ts';
import { dhcpServerKind, extraDataValue, hostOnlyInterfaceKind, hostOnlyIpKey, hostOnlyNetworkKind, hostOnlyTag } from './virtualbox-resources.ts';

/** The host-only network create uses: an existing interface that matches the CIDR, or one to make. */
export interface HostOnlyPlan {
  /** `if`: a host-only interface (vboxnetN, Linux/Windows, macOS before 7); `net`: a host-only network (VirtualBox 7 on macOS). */
  mode: 'if' | 'net';
  cidr: HostCidr;
  existing?: string;
  /** `if` mode: the host-only interfaces there were (a new one's intent journals them). */
  names?: readonly string[];
  /** `net` mode, an existing network: the range its built-in (vmnet) DHCP serves. */
  leases?: AddressRange;
}

/**
 * The host-only side of create and start: plans which interface (or macOS host-only network) a
 * VM joins, makes or adopts it through the resource runner, and picks a free static address.
 * The caller holds the host-only lock around `plan` + `ensure` + the VM's attachment.
 */
export class HostOnlySetup {
  readonly #client: VBoxClient;
  readonly #cidr: string;
  readonly #host: { platform: NodeJS.Platform; routes: RouteSource };
  readonly #machine: string;

  constructor(options: { client: VBoxClient; cidr: string; host: { platform: NodeJS.Platform; routes: RouteSource }; machine: string }) {
    this.#client = options.client;
    this.#cidr = options.cidr;
    this.#host = options.host;
    this.#machine = options.machine;
  }

  /** Finds a host-only interface with the CIDR, or checks that a new one would not collide with a host route. */
  async plan(mode: 'if' | 'net', operation: string): Promise<HostOnlyPlan> {
    const cidr = parseHostCidr(this.#cidr);
    if (mode === 'net') return this.#planNetwork(cidr, operation);
    const interfaces = parseBlocks(await this.#client.vbox(['list', 'hostonlyifs'], operation));
    const match = interfaces.find((block) => block.get('IPAddress') === cidr.ip && block.get('NetworkMask') === cidr.netmask);
    const name = match?.get('Name');
    if (name !== undefined) return { mode: 'if', cidr, existing: name };
    const sameNetwork = interfaces.filter((block) => {
      const ip = block.get('IPAddress');
      return ip !== undefined && ip !== '' && cidrContains(cidr, ip);
    });
    const collisions = await this.#collisions(
      cidr,
      sameNetwork.map((block) => block.get('Name') ?? ''),
    );
    const conflict = sameNetwork[0];
    if (conflict !== undefined) {
      throw new InvalidConfigError(
        [
          {
            flag: 'virtualbox-hostonly-cidr',
            message: `host-only interface ${conflict.get('Name')} already uses ${conflict.get('IPAddress')}/${conflict.get('NetworkMask')} in ${cidr.network}/${cidr.prefix}; pass its address (${conflict.get('IPAddress')}/${cidr.prefix}) or another range`,
          },
        ],
        { machine: this.#machine, operation },
      );
    }
    this.#throwOnCollision(cidr, collisions, operation);
    return { mode: 'if', cidr, names: interfaces.map((block) => block.get('Name') ?? '') };
  }

  /** VirtualBox 7 on macOS: a host-only network whose mask and DHCP range match the CIDR, or a new one. */
  async #planNetwork(cidr: HostCidr, operation: string): Promise<HostOnlyPlan> {
    const networks = parseBlocks(await this.#client.vbox(['list', 'hostonlynets'], operation));
    const inside = networks.filter((block) => cidrContains(cidr, block.get('LowerIP') ?? ''));
    const match = inside.find((block) => block.get('NetworkMask') === cidr.netmask);
    const name = match?.get('Name');
    if (name !== undefined) return { mode: 'net', cidr, existing: name, leases: { lowerIp: match?.get('LowerIP') ?? '', upperIp: match?.get('UpperIP') ?? '' } };
    const conflict = inside[0];
    if (conflict !== undefined) {
      throw new InvalidConfigError(
        [{ flag: 'virtualbox-hostonly-cidr', message: `host-only network ${conflict.get('Name')} already serves ${conflict.get('LowerIP')}-${conflict.get('UpperIP')} with mask ${conflict.get('NetworkMask')}; pick another range` }],
        { machine: this.#machine, operation },
      );
    }
    this.#throwOnCollision(cidr, await this.#collisions(cidr, []), operation);
    return { mode: 'net', cidr };
  }

  async #collisions(cidr: HostCidr, ownInterfaces: readonly string[]) {
    const routes = await readHostRoutes({ platform: this.#host.platform, ...this.#host.routes });
    return collidingRoutes(cidr, routes, ownInterfaces);
  }

  #throwOnCollision(cidr: HostCidr, collisions: readonly { network: string; prefix: number; iface: string }[], operation: string): void {
    if (collisions.length === 0) return;
    const list = collisions.map((route) => `${route.network}/${route.prefix} on ${route.iface}`).join(', ');
    throw new InvalidConfigError(
      [{ flag: 'virtualbox-hostonly-cidr', message: `${cidr.network}/${cidr.prefix} collides with the host route ${list}; pick a free range, e.g. 192.168.60.1/24` }],
      { machine: this.#machine, operation },
    );
  }

  /**
   * Reuses the planned interface (adding a DHCP server when it has none) or creates interface + DHCP
   * server. Without `dhcp` (a static guest) no DHCP server is added, enabled or changed: a server
   * the network already has (another machine's, the user's) is left as it is.
   */
  async ensure(run: ResourceRunner<VBoxClient>, plan: HostOnlyPlan, operation: string, dhcp: boolean): Promise<string> {
    const range = dhcpRange(plan.cidr);
    if (plan.mode === 'net') return this.#ensureNetwork(run, plan, range, operation);
    const dhcpArgs = (name: string) => [
      'dhcpserver',
      'add',
      '--interface',
      name,
      '--server-ip',
      range.serverIp,
      '--netmask',
      plan.cidr.netmask,
      '--lower-ip',
      range.lowerIp,
      '--upper-ip',
      range.upperIp,
      '--enable',
    ];
    if (plan.existing !== undefined) {
      const name = plan.existing;
      // An interface another machine made is tagged in VirtualBox's global extra data: it is shared,
      // and whoever removes the last VM on it deletes it. One the user made is never deleted.
      const madeByMachine = extraDataValue(await this.#client.vbox(['getextradata', 'global', hostOnlyTag(name)], operation)) !== undefined;
      await run.adopt(hostOnlyInterfaceKind, { id: name }, { shared: madeByMachine });
      if (!dhcp) return name;
      // Even an interface machine made may have no DHCP server: its maker's guest had a static address.
      const servers = parseBlocks(await this.#client.vbox(['list', 'dhcpservers'], operation));
      const server = servers.find((block) => block.get('NetworkName') === `HostInterfaceNetworking-${name}`);
      if (server === undefined) {
        await run.make(dhcpServerKind, { interface: name, args: dhcpArgs(name) });
      } else if (madeByMachine && server.get('Enabled') !== 'Yes') {
        // The disabled default server VirtualBox gave the interface when a static guest's create made it.
        await this.#client.vbox(['dhcpserver', 'modify', ...dhcpArgs(name).slice(2)], operation);
      }
      return name;
    }
    // The interfaces there now go with the intent: one that appears without a reply is the one it made.
    const name = (await run.make(hostOnlyInterfaceKind, { before: plan.names ?? [] })).id;
    await this.#client.vbox(['setextradata', 'global', hostOnlyTag(name), this.#machine], operation);
    await this.#client.vbox(['hostonlyif', 'ipconfig', name, '--ip', plan.cidr.ip, '--netmask', plan.cidr.netmask], operation);
    if (!dhcp) return name;
    // Some VirtualBox versions give a new interface a default DHCP server; configure that one then.
    await this.#client.vbox(dhcpArgs(name), operation).catch(async (error: unknown) => {
      if (!(ProviderError.isInstance(error) && /already exists/i.test(error.message))) throw error;
      await this.#client.vbox(['dhcpserver', 'modify', ...dhcpArgs(name).slice(2)], operation);
    });
    return name;
  }

  /**
   * The static host-only address of a `--virtualbox-hostonly-no-dhcp` guest, chosen while the
   * caller holds the host-only lock (and records it on the VM before letting go). Taken are the
   * addresses every other VM records in its extra data ({@link hostOnlyIpKey}) inside the CIDR,
   * whichever network it is attached to now; reserved are the address and lease range of each DHCP
   * server of this network (on a macOS host-only network, its built-in DHCP range).
   */
  async chooseStaticAddress(name: string, plan: HostOnlyPlan, ownUuid: string, operation: string): Promise<string> {
    const taken: string[] = [];
    for (const vm of parseVmList(await this.#client.vbox(['list', 'vms'], operation))) {
      if (vm.uuid === ownUuid.toLowerCase()) continue;
      let output: string;
      try {
        output = await this.#client.vbox(['getextradata', vm.uuid, hostOnlyIpKey], operation);
      } catch (error) {
        // Deleted since the list: its address is free again.
        if (NotFoundError.isInstance(error)) continue;
        throw error;
      }
      const address = /^Value: (\S+)/.exec(output.trim())?.[1];
      if (address !== undefined && cidrContains(plan.cidr, address)) taken.push(address);
    }
    const reserved: AddressRange[] = [];
    if (plan.mode === 'net') {
      if (plan.leases !== undefined) reserved.push(plan.leases);
    } else {
      for (const server of parseBlocks(await this.#client.vbox(['list', 'dhcpservers'], operation))) {
        if (server.get('NetworkName') !== `HostInterfaceNetworking-${name}`) continue;
        const serverIp = server.get('Dhcpd IP') ?? '';
        reserved.push({ lowerIp: serverIp, upperIp: serverIp }, { lowerIp: server.get('LowerIPAddress') ?? '', upperIp: server.get('UpperIPAddress') ?? '' });
      }
    }
    const address = staticGuestAddress(plan.cidr, taken, reserved);
    if (address === undefined) {
      throw new InvalidConfigError(
        [
          {
            flag: 'virtualbox-hostonly-cidr',
            message: `no free static address left in ${plan.cidr.network}/${plan.cidr.prefix} (other VMs have ${taken.length}, the rest is the host's or DHCP's); remove a machine or pick a wider range`,
          },
        ],
        { machine: this.#machine, operation },
      );
    }
    return address;
  }

  /** VirtualBox 7 on macOS: reuse the matching host-only network or add one (vmnet gives the host the first address and serves DHCP itself). */
  async #ensureNetwork(run: ResourceRunner<VBoxClient>, plan: HostOnlyPlan, range: AddressRange, operation: string): Promise<string> {
    if (plan.existing !== undefined) {
      const name = plan.existing;
      const madeByMachine = extraDataValue(await this.#client.vbox(['getextradata', 'global', hostOnlyTag(name, 'net')], operation)) !== undefined;
      await run.adopt(hostOnlyNetworkKind, { id: name }, { shared: madeByMachine });
      return name;
    }
    const name = `machine-${plan.cidr.network}-${plan.cidr.prefix}`;
    await run.make(hostOnlyNetworkKind, { name, netmask: plan.cidr.netmask, lowerIp: range.lowerIp, upperIp: range.upperIp });
    await this.#client.vbox(['setextradata', 'global', hostOnlyTag(name, 'net'), this.#machine], operation);
    return name;
  }
}
