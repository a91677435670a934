import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidConfigError } from '@machine/driver-core';
import type { LoadedSSHKey } from '@machine/driver-core/keys';

/** How the driver logs in: a private key file, or the keys of a running ssh-agent. */
export type SSHCredentials = { readonly kind: 'key'; readonly key: LoadedSSHKey } | { readonly kind: 'agent'; readonly socket: string };

/** Where credentials are looked for (injectable for tests). */
export interface CredentialSources {
  /** Read for `SSH_AUTH_SOCK`. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The user's home folder, for `~/.ssh/id_ed25519`, `~/.ssh/id_rsa` and `~/` in paths. */
  readonly homeDir: string;
}

const keyFlag = 'generic-ssh-key';

/** The default key files, in the order they are tried. */
export const defaultKeyNames = ['id_ed25519', 'id_rsa'] as const;

/**
 * Picks the login credentials: the `--generic-ssh-key` file when given; else the first usable of
 * `~/.ssh/id_ed25519` and `~/.ssh/id_rsa`; else the ssh-agent at `SSH_AUTH_SOCK`. A key protected by
 * a passphrase is left to the agent when one runs. Throws InvalidConfigError naming the flag.
 */
export async function resolveSSHCredentials(sshKey: string | undefined, sources: CredentialSources): Promise<SSHCredentials> {
  const { loadSSHPrivateKey } = await import('@machine/driver-core/keys');
  const socket = sources.env.SSH_AUTH_SOCK;
  const agent: SSHCredentials | undefined = socket !== undefined && socket !== '' ? { kind: 'agent', socket } : undefined;
  if (sshKey !== undefined && sshKey.trim() !== '') {
    const path = expandHome(sshKey.trim(), sources.homeDir);
    try {
      return { kind: 'key', key: await loadSSHPrivateKey(path, keyFlag) };
    } catch (error) {
      if (agent !== undefined && isPassphraseProblem(error)) return agent;
      throw error;
    }
  }
  let firstProblem: unknown;
  for (const name of defaultKeyNames) {
    const path = join(sources.homeDir, '.ssh', name);
    if (!(await exists(path))) continue;
    try {
      return { kind: 'key', key: await loadSSHPrivateKey(path, keyFlag) };
    } catch (error) {
      firstProblem ??= error;
    }
  }
  if (agent !== undefined) return agent;
  if (firstProblem !== undefined) throw firstProblem;
  throw new InvalidConfigError(
    [
      {
        flag: keyFlag,
        message: `no SSH key found: pass --${keyFlag} (or set GENERIC_SSH_KEY), create ~/.ssh/${defaultKeyNames[0]}, or start an ssh-agent (SSH_AUTH_SOCK)`,
      },
    ],
    { operation: 'config' },
  );
}

/** `~/x` → `<home>/x`; other paths unchanged. */
export function expandHome(path: string, homeDir: string): string {
  if (path === '~') return homeDir;
  return path.startsWith('~/') ? join(homeDir, path.slice(2)) : path;
}

function isPassphraseProblem(error: unknown): boolean {
  // loadSSHPrivateKey reports a passphrase-protected key only through its message.
  return error instanceof InvalidConfigError && error.issues.some((issue) => /passphrase/i.test(issue.message));
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
