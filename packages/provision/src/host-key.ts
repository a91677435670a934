import { generateSSHKeyPair } from '@machine/driver-core/keys';

/**
 * The machine's SSH host key, made on the host and handed to cloud-init (`ssh_keys`), so the very
 * first SSH connection can verify it.
 */

/** An ed25519 SSH host key in OpenSSH formats. */
export interface MachineHostKey {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` (openssh-key-v1, unencrypted). Never log it. */
  privateKey: string;
  /** `ssh-ed25519 AAAA… comment`. */
  publicKey: string;
  /** `SHA256:…`, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

/** Generates an ed25519 host key with Node's crypto (through driver-core's key encoder). */
export function generateHostKey(comment = 'machine'): MachineHostKey {
  const pair = generateSSHKeyPair({ type: 'ed25519', comment });
  return { privateKey: pair.privateKey, publicKey: pair.publicKey, fingerprint: pair.sha256Fingerprint };
}
