import { type ConfigOf, defineFlags } from '@machine/driver-core';

/** The generic driver's flags: the reference's names, env vars and defaults. */
export const genericFlags = defineFlags([
  {
    name: 'generic-ip-address',
    key: 'ipAddress',
    type: 'string',
    required: true,
    envVar: 'GENERIC_IP_ADDRESS',
    description: 'IP address or host name of the machine',
    validate: (value: string) => (/[\s/@]/.test(value.trim()) ? `"${value}" is not an IP address or host name` : undefined),
  },
  { name: 'generic-ssh-user', key: 'sshUser', type: 'string', default: 'root', envVar: 'GENERIC_SSH_USER', description: 'SSH user' },
  {
    name: 'generic-ssh-key',
    key: 'sshKey',
    type: 'string',
    envVar: 'GENERIC_SSH_KEY',
    description: 'SSH private key path (default: ~/.ssh/id_ed25519 or ~/.ssh/id_rsa, else the ssh-agent at SSH_AUTH_SOCK)',
  },
  { name: 'generic-ssh-port', key: 'sshPort', type: 'int', default: 22, min: 1, max: 65535, envVar: 'GENERIC_SSH_PORT', description: 'SSH port' },
  {
    name: 'generic-engine-port',
    key: 'enginePort',
    type: 'int',
    default: 2376,
    min: 1,
    max: 65535,
    envVar: 'GENERIC_ENGINE_PORT',
    description: 'Docker engine port',
  },
] as const);

/** The generic driver's parsed config. */
export type GenericDriverConfig = ConfigOf<typeof genericFlags>;
