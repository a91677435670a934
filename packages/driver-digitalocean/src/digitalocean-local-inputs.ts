import { access, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type BootConfig, combineUserData, type FirewallRule, InvalidConfigError, machineFirewallRules } from '@machine/driver-core';
import type { LoadedSSHKey } from '@machine/driver-core/keys';
import type { DigitalOceanConfig } from './digitalocean-flags.ts';

/** DigitalOcean's user-data limit (64 KiB, the raw text). */
export const userDataLimitBytes = 64 * 1024;

/** Inputs checked on the local machine before any API call. */
export interface LocalInputs {
  userData: string | undefined;
  /** The user's key when --digitalocean-ssh-key-fingerprint is set. */
  userKey: LoadedSSHKey | undefined;
  rules: FirewallRule[];
}

/** Reads and checks everything create needs from this computer, before any API call. */
export async function resolveLocalInputs(config: DigitalOceanConfig, boot?: BootConfig): Promise<LocalInputs> {
  const { userdata, sshKeyFingerprint, sshKeyPath } = config;
  let ownUserData: string | undefined;
  if (userdata !== undefined && userdata !== '') {
    try {
      ownUserData = await readFile(userdata, 'utf8');
    } catch (error) {
      throw new InvalidConfigError([
        { flag: 'digitalocean-userdata', message: `cannot read ${userdata}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` },
      ]);
    }
  }
  const userData = combineUserData([boot?.userData, ownUserData]);
  const size = userData === undefined ? 0 : Buffer.byteLength(userData);
  if (size > userDataLimitBytes) {
    throw new InvalidConfigError([
      boot?.userData === undefined
        ? { flag: 'digitalocean-userdata', message: `${userdata} is ${size} bytes, over DigitalOcean's 64 KiB user-data limit` }
        : {
            flag: 'user data',
            kind: 'input',
            message: `${ownUserData === undefined ? 'the provisioning cloud-config' : `the provisioning cloud-config plus ${userdata}`} is ${size} bytes, over DigitalOcean's 64 KiB user-data limit`,
          },
    ]);
  }
  if (sshKeyPath !== undefined && sshKeyFingerprint === undefined) {
    throw new InvalidConfigError([
      {
        flag: 'digitalocean-ssh-key-path',
        message: 'needs --digitalocean-ssh-key-fingerprint (the key already in your DigitalOcean account); without both, machine makes its own key',
      },
    ]);
  }
  const userKey = sshKeyFingerprint === undefined ? undefined : await loadUserKey(sshKeyFingerprint, sshKeyPath);
  const rules = machineFirewallRules({
    sshPort: config.sshPort,
    openPorts: config.openPorts,
    allowedCidrs: config.allowedCidrs,
    openPortFlag: 'digitalocean-open-port',
    allowedCidrFlag: 'digitalocean-allowed-cidr',
  });
  return { userData, userKey, rules };
}

/** Loads the private key of an existing account key and checks it is that key (by MD5 fingerprint). */
async function loadUserKey(fingerprint: string, path: string | undefined): Promise<LoadedSSHKey> {
  const { loadSSHPrivateKey } = await import('@machine/driver-core/keys');
  const byId = /^\d+$/.test(fingerprint);
  if (path !== undefined) {
    const key = await loadSSHPrivateKey(path, 'digitalocean-ssh-key-path');
    if (!byId && key.md5Fingerprint !== fingerprint.toLowerCase()) {
      throw new InvalidConfigError([
        { flag: 'digitalocean-ssh-key-path', message: `${path} has fingerprint ${key.md5Fingerprint}, not ${fingerprint}` },
      ]);
    }
    return key;
  }
  const candidates = ['id_ed25519', 'id_rsa', 'id_ecdsa'].map((name) => join(homedir(), '.ssh', name));
  for (const candidate of candidates) {
    const exists = await access(candidate).then(
      () => true,
      () => false,
    );
    if (!exists) continue;
    const key = await loadSSHPrivateKey(candidate, 'digitalocean-ssh-key-path').catch(() => undefined);
    if (key !== undefined && (byId || key.md5Fingerprint === fingerprint.toLowerCase())) return key;
  }
  throw new InvalidConfigError([
    {
      flag: 'digitalocean-ssh-key-path',
      message: `no private key for ${fingerprint} in ${candidates.join(', ')}; pass --digitalocean-ssh-key-path`,
    },
  ]);
}
