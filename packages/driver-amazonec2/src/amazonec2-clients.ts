import { createRequire } from 'node:module';
import type { EC2Client, EC2ClientConfig } from '@aws-sdk/client-ec2';
import type { SSMClient, SSMClientConfig } from '@aws-sdk/client-ssm';
import type { AmazonEC2Config } from './amazonec2-flags.ts';
import { addRateBudgetMiddleware } from './amazonec2-rate-budget.ts';

/** The SDK clients the driver uses; inject them (tests, the simulator) or let the driver build them. */
export interface AmazonEC2Clients {
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
}

/** Client settings a host or a test adds to what the flags say (e.g. a fast `retryStrategy` in tests). */
export type AmazonEC2ClientOverrides = Partial<Pick<EC2ClientConfig & SSMClientConfig, 'retryStrategy' | 'requestHandler' | 'logger'>>;

type EC2Module = typeof import('@aws-sdk/client-ec2');
type SSMModule = typeof import('@aws-sdk/client-ssm');

let ec2Module: Promise<EC2Module> | undefined;
let ssmModule: Promise<SSMModule> | undefined;

/**
 * Loads `@aws-sdk/client-ec2` once, on first use: importing the driver never loads the SDK. It is
 * required, not imported: the package is CommonJS without a `type` field, so `import()` first
 * parses its 2 MB bundle (and each dependency's) to detect the module format, then compiles it
 * again as CommonJS; `require` compiles it once (measured: about 70 ms less CPU of ~530 ms).
 */
export function loadEC2Sdk(): Promise<EC2Module> {
  ec2Module ??= Promise.resolve().then(() => createRequire(import.meta.url)('@aws-sdk/client-ec2') as EC2Module);
  return ec2Module;
}

/** Loads `@aws-sdk/client-ssm` once, only when the default AMI is looked up. */
export function loadSSMSdk(): Promise<SSMModule> {
  ssmModule ??= import('@aws-sdk/client-ssm');
  return ssmModule;
}

/**
 * Client settings from the flags. Without `--amazonec2-access-key` the credentials are left to the
 * SDK's default provider chain (env, AWS_PROFILE / shared files, SSO, web identity, container and
 * instance roles), resolved by every new client and refreshed when they expire: nothing is frozen
 * into the machine's data.
 */
export function clientSettings(
  config: AmazonEC2Config,
  overrides: AmazonEC2ClientOverrides = {},
  service: 'ec2' | 'ssm' = 'ec2',
): EC2ClientConfig & SSMClientConfig {
  const endpoint = service === 'ec2' ? config.endpoint : ssmEndpoint(config.endpoint);
  return {
    region: config.region,
    maxAttempts: config.retries + 1,
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(config.accessKey !== undefined && config.secretKey !== undefined
      ? {
          credentials: {
            accessKeyId: config.accessKey,
            secretAccessKey: config.secretKey,
            ...(config.sessionToken === undefined ? {} : { sessionToken: config.sessionToken }),
          },
        }
      : {}),
    ...overrides,
  };
}

/**
 * Where SSM goes when `--amazonec2-endpoint` is set. An AWS host (another partition, a VPC
 * endpoint) is EC2's alone: SSM keeps the SDK's regional endpoint (or `AWS_ENDPOINT_URL_SSM`). Any
 * other host (the simulator, LocalStack) serves every service on one endpoint, so SSM goes there too.
 */
export function ssmEndpoint(endpoint: string | undefined): string | undefined {
  if (endpoint === undefined) return undefined;
  const host = new URL(endpoint).hostname;
  return /(^|\.)amazonaws\.com(\.cn)?$|(^|\.)amazonaws-us-gov\.com$|(^|\.)api\.aws$/.test(host) ? undefined : endpoint;
}

/**
 * A lazily built pair of clients: the EC2 client on first API call, the SSM client only if needed.
 * The clients it builds draw every request from the process's rate budget (when one is
 * configured); injected clients are the injector's to meter ({@link addRateBudgetMiddleware}).
 */
export class LazyClients {
  readonly #config: AmazonEC2Config;
  readonly #overrides: AmazonEC2ClientOverrides;
  readonly #injected: Partial<AmazonEC2Clients> | undefined;
  #ec2: Promise<EC2Client> | undefined;
  #ssm: Promise<SSMClient> | undefined;

  constructor(config: AmazonEC2Config, overrides: AmazonEC2ClientOverrides = {}, injected?: Partial<AmazonEC2Clients>) {
    this.#config = config;
    this.#overrides = overrides;
    this.#injected = injected;
  }

  ec2(): Promise<EC2Client> {
    this.#ec2 ??=
      this.#injected?.ec2 !== undefined
        ? Promise.resolve(this.#injected.ec2)
        : loadEC2Sdk().then(({ EC2Client }) => metered(new EC2Client(clientSettings(this.#config, this.#overrides)), 'ec2'));
    return this.#ec2;
  }

  ssm(): Promise<SSMClient> {
    this.#ssm ??=
      this.#injected?.ssm !== undefined
        ? Promise.resolve(this.#injected.ssm)
        : loadSSMSdk().then(({ SSMClient }) => metered(new SSMClient(clientSettings(this.#config, this.#overrides, 'ssm')), 'ssm'));
    return this.#ssm;
  }
}

function metered<C extends EC2Client | SSMClient>(client: C, service: 'ec2' | 'ssm'): C {
  addRateBudgetMiddleware(client, service);
  return client;
}

const sharedClients = new Map<string, LazyClients>();

/**
 * The clients of a config, shared by every machine of the process with the same region, endpoint,
 * credentials and retries: one EC2 client per provider-account-region, however many machines a
 * command touches. Injected clients and overrides (tests) get their own, unshared.
 */
export function clientsFor(config: AmazonEC2Config, overrides: AmazonEC2ClientOverrides = {}, injected?: Partial<AmazonEC2Clients>): LazyClients {
  if (injected !== undefined || Object.keys(overrides).length > 0) return new LazyClients(config, overrides, injected);
  const key = JSON.stringify([config.region, config.endpoint ?? '', config.accessKey ?? '', config.secretKey ?? '', config.sessionToken ?? '', config.retries]);
  let clients = sharedClients.get(key);
  if (clients === undefined) {
    clients = new LazyClients(config);
    sharedClients.set(key, clients);
  }
  return clients;
}
