/** Resource IDs: the journal keeps full ARM IDs; deleters read the group and names back out of them. */

/** The parts of an ARM resource ID. */
export interface ParsedResourceId {
  subscriptionId: string;
  resourceGroup: string;
  /** `Microsoft.Network/virtualNetworks`, or '' for a resource group. */
  type: string;
  /** The resource names along the type path: `[vnet]`, `[vnet, subnet]`; `[]` for a resource group. */
  names: string[];
}

/** Builds `/subscriptions/S/resourceGroups/G[/providers/P/T/N[/T2/N2]]`. */
export function resourceId(subscriptionId: string, resourceGroup: string, provider?: string, ...path: string[]): string {
  const group = `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`;
  return provider === undefined ? group : `${group}/providers/${provider}/${path.join('/')}`;
}

/** Parses an ARM resource ID; throws on anything else. */
export function parseResourceId(id: string): ParsedResourceId {
  const parts = id.split('/').filter((part) => part !== '');
  if (parts.length < 4 || parts[0]?.toLowerCase() !== 'subscriptions' || parts[2]?.toLowerCase() !== 'resourcegroups') {
    throw new Error(`"${id}" is not an Azure resource ID`);
  }
  const subscriptionId = parts[1] as string;
  const resourceGroup = parts[3] as string;
  if (parts.length === 4) return { subscriptionId, resourceGroup, type: '', names: [] };
  if (parts[4]?.toLowerCase() !== 'providers' || parts.length < 8) throw new Error(`"${id}" is not an Azure resource ID`);
  const rest = parts.slice(6);
  const types = [parts[5] as string];
  const names: string[] = [];
  for (let index = 0; index < rest.length; index += 2) {
    types.push(rest[index] as string);
    names.push(rest[index + 1] ?? '');
  }
  return { subscriptionId, resourceGroup, type: types.join('/'), names };
}

/** The last name of a resource ID. */
export function resourceName(id: string): string {
  return parseResourceId(id).names.at(-1) ?? parseResourceId(id).resourceGroup;
}
