import { createHash } from 'node:crypto';
import type { ProviderContext, SimRequest } from '../../core/provider-front-end.ts';
import type { InstanceState, SimInstance, SimResource } from '../../core/store.ts';
import { clientError } from './amazonec2-errors.ts';
import { sigV4Scope, type XmlValue } from './amazonec2-wire.ts';

/** Provider name in the store, the request log and fault rules. */
export const AMAZONEC2 = 'amazonec2';

/** Store kinds of the leakable EC2 resources. */
export const EC2_KINDS = {
  instance: 'instance',
  keyPair: 'key_pair',
  securityGroup: 'security_group',
  volume: 'volume',
  spotRequest: 'spot_request',
} as const;

/** Options of the EC2 front end (`startSim({ amazonec2: {...} })`). */
export interface AmazonEC2Options {
  /** Live instances allowed in the account; RunInstances beyond it gets `VcpuLimitExceeded` (default 100). */
  instanceLimit?: number;
  /** Access key ids starting with this get 401 `AuthFailure` (default `invalid`). */
  invalidAccessKeyPrefix?: string;
  /** Regions without a default VPC (to test `--amazonec2-vpc-id` handling). */
  regionsWithoutDefaultVpc?: readonly string[];
}

/** An AMI the simulator knows, in every region. */
export interface SimImage {
  id: string;
  name: string;
  architecture: 'x86_64' | 'arm64';
  rootDeviceName: string;
  rootSizeGb: number;
}

/** A default VPC and its subnets, seeded per region on first use (not leakable: they pre-exist). */
export interface RegionNetwork {
  vpcId: string;
  cidr: string;
  subnets: { subnetId: string; zone: string; zoneId: string; cidr: string; defaultForAz: boolean }[];
}

/** EC2 instance details kept in `instance.attributes`. */
export interface Ec2InstanceAttributes {
  region: string;
  reservationId: string;
  imageId: string;
  instanceType: string;
  keyName?: string;
  subnetId: string;
  vpcId: string;
  availabilityZone: string;
  groupIds: string[];
  clientToken?: string;
  tags: { key: string; value: string }[];
  blockDevices: { deviceName: string; volumeId: string; deleteOnTermination: boolean }[];
  rootDeviceName: string;
  architecture: string;
  metadataOptions: { httpTokens: string; httpPutResponseHopLimit: number; httpEndpoint: string };
  monitoring: boolean;
  ebsOptimized: boolean;
  iamInstanceProfile?: string;
  spotInstanceRequestId?: string;
  associatePublicIp: boolean;
  /** The user data, base64-decoded (as cloud-init reads it). */
  userData?: string;
  /** True while a reboot runs: EC2 keeps reporting `running`. */
  rebooting?: boolean;
  diskGb: number;
}

const stateCodes: Record<string, number> = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 };

/** Shared state and helpers of one EC2 front end. */
export class AmazonEC2Backend {
  readonly context: ProviderContext;
  readonly options: Required<AmazonEC2Options>;
  readonly ownerId = '123456789012';
  readonly #networks = new Map<string, RegionNetwork | null>();
  readonly images: SimImage[];
  /** Closed or cancelled spot requests stay describable after they leave the store. */
  readonly closedSpotRequests = new Map<string, string>();

  constructor(context: ProviderContext, options: AmazonEC2Options = {}) {
    this.context = context;
    this.options = {
      instanceLimit: options.instanceLimit ?? 100,
      invalidAccessKeyPrefix: options.invalidAccessKeyPrefix ?? 'invalid',
      regionsWithoutDefaultVpc: options.regionsWithoutDefaultVpc ?? [],
    };
    this.images = [
      { id: 'ami-0a1b2c3d4e5f60718', name: 'ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20251101', architecture: 'x86_64', rootDeviceName: '/dev/sda1', rootSizeGb: 8 },
      { id: 'ami-0b1c2d3e4f5a60718', name: 'ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20251101', architecture: 'arm64', rootDeviceName: '/dev/sda1', rootSizeGb: 8 },
      { id: 'ami-0c1d2e3f4a5b60718', name: 'ubuntu/images/hvm-ssd-gp3/ubuntu-jammy-22.04-amd64-server-20251101', architecture: 'x86_64', rootDeviceName: '/dev/sda1', rootSizeGb: 8 },
      { id: 'ami-0d1e2f3a4b5c60718', name: 'al2023-ami-2023.9.20251101.0-kernel-6.1-x86_64', architecture: 'x86_64', rootDeviceName: '/dev/xvda', rootSizeGb: 8 },
    ];
  }

  /** Public SSM parameters: the Canonical Ubuntu "current" AMI ids. */
  ssmParameter(name: string): string | undefined {
    const match = /^\/aws\/service\/canonical\/ubuntu\/server\/(24\.04|22\.04)\/stable\/current\/(amd64|arm64)\/hvm\/ebs-gp3\/ami-id$/.exec(name);
    if (match === null) return undefined;
    const [, release, arch] = match;
    const codename = release === '24.04' ? 'noble' : 'jammy';
    return this.images.find((image) => image.name.includes(`${codename}-${release}-${arch}`))?.id;
  }

