import { readFile } from 'node:fs/promises';
import { type BootConfig, combineUserData, type FirewallRule, InvalidConfigError, machineFirewallRules } from '@machine/driver-core';
import { type GoogleConfig, imagePath } from './google-flags.ts';

/** Compute Engine's limit on one metadata value (the `user-data` item): 256 KiB. */
export const userDataLimitBytes = 256 * 1024;

const instanceName = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Why `name` cannot be a Compute Engine instance name, or undefined. */
export function googleNameProblem(name: string): string | undefined {
  if (instanceName.test(name)) return undefined;
  if (name.length > 63) return `"${name}" is ${name.length} characters long; Compute Engine allows at most 63`;
  if (!/^[a-z]/.test(name)) return `"${name}" must start with a lower-case letter for Compute Engine (names match [a-z]([-a-z0-9]*[a-z0-9])?)`;
  return `"${name}" is not a Compute Engine name: use a-z, 0-9 and "-", starting with a letter and not ending with "-"`;
}

/**
 * Compute Engine's guest agent makes new SSH host keys on an instance's first boot
 * (`[InstanceSetup] set_host_keys`), which would replace the host key the host pinned through
 * cloud-init. This part switches that off; cloud-init writes it (write_files) before its ssh module
 * installs the pinned key, in the same boot stage.
 */
export const keepPinnedHostKeyCloudConfig = [
  '#cloud-config',
  'write_files:',
  '  - path: /etc/default/instance_configs.cfg',
  "    permissions: '0644'",
  '    content: |',
  '      [InstanceSetup]',
  '      set_host_keys = false',
  '',
].join('\n');

/**
 * The `user-data` metadata value: the host's boot user data and --google-userdata combined.
 * Checked before any API call.
 */
export async function googleUserData(config: GoogleConfig, boot: BootConfig | undefined): Promise<string | undefined> {
  const path = config.userdata;
  let own: string | undefined;
  if (path !== undefined && path !== '') {
    try {
      own = await readFile(path, 'utf8');
    } catch (error) {
      throw new InvalidConfigError([{ flag: 'google-userdata', message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` }]);
    }
  }
  const pinned = boot?.hostKeyFingerprint === undefined ? undefined : keepPinnedHostKeyCloudConfig;
  const userData = combineUserData([boot?.userData, pinned, own]);
  if (userData === undefined) return undefined;
  if (config.useExisting) {
    // cloud-init reads user data on an instance's first boot only: an adopted instance would never run it.
    throw new InvalidConfigError([
      {
        flag: 'google-use-existing',
        message: `an existing instance does not run new user data (${boot?.userData === undefined ? '--google-userdata' : 'the provisioning cloud-config'}); create a new instance, or pass --no-provision${own === undefined ? '' : ' and drop --google-userdata'}`,
      },
    ]);
  }
  const size = Buffer.byteLength(userData);
  if (size > userDataLimitBytes) {
    throw new InvalidConfigError([
      boot?.userData === undefined
        ? { flag: 'google-userdata', message: `${path} is ${size} bytes, over Compute Engine's 256 KiB limit for a metadata value` }
        : {
            flag: 'user data',
            kind: 'input',
            message: `${own === undefined ? 'the provisioning cloud-config' : `the provisioning cloud-config plus ${path}`} is ${size} bytes, over Compute Engine's 256 KiB limit for a metadata value`,
          },
    ]);
  }
  return userData;
}


/** Checks the flags and the name together before any API call; returns the machine's inbound rules. */
export function validateGoogleConfig(config: GoogleConfig, machineName: string): FirewallRule[] {
  const issues: { flag: string; kind?: 'input'; message: string }[] = [];
  const nameProblem = googleNameProblem(machineName);
  if (nameProblem !== undefined) issues.push({ flag: 'machine name', kind: 'input', message: nameProblem });
  if (config.preemptible && config.spot) {
    issues.push({ flag: 'google-spot', message: 'use either --google-preemptible or --google-spot, not both' });
  }
  if (config.useInternalIpOnly && config.address !== undefined) {
    issues.push({ flag: 'google-address', message: 'a static external address makes no sense with --google-use-internal-ip-only' });
  }
  if (imagePath(config.machineImage) === undefined) {
    issues.push({ flag: 'google-machine-image', message: `"${config.machineImage}" is not an image path` });
  }
  if (issues.length > 0) throw new InvalidConfigError(issues, { machine: machineName, operation: 'config' });
  return machineFirewallRules({
    sshPort: config.sshPort,
    openPorts: config.openPorts,
    allowedCidrs: config.allowedCidrs,
    openPortFlag: 'google-open-port',
    allowedCidrFlag: 'google-allowed-cidr',
  });
}

