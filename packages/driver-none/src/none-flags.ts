import { type ConfigOf, defineFlags } from '@machine/driver-core';

/** The none driver's one flag, as the reference names it (no driver prefix, no env var). */
export const noneFlags = defineFlags([
  {
    name: 'url',
    key: 'url',
    type: 'string',
    required: true,
    description: 'URL of host when no driver is selected, e.g. tcp://10.0.0.5:2376',
    validate: (value: string) => urlProblem(value),
  },
] as const);

/** The none driver's parsed config. */
export type NoneDriverConfig = ConfigOf<typeof noneFlags>;

/** What is wrong with a `--url` value, or undefined when it names a host. */
export function urlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return `"${value}" is not a URL; expected e.g. tcp://10.0.0.5:2376`;
  }
  if (url.hostname === '') return `"${value}" names no host; expected e.g. tcp://10.0.0.5:2376`;
  return undefined;
}
