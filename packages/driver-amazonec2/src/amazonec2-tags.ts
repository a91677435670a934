import type { ResourceType, Tag, TagSpecification } from '@aws-sdk/client-ec2';
import { parseTags } from './amazonec2-flags.ts';

/** The tag every resource a machine makes carries, so leaked resources can be found. */
export const machineNameTag = 'docker-machine-name';
/** Marks resources made by this tool. */
export const managedByTag = 'managed-by';
/** The value of {@link managedByTag} on what this tool makes. */
export const managedByValue = 'machine';

/** The tags of a machine's resources: Name, the machine tag, the owner tag and the user's `--amazonec2-tags`. */
export function machineTags(machineName: string, userTags: string | undefined): Tag[] {
  const tags: Tag[] = [
    { Key: 'Name', Value: machineName },
    { Key: machineNameTag, Value: machineName },
    { Key: managedByTag, Value: managedByValue },
  ];
  for (const tag of parseTags(userTags)) {
    const existing = tags.findIndex((t) => t.Key === tag.Key);
    if (existing >= 0) tags[existing] = tag;
    else tags.push(tag);
  }
  return tags;
}

/** Tag specifications for the given resource types. */
export function tagSpecifications(types: readonly ResourceType[], tags: Tag[]): TagSpecification[] {
  return types.map((ResourceType) => ({ ResourceType, Tags: tags }));
}
