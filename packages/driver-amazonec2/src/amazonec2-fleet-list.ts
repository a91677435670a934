/**
 * `ls`'s DescribeInstances without `@aws-sdk/client-ec2`. Loading that client evaluates the
 * schemas of all ~800 EC2 operations: about 0.45 CPU-s with a warm compile cache on the 2-core CI
 * machine, most of a fleet listing's time. A listing needs one operation, so this path sends it
 * with the SDK's own parts instead (about 0.1 CPU-s): the default credential chain
 * (`@aws-sdk/credential-provider-node`), SigV4 (`@smithy/signature-v4`), the standard retry
 * strategy (`@smithy/core/retry`) and the SDK's XML parser (`@aws-sdk/xml-builder`). Every attempt
 * draws from the process's rate budget like the client's middleware does.
 *
 * It goes only where the endpoint is plain: `--amazonec2-endpoint`, or a region of the `aws`,
 * `aws-cn` or `aws-us-gov` partition with no FIPS, dual-stack or configured endpoint URL in the
 * environment or the shared config file. Anywhere else `fleetListEndpoint` says undefined and the
 * caller uses the client, whose endpoint rules know.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { rateBudget, sleep } from '@machine/driver-core';
import type { AmazonEC2Config } from './amazonec2-flags.ts';
import { amazonEC2RateBucket, isAmazonEC2Throttle } from './amazonec2-rate-budget.ts';

/** What a listing needs of an instance. */
export interface ListedInstance {
  readonly id: string;
  /** EC2's state name: `pending`, `running`, `stopping`, `stopped`, `shutting-down`, `terminated`. */
  readonly state: string | undefined;
  readonly publicIp: string | undefined;
  readonly privateIp: string | undefined;
}

/** An EC2 error answer, shaped like the SDK's service exceptions so `mapAmazonEC2Error` reads it the same. */
export class FleetListError extends Error {
  readonly $metadata: { httpStatusCode: number; requestId?: string };
  readonly $fault: 'client' | 'server';

  constructor(code: string, message: string, status: number, requestId: string | undefined) {
    super(message);
    this.name = code;
    this.$metadata = { httpStatusCode: status, ...(requestId === undefined ? {} : { requestId }) };
    this.$fault = status >= 500 ? 'server' : 'client';
  }
}

const STANDARD_REGION = /^(?:us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d+$/;
const GOV_REGION = /^us-gov-[a-z]+-\d+$/;
const CHINA_REGION = /^cn-[a-z]+-\d+$/;
const ENDPOINT_SETTINGS = /^\s*(?:endpoint_url|use_fips_endpoint|use_dualstack_endpoint)\s*=/m;

/**
 * The EC2 endpoint of a config when it is plain (see the module comment), else undefined: then only
 * the SDK's endpoint rules know where to go.
 */
export function fleetListEndpoint(config: AmazonEC2Config, env: Readonly<Record<string, string | undefined>> = process.env): URL | undefined {
  if (config.endpoint !== undefined) return new URL(config.endpoint);
  const configured = Object.keys(env).some((name) => /^AWS_(ENDPOINT_URL|USE_FIPS_ENDPOINT|USE_DUALSTACK_ENDPOINT)/.test(name) && env[name] !== '');
  if (configured || sharedConfigSetsEndpoints(env)) return undefined;
  const region = config.region;
  if (CHINA_REGION.test(region)) return new URL(`https://ec2.${region}.amazonaws.com.cn/`);
  if (STANDARD_REGION.test(region) || GOV_REGION.test(region)) return new URL(`https://ec2.${region}.amazonaws.com/`);
  return undefined;
}

function sharedConfigSetsEndpoints(env: Readonly<Record<string, string | undefined>>): boolean {
  const path = env.AWS_CONFIG_FILE ?? join(env.HOME ?? homedir(), '.aws', 'config');
  try {
    return ENDPOINT_SETTINGS.test(readFileSync(path, 'utf8'));
  } catch {
    return false;
  }
}

interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly accountId?: string;
}

/** The parts of the SDK this path loads, once per process. */
interface Parts {
  readonly SignatureV4: typeof import('@smithy/signature-v4').SignatureV4;
  readonly defaultProvider: typeof import('@aws-sdk/credential-provider-node').defaultProvider;
  readonly StandardRetryStrategy: typeof import('@smithy/core/retry').StandardRetryStrategy;
  readonly parseXML: typeof import('@aws-sdk/xml-builder').parseXML;
}
let parts: Promise<Parts> | undefined;