  /** The region a request is signed for. */
  region(request: SimRequest): string {
    return sigV4Scope(request)?.region ?? 'us-east-1';
  }

  /** The region's default VPC and subnets (seeded once), or undefined when the region has none. */
  network(region: string): RegionNetwork | undefined {
    if (!this.#networks.has(region)) {
      if (this.options.regionsWithoutDefaultVpc.includes(region)) this.#networks.set(region, null);
      else {
        const prefix = region
          .split('-')
          .map((part, index) => (index === 0 ? part : /\d/.test(part) ? part : part[0]))
          .join('');
        this.#networks.set(region, {
          vpcId: `vpc-${this.#stableHex(`${region}/vpc`, 17)}`,
          cidr: '172.31.0.0/16',
          subnets: ['a', 'b', 'c'].map((letter, index) => ({
            subnetId: `subnet-${this.#stableHex(`${region}/${letter}`, 17)}`,
            zone: `${region}${letter}`,
            zoneId: `${prefix}-az${index + 1}`,
            cidr: `172.31.${index * 16}.0/20`,
            defaultForAz: true,
          })),
        });
      }
    }
    return this.#networks.get(region) ?? undefined;
  }

  /** Every region's network seeded so far. */
  networks(): RegionNetwork[] {
    return [...this.#networks.values()].filter((network): network is RegionNetwork => network !== null);
  }

  /** A live or terminated instance of the region; `InvalidInstanceID.NotFound` otherwise. */
  instance(id: string, region: string): SimInstance {
    if (!/^i-[0-9a-f]{8,17}$/.test(id)) throw clientError('InvalidInstanceID.Malformed', `Invalid id: "${id}"`);
    const instance = this.context.store.getInstance(AMAZONEC2, id);
    if (instance === undefined || ec2Attributes(instance).region !== region) {
      throw clientError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    }
    return instance;
  }

  /** The region's instances, terminated ones included (EC2 lists them for a while). */
  instances(region: string): SimInstance[] {
    return this.context.store.listInstances(AMAZONEC2, { includeTerminated: true }).filter((instance) => ec2Attributes(instance).region === region);
  }

  /** A region's resources of a kind. */
  resources(kind: string, region: string): SimResource[] {
    return this.context.store.listResources(AMAZONEC2, kind).filter((resource) => resource.attributes.region === region);
  }

  /** EC2-style id: prefix + 17 hex characters. */
  newId(prefix: string, length = 17): string {
    return `${prefix}-${this.context.ids.hex(length)}`;
  }

  /** The EC2 state name of an instance (`running` while it reboots, as EC2 reports). */
  stateName(instance: SimInstance): string {
    if (ec2Attributes(instance).rebooting === true && instance.state !== 'terminated') return 'running';
    return instance.state;
  }

  /** `<instanceState>` / `<currentState>` value. */
  stateXml(state: InstanceState | string): Record<string, XmlValue> {
    return { code: stateCodes[state] ?? 0, name: state };
  }

  #stableHex(seed: string, length: number): string {
    return createHash('sha256').update(seed).digest('hex').slice(0, length);
  }
}

/** The EC2 attributes of an instance. */
export function ec2Attributes(instance: SimInstance): Ec2InstanceAttributes {
  return instance.attributes as unknown as Ec2InstanceAttributes;
}

/** Tags as `<tagSet>` items. */
export function tagSet(tags: readonly { key: string; value: string }[]): XmlValue[] {
  return tags.map((tag) => ({ key: tag.key, value: tag.value }));
}

/** Applies EC2 filters (`name` → accepted values, `*` and `?` wildcards) through a getter per filter name. */
export function matchesFilters(filters: Map<string, string[]>, getter: (name: string) => string | readonly string[] | undefined): boolean {
  for (const [name, values] of filters) {
    const actual = getter(name);
    const list = actual === undefined ? [] : typeof actual === 'string' ? [actual] : actual;
    if (!values.some((value) => list.some((candidate) => wildcard(value).test(candidate)))) return false;
  }
  return true;
}

/** Tag getter for `tag:Key` and `tag-key` filters. */
export function tagFilter(name: string, tags: readonly { key: string; value: string }[]): string | string[] | undefined {
  if (name.startsWith('tag:')) return tags.filter((tag) => tag.key === name.slice(4)).map((tag) => tag.value);
  if (name === 'tag-key') return tags.map((tag) => tag.key);
  if (name === 'tag-value') return tags.map((tag) => tag.value);
  return undefined;
}

function wildcard(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/** Reads `TagSpecification.N` for one resource type. */
export function tagsFor(specs: readonly { type: string | undefined; tags: { key: string; value: string }[] }[], type: string): { key: string; value: string }[] {
  return specs.filter((spec) => spec.type === type).flatMap((spec) => spec.tags);
}
