import type { ProviderDefinition } from '../core/provider-front-end.ts';
import { amazonec2Provider } from './amazonec2/index.ts';
import { azureProvider } from './azure/index.ts';
import { digitalOceanProvider } from './digitalocean/index.ts';
import { googleProvider } from './google/index.ts';

/**
 * Every provider front end the simulator can start, by name. To add one, create
 * `src/providers/<name>/index.ts` exporting a {@link ProviderDefinition} and list it here.
 */
export const PROVIDERS: Readonly<Record<string, ProviderDefinition<unknown>>> = {
  [digitalOceanProvider.name]: digitalOceanProvider,
  [amazonec2Provider.name]: amazonec2Provider as ProviderDefinition<unknown>,
  [azureProvider.name]: azureProvider as ProviderDefinition<unknown>,
  [googleProvider.name]: googleProvider as ProviderDefinition<unknown>,
};
