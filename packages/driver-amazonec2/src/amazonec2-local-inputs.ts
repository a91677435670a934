import { type BootConfig, combineUserData, type FirewallRule, InvalidConfigError, machineFirewallRules } from '@machine/driver-core';
import { readFile } from 'node:fs/promises';
import { type AmazonEC2Config, crossFlagProblems } from './amazonec2-flags.ts';

/** EC2's user-data limit: 16 KiB of raw text (before base64). */
export const userDataLimitBytes = 16 * 1024;

/** Checks the flags together (zone of another region, conflicting options) before any API call. */
export function checkFlags(config: AmazonEC2Config, machine: string): FirewallRule[] {
  const problems = crossFlagProblems(config);
  if (/^[a-z]{2}-/.test(config.zone) && !config.zone.startsWith(config.region)) {
    problems.push({ flag: 'amazonec2-zone', message: `${config.zone} is not a zone of --amazonec2-region ${config.region}` });
  }
  if (problems.length > 0) throw new InvalidConfigError(problems, { machine, operation: 'config' });
  return firewallRules(config);
}

/** The machine's inbound rules: SSH, the engine port and --amazonec2-open-port, from --amazonec2-allowed-cidr. */
export function firewallRules(config: AmazonEC2Config): FirewallRule[] {
  return machineFirewallRules({
    sshPort: config.sshPort,
    openPorts: config.openPorts,
    allowedCidrs: config.allowedCidrs,
    openPortFlag: 'amazonec2-open-port',
    allowedCidrFlag: 'amazonec2-allowed-cidr',
  });
}

/**
 * The user data to launch with, base64: the host's boot user data and --amazonec2-userdata
 * combined (the file's bytes unchanged when it is alone, so gzipped user data still works).
 */
export async function launchUserData(config: AmazonEC2Config, boot?: BootConfig): Promise<string | undefined> {
  const path = config.userdata;
  let own: Buffer | undefined;
  if (path !== undefined && path !== '') {
    try {
      own = await readFile(path);
    } catch (error) {
      throw new InvalidConfigError([{ flag: 'amazonec2-userdata', message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` }]);
    }
  }
  const bytes = boot?.userData === undefined ? own : Buffer.from(combineUserData([boot.userData, own?.toString('utf8')]) ?? '', 'utf8');
  if (bytes === undefined || bytes.length === 0) return undefined;
  // EC2 limits user data to 16 KiB raw, before base64.
  if (bytes.length > userDataLimitBytes) {
    throw new InvalidConfigError([
      boot?.userData === undefined
        ? { flag: 'amazonec2-userdata', message: `${path} is ${bytes.length} bytes; EC2 takes at most 16 KiB of user data` }
        : {
            flag: 'user data',
            kind: 'input',
            message: `${own === undefined ? 'the provisioning cloud-config' : `the provisioning cloud-config plus ${path}`} is ${bytes.length} bytes; EC2 takes at most 16 KiB of user data`,
          },
    ]);
  }
  return bytes.toString('base64');
}

/** The key of --amazonec2-ssh-keypath (checked, typed errors). */
export async function loadUserKey(config: AmazonEC2Config) {
  const { loadSSHPrivateKey } = await import('@machine/driver-core/keys');
  return loadSSHPrivateKey(config.sshKeypath ?? '', 'amazonec2-ssh-keypath');
}

/**
 * Fails early when --amazonec2-ssh-keypath is not the private half of --amazonec2-keypair-name
 * (SSH would otherwise time out much later). Only fingerprints computable from a public key are
 * compared: MD5 (imported RSA) and SHA-256 (ED25519); AWS-generated RSA keys use a SHA-1 of the
 * private key and are skipped.
 */
export async function checkKeyMatches(config: AmazonEC2Config, fingerprint: string | undefined): Promise<void> {
  if (fingerprint === undefined || config.sshKeypath === undefined) return;
  const key = await loadUserKey(config);
  const md5 = /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/i.test(fingerprint);
  const sha256 = /^[A-Za-z0-9+/]{43}=?$/.test(fingerprint);
  if (!md5 && !sha256) return;
  const matches = md5
    ? key.md5Fingerprint.toLowerCase() === fingerprint.toLowerCase()
    : key.sha256Fingerprint.replace(/^SHA256:/, '').replace(/=+$/, '') === fingerprint.replace(/=+$/, '');
  if (!matches) {
    throw new InvalidConfigError([
      { flag: 'amazonec2-ssh-keypath', message: `${config.sshKeypath} is not the private key of key pair ${config.keypairName} (fingerprint ${fingerprint})` },
    ]);
  }
}
