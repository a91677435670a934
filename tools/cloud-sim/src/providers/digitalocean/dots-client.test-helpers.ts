import { FetchRequestAdapter } from '@microsoft/kiota-http-fetchlibrary';

/**
 * The dots client, untyped on purpose: dots ships TypeScript sources instead of declarations, and
 * importing its types makes our tsc compile ~500 of its files, which fail our strict settings
 * (errors skipLibCheck does not cover). The tests drive the real client, so shapes are checked at
 * run time by the assertions.
 */
// biome-ignore lint/suspicious/noExplicitAny: see above, the SDK's types cannot be imported.
export type DotsClient = any;

interface DotsModule {
  createDigitalOceanClient(adapter: FetchRequestAdapter): DotsClient;
  DigitalOceanApiKeyAuthenticationProvider: new (token: string) => ConstructorParameters<typeof FetchRequestAdapter>[0];
}

// A specifier in a variable keeps tsc from compiling the SDK's TypeScript sources.
const dotsSpecifier: string = '@digitalocean/dots';
const dots = (await import(dotsSpecifier)) as DotsModule;

/** The real `@digitalocean/dots` client pointed at a simulator endpoint. */
export function dotsClient(endpoint: string, token = 'test-token'): DotsClient {
  const adapter = new FetchRequestAdapter(new dots.DigitalOceanApiKeyAuthenticationProvider(token));
  adapter.baseUrl = endpoint;
  return dots.createDigitalOceanClient(adapter);
}

/** The plain-object error dots throws: `{ responseStatusCode, messageEscaped, requestId }`. */
export interface DotsError {
  responseStatusCode?: number;
  messageEscaped?: string;
  requestId?: string;
  id?: string;
}

/** Awaits a call expected to fail and returns the dots error object. */
export async function dotsFailure(call: Promise<unknown>): Promise<DotsError> {
  try {
    await call;
  } catch (error) {
    return error as DotsError;
  }
  throw new Error('expected the call to fail');
}

/** Polls `check` every 10 ms until it returns a value (not undefined) or `timeoutMs` passes. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The fields tests read from list items (regions, sizes, images, keys, droplets, actions). */
export interface DotsItem {
  id?: number;
  slug?: string;
  name?: string;
  type?: string;
  memory?: number;
}

/** A droplet's `networks` as dots returns it (camelCase). */
export interface DotsNetworks {
  networks?: { v4?: { ipAddress?: string; type?: string }[] };
}

/** The address of a droplet's network of `type` (default public). */
export function ipOf(droplet: DotsNetworks, type: 'public' | 'private' = 'public'): string | undefined {
  return droplet.networks?.v4?.find((network) => network.type === type)?.ipAddress;
}
