import { InvalidConfigError } from './errors/invalid-config-error.ts';

const maxLength = 63;
const label = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/**
 * Why `name` is not a valid machine name, or undefined when it is.
 * The rule is what every supported provider accepts: an RFC 1123 label of lowercase letters,
 * digits and hyphens, 1-63 characters, starting and ending with a letter or digit.
 */
export function machineNameProblem(name: string): string | undefined {
  if (name === '') return 'a machine name is required';
  if (name.length > maxLength) return `"${name}" is ${name.length} characters long; use at most ${maxLength}`;
  if (label.test(name)) return undefined;
  if (label.test(name.toLowerCase())) return `"${name}" has upper-case letters; use "${name.toLowerCase()}"`;
  if (name.startsWith('-') || name.endsWith('-')) return `"${name}" must start and end with a letter or digit`;
  return `"${name}" may contain only a-z, 0-9 and "-" (an RFC 1123 label)`;
}

/** Throws {@link InvalidConfigError} (input `machine name`) when `name` is not a valid machine name. */
export function assertValidMachineName(name: string): void {
  const problem = machineNameProblem(name);
  if (problem !== undefined) throw new InvalidConfigError([{ flag: 'machine name', kind: 'input', message: problem }]);
}
