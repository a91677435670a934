import type { SSHKeyPair } from '../keys.ts';

/**
 * A `#cloud-config` that installs `hostKey` as the machine's ed25519 SSH host key (cloud-init's
 * `ssh_keys`), as a host's provisioning does: drivers' tests hand it over as `boot.userData` and pin
 * `hostKey.sha256Fingerprint`.
 */
export function hostKeyCloudConfig(hostKey: SSHKeyPair): string {
  const privateKey = hostKey.privateKey
    .trimEnd()
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
  return `#cloud-config\nssh_deletekeys: true\nssh_keys:\n  ed25519_private: |\n${privateKey}\n  ed25519_public: ${hostKey.publicKey}\n`;
}
