import { createHash } from 'node:crypto';
import type { ProviderContext, SimRequest } from '../../core/provider-front-end.ts';
import { type Realism, realismOf, TokenBucket } from '../../core/realism.ts';
import type { InstanceState, SimInstance, SimResource } from '../../core/store.ts';
import { clientError } from './amazonec2-errors.ts';
import { type AmazonEC2Realism, EC2_REALISTIC_DEFAULTS } from './amazonec2-realism.ts';
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

/**
 * Options of the EC2 front end (`startSim({ providerOptions: { amazonec2: {...} } })`): the
 * account, plus the real-cloud behaviours and knobs of {@link AmazonEC2Realism}.
 */
export interface AmazonEC2Options extends AmazonEC2Realism {
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
  /** Epoch ms from which the public IP shows (realistic profile: a while after the instance runs). */
  publicIpAfter?: number;
  /** Why the instance last stopped or terminated (`StateReason.Code`). */
  stateReason?: string;
  /** The request parameters of the launching `RunInstances`, to answer `IdempotentParameterMismatch`. */
  requestFingerprint?: string;
  diskGb: number;
}

const stateCodes: Record<string, number> = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 };

/** Shared state and helpers of one EC2 front end. */
export class AmazonEC2Backend {
  readonly context: ProviderContext;
  readonly options: Required<Pick<AmazonEC2Options, 'instanceLimit' | 'invalidAccessKeyPrefix' | 'regionsWithoutDefaultVpc'>>;
  /** The options object as given: read on every call, so tests may turn knobs between calls. */
  readonly knobs: AmazonEC2Options;
  readonly realism: Realism;
  /** The request buckets of the `requestBuckets` knob object they were made for: a new knob starts them full. */
  #buckets: { knob: AmazonEC2Options['requestBuckets']; byAction: Map<string, TokenBucket> } = { knob: undefined, byAction: new Map() };
  readonly ownerId = '123456789012';
  readonly #networks = new Map<string, RegionNetwork | null>();
  readonly images: SimImage[];
  /** Closed or cancelled spot requests stay describable after they leave the store. */
  readonly closedSpotRequests = new Map<string, string>();

  constructor(context: ProviderContext, options: AmazonEC2Options = {}) {
    this.context = context;
    this.knobs = options;
    this.realism = realismOf(context.realism, options);
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

  /** A real-cloud duration of the realistic profile, scaled (0 under the `kind` profile). */
  scaled(knob: keyof typeof EC2_REALISTIC_DEFAULTS): number {
    return this.realism.scaled(this.knobs[knob] ?? EC2_REALISTIC_DEFAULTS[knob]);
  }

  /**
   * A visible instance of the region; `InvalidInstanceID.NotFound` otherwise — also right after
   * launch (read-after-create) and once a terminated instance's time in the listings is over.
   */
  instance(id: string, region: string): SimInstance {
    if (!/^i-[0-9a-f]{8,17}$/.test(id)) throw clientError('InvalidInstanceID.Malformed', `Invalid id: "${id}"`);
    const instance = this.context.store.getInstance(AMAZONEC2, id);
    if (instance === undefined || ec2Attributes(instance).region !== region || !this.visible(instance)) {
      throw clientError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    }
    return instance;
  }

  /** The region's visible instances, terminated ones included (EC2 lists them for a while). */
  instances(region: string): SimInstance[] {
    return this.allInstances(region).filter((instance) => this.visible(instance));
  }

  /** Every instance of the region the account has, visible to the API or not (idempotency, in-use checks). */
  allInstances(region: string): SimInstance[] {
    return this.context.store.listInstances(AMAZONEC2, { includeTerminated: true }).filter((instance) => ec2Attributes(instance).region === region);
  }

  /** False during the read-after-create window and after a terminated instance's TTL. */
  visible(instance: SimInstance | SimResource): boolean {
    const now = Date.now();
    if (now - instance.createdAt.getTime() < this.scaled('visibilityLagMs')) return false;
    if ('state' in instance && instance.state === 'terminated' && this.realism.realistic) {
      return now - instance.stateChangedAt.getTime() < this.scaled('terminatedTtlMs');
    }
    return true;
  }

  /** True when the instance shows its public IP: it runs (or reboots) and, when realistic, its IP lag is over. */
  showsPublicIp(instance: SimInstance): boolean {
    const a = ec2Attributes(instance);
    const state = this.stateName(instance);
    if (!a.associatePublicIp || state === 'terminated' || state === 'shutting-down' || state === 'stopped' || state === 'stopping') return false;
    if (!this.realism.realistic) return true;
    return state === 'running' && Date.now() >= (a.publicIpAfter ?? 0);
  }

  /** Hides the public IP until `running` resolves, then for the IP lag (realistic profile). */
  assignPublicIpLater(instance: SimInstance, running: Promise<boolean>): void {
    const attributes = ec2Attributes(instance);
    attributes.publicIpAfter = Number.POSITIVE_INFINITY;
    void running.then((reached) => {
      if (reached) attributes.publicIpAfter = Date.now() + this.scaled('publicIpLagMs');
    });
  }

  /** Takes a token of the action's request bucket (knob `requestBuckets`); false when throttled. */
  takeRequestToken(action: string): boolean {
    const knob = this.knobs.requestBuckets;
    if (knob === undefined || (knob.actions !== undefined && !knob.actions.includes(action))) return true;
    if (this.#buckets.knob !== knob) this.#buckets = { knob, byAction: new Map() };
    let bucket = this.#buckets.byAction.get(action);
    if (bucket === undefined) {
      bucket = new TokenBucket(knob.size, knob.refillPerSecond);
      this.#buckets.byAction.set(action, bucket);
    }
    return bucket.take();
  }

  /** A region's resources of a kind. */
  resources(kind: string, region: string): SimResource[] {
    return this.context.store.listResources(AMAZONEC2, kind).filter((resource) => resource.attributes.region === region);
  }

  /** EC2-style id: prefix + 17 hex characters. */
  newId(prefix: string, length = 17): string {
    return `${prefix}-${this.context.ids.hex(length)}`;
  }

  /**
   * The EC2 state name of an instance: `running` while it reboots (EC2 shows no transient state),
   * `shutting-down` for a while after terminate (realistic profile).
   */
  stateName(instance: SimInstance): string {
    if (ec2Attributes(instance).rebooting === true && instance.state !== 'terminated') return 'running';
    if (instance.state === 'terminated' && Date.now() - instance.stateChangedAt.getTime() < this.scaled('shuttingDownMs')) return 'shutting-down';
    return instance.state;
  }

  /** `<instanceState>` / `<currentState>` value; realistic codes carry EC2's internal high byte (running = 272). */
  stateXml(state: InstanceState | string): Record<string, XmlValue> {
    const highByte = this.realism.realistic && this.knobs.stateCodeHighByte !== false ? 256 : 0;
    return { code: (stateCodes[state] ?? 0) + highByte, name: state };
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