/** Loads the SDK parts the listing uses (cheap: no client, no operation schemas). */
export function loadFleetListParts(): Promise<Parts> {
  parts ??= Promise.all([import('@smithy/signature-v4'), import('@aws-sdk/credential-provider-node'), import('@smithy/core/retry'), import('@aws-sdk/xml-builder')]).then(
    ([signature, credentials, retry, xml]) => ({
      SignatureV4: signature.SignatureV4,
      defaultProvider: credentials.defaultProvider,
      StandardRetryStrategy: retry.StandardRetryStrategy,
      parseXML: xml.parseXML,
    }),
  );
  return parts;
}

/** SHA-256 and HMAC-SHA-256 for the signer, from node:crypto (what the SDK's hash-node does). */
class NodeSha256 {
  readonly #hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(toBuffer(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }
}

function toBuffer(data: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** The SDK's default credential chain, built once per process (it caches and refreshes what it finds). */
let chainCredentials: (() => Promise<Credentials>) | undefined;

/** The flags' keys, else the SDK's default chain (env, profile, SSO, web identity, container, instance role). */
function credentialsOf(config: AmazonEC2Config, defaultProvider: Parts['defaultProvider']): () => Promise<Credentials> {
  if (config.accessKey !== undefined && config.secretKey !== undefined) {
    const fixed: Credentials = { accessKeyId: config.accessKey, secretAccessKey: config.secretKey, ...(config.sessionToken === undefined ? {} : { sessionToken: config.sessionToken }) };
    return async () => fixed;
  }
  chainCredentials ??= defaultProvider({}) as () => Promise<Credentials>;
  return chainCredentials;
}

/**
 * Describes the instances with these ids (200 per filter, 1 000 per page), as one list call per
 * region however many machines: the same request `describeMany` sends through the client.
 */
export async function describeInstancesLight(config: AmazonEC2Config, endpoint: URL, ids: readonly string[], signal?: AbortSignal): Promise<Map<string, ListedInstance>> {
  const { SignatureV4, defaultProvider, StandardRetryStrategy, parseXML } = await loadFleetListParts();
  const credentials = credentialsOf(config, defaultProvider);
  const signer = new SignatureV4({ credentials, region: config.region, service: 'ec2', sha256: NodeSha256 });
  const retry = new StandardRetryStrategy(config.retries + 1);
  const found = new Map<string, ListedInstance>();
  for (let start = 0; start < ids.length; start += 200) {
    const filter = ids.slice(start, start + 200);
    let nextToken: string | undefined;
    do {
      const form = new URLSearchParams({ Action: 'DescribeInstances', Version: '2016-11-15', 'Filter.1.Name': 'instance-id' });
      for (const [index, id] of filter.entries()) form.set(`Filter.1.Value.${index + 1}`, id);
      form.set('MaxResults', '1000');
      if (nextToken !== undefined) form.set('NextToken', nextToken);
      const answer = await sendWithRetries(form.toString(), { config, endpoint, signer, retry, credentials, parseXML, filtered: filter.length > 0 }, signal);
      for (const instance of instancesOf(answer)) found.set(instance.id, instance);
      const token = stringAt(answer, 'nextToken');
      nextToken = token === undefined || token === '' ? undefined : token;
    } while (nextToken !== undefined);
  }
  return found;
}

interface Sender {
  readonly config: AmazonEC2Config;
  readonly endpoint: URL;
  readonly signer: InstanceType<Parts['SignatureV4']>;
  readonly retry: InstanceType<Parts['StandardRetryStrategy']>;
  readonly credentials: () => Promise<Credentials>;
  readonly parseXML: Parts['parseXML'];
  readonly filtered: boolean;
}

type XmlValue = string | XmlObject | XmlValue[];
interface XmlObject {
  [key: string]: XmlValue;
}

async function sendWithRetries(body: string, sender: Sender, signal: AbortSignal | undefined): Promise<XmlObject> {
  let token = await sender.retry.acquireInitialRetryToken('ec2');
  for (;;) {
    try {
      const answer = await sendOnce(body, sender, signal);
      sender.retry.recordSuccess(token);
      return answer;
    } catch (error) {
      if (signal?.aborted === true || (error as Error).name === 'AbortError') throw error;
      const errorType = isAmazonEC2Throttle(error) ? 'THROTTLING' : error instanceof FleetListError ? (error.$fault === 'server' ? 'SERVER_ERROR' : 'CLIENT_ERROR') : 'TRANSIENT';
      try {
        // The strategy reads only the error type and the status; `cause` is typed narrower than Error's.
        token = await sender.retry.refreshRetryTokenForRetry(token, { errorType, error: error as Parameters<typeof sender.retry.refreshRetryTokenForRetry>[1]['error'] });
      } catch {
        throw error;
      }
      await sleep(token.getRetryDelay(), signal);
    }
  }
}

async function sendOnce(body: string, sender: Sender, signal: AbortSignal | undefined): Promise<XmlObject> {
  const { endpoint, config } = sender;
  const budget = rateBudget();
  const bucket = budget === undefined ? undefined : amazonEC2RateBucket(await accountOf(sender.credentials), config.region, 'DescribeInstances', sender.filtered ? { Filters: [1] } : {});
  if (budget !== undefined && bucket !== undefined) await budget.take(bucket, signal);
  const path = endpoint.pathname === '' ? '/' : endpoint.pathname;
  const signed = await sender.signer.sign({
    method: 'POST',
    protocol: endpoint.protocol,
    hostname: endpoint.hostname,
    ...(endpoint.port === '' ? {} : { port: Number(endpoint.port) }),
    path,
    query: {},
    headers: { host: endpoint.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body,
  });
  const response = await fetch(new URL(path, endpoint), { method: 'POST', headers: signed.headers, body, ...(signal === undefined ? {} : { signal }) });
  const text = await response.text();
  const requestId = response.headers.get('x-amzn-requestid') ?? undefined;
  if (!response.ok) {
    const error = errorOf(text, response.status, requestId, sender.parseXML);
    if (budget !== undefined && bucket !== undefined && isAmazonEC2Throttle(error)) await budget.observe(bucket, { throttled: true });
    throw error;
  }
  const parsed = sender.parseXML(text) as XmlObject;
  const root = parsed.DescribeInstancesResponse;
  if (root === undefined || typeof root !== 'object' || Array.isArray(root)) throw new FleetListError('MalformedResponse', `EC2 answered DescribeInstances with no DescribeInstancesResponse (HTTP ${response.status})`, 502, requestId);
  return root;
}

async function accountOf(credentials: () => Promise<Credentials>): Promise<string> {
  const identity = await credentials();
  return identity.accountId ?? identity.accessKeyId;
}

/** EC2's error document: `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`. */
function errorOf(text: string, status: number, requestId: string | undefined, parseXML: Parts['parseXML']): FleetListError {
  try {
    const response = (parseXML(text) as XmlObject).Response;
    const error = list(objectAt(objectAt(response, 'Errors'), 'Error'))[0];
    const code = stringAt(error, 'Code');
    if (code !== undefined) return new FleetListError(code, stringAt(error, 'Message') ?? code, status, stringAt(response, 'RequestID') ?? requestId);
  } catch {
    // Not EC2's XML (a proxy's page): said below with the status.
  }
  return new FleetListError(status === 503 ? 'ServiceUnavailable' : `Http${status}Error`, `EC2 answered HTTP ${status}: ${text.slice(0, 200)}`, status, requestId);
}

function instancesOf(answer: XmlObject): ListedInstance[] {
  const reservations = list(objectAt(objectAt(answer, 'reservationSet'), 'item'));
  return reservations.flatMap((reservation) =>
    list(objectAt(objectAt(reservation, 'instancesSet'), 'item')).flatMap((instance) => {
      const id = stringAt(instance, 'instanceId');
      if (id === undefined) return [];
      return [{ id, state: stringAt(objectAt(instance, 'instanceState'), 'name'), publicIp: stringAt(instance, 'ipAddress'), privateIp: stringAt(instance, 'privateIpAddress') }];
    }),
  );
}

/** The SDK's XML parser gives one child as an object and several as an array. */
function list(value: XmlValue | undefined): XmlObject[] {
  if (value === undefined || typeof value === 'string') return [];
  return (Array.isArray(value) ? value : [value]).filter((item): item is XmlObject => typeof item === 'object' && !Array.isArray(item));
}

function objectAt(value: XmlValue | undefined, key: string): XmlValue | undefined {
  return value !== undefined && typeof value === 'object' && !Array.isArray(value) ? value[key] : undefined;
}

function stringAt(value: XmlValue | undefined, key: string): string | undefined {
  const found = objectAt(value, key);
  return typeof found === 'string' ? found : undefined;
}
