import { AzureApiError } from './azure-errors.ts';

const target = 'linuxConfiguration.ssh.publicKeys.keyData';

/**
 * Azure's check of `osProfile.linuxConfiguration.ssh.publicKeys[].keyData`: RSA of at least 2048
 * bits, and ed25519 (since Dec 2023, unless the region is `rsaOnly`); ECDSA and anything else is
 * 400 `InvalidParameter` naming the field.
 */
export function checkSshKeys(keys: readonly string[], rsaOnly: boolean): void {
  for (const key of keys) {
    const [type = '', blob = ''] = key.trim().split(/\s+/);
    const accepted = type === 'ssh-rsa' ? rsaBits(blob) >= 2048 : type === 'ssh-ed25519' && !rsaOnly;
    if (!accepted) {
      const why = type === 'ssh-rsa' ? 'RSA keys must be at least 2048 bits' : rsaOnly ? 'only ssh-rsa keys are supported' : `${type || 'this key type'} is not supported`;
      throw new AzureApiError(400, 'InvalidParameter', `The value of parameter ${target} is invalid: ${why}.`, { target });
    }
  }
}

/** The modulus length of an `ssh-rsa` public key blob (base64), 0 when it does not parse. */
function rsaBits(blob: string): number {
  const bytes = Buffer.from(blob, 'base64');
  let offset = 0;
  const field = (): Buffer | undefined => {
    if (offset + 4 > bytes.length) return undefined;
    const length = bytes.readUInt32BE(offset);
    const value = bytes.subarray(offset + 4, offset + 4 + length);
    offset += 4 + length;
    return value.length === length ? value : undefined;
  };
  const name = field()?.toString('latin1');
  field(); // public exponent
  const modulus = field();
  if (name !== 'ssh-rsa' || modulus === undefined) return 0;
  const significant = modulus[0] === 0 ? modulus.subarray(1) : modulus;
  return significant.length * 8;
}
