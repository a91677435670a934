import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AuthError } from '@machine/driver-core';

/** Where a token was found, for messages (never the token itself). */
export interface ResolvedToken {
  readonly token: string;
  readonly source: string;
}

/** Inputs to {@link resolveAccessToken}; defaults read the real environment and home folder. */
export interface TokenSources {
  /** `--digitalocean-access-token` or `DIGITALOCEAN_ACCESS_TOKEN` (already merged by parseFlags). */
  readonly flagValue?: string | undefined;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** doctl's config file; default: `$XDG_CONFIG_HOME/doctl/config.yaml` (macOS: Application Support). */
  readonly doctlConfigPath?: string;
}

/** The path of doctl's config file, as doctl computes it. */
export function doctlConfigPath(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'doctl', 'config.yaml');
  const base = env.XDG_CONFIG_HOME !== undefined && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'doctl', 'config.yaml');
}

/**
 * DigitalOcean's standard credential chain: the flag (or DIGITALOCEAN_ACCESS_TOKEN), then
 * DIGITALOCEAN_TOKEN (Terraform, doctl), then the current context of `doctl auth init`.
 * Throws one AuthError naming every place it looked.
 */
export async function resolveAccessToken(sources: TokenSources = {}): Promise<ResolvedToken> {
  const env = sources.env ?? process.env;
  const flag = sources.flagValue?.trim();
  if (flag !== undefined && flag !== '') return { token: flag, source: '--digitalocean-access-token / DIGITALOCEAN_ACCESS_TOKEN' };
  const fromEnv = env.DIGITALOCEAN_TOKEN?.trim();
  if (fromEnv !== undefined && fromEnv !== '') return { token: fromEnv, source: 'DIGITALOCEAN_TOKEN' };
  const path = sources.doctlConfigPath ?? doctlConfigPath(env);
  const fromDoctl = await readDoctlToken(path);
  if (fromDoctl !== undefined) return { token: fromDoctl, source: `doctl config ${path}` };
  throw new AuthError(
    `no DigitalOcean access token: looked at --digitalocean-access-token, DIGITALOCEAN_ACCESS_TOKEN, DIGITALOCEAN_TOKEN and the doctl login in ${path}`,
    { operation: 'config', hint: 'create a token at https://cloud.digitalocean.com/account/api/tokens and set DIGITALOCEAN_ACCESS_TOKEN, or run `doctl auth init`' },
  );
}

/**
 * Reads the token of doctl's current context. doctl writes `access-token: …` for the default
 * context and `auth-contexts: {name: token}` plus `context: name` for others. A small line parser
 * is enough for the file doctl writes; a missing or unreadable file counts as no token.
 */
export async function readDoctlToken(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const unquote = (value: string) => value.trim().replace(/^(["'])(.*)\1$/, '$2');
  let defaultToken: string | undefined;
  let context = 'default';
  const contexts = new Map<string, string>();
  let inContexts = false;
  for (const line of text.split(/\r?\n/)) {
    if (/^\s*(#|$)/.test(line)) continue;
    const top = /^([A-Za-z0-9_-]+):\s*(.*)$/.exec(line);
    if (top !== null) {
      const [, key, value = ''] = top;
      inContexts = key === 'auth-contexts' && value.trim() === '';
      if (key === 'access-token') defaultToken = unquote(value);
      if (key === 'context') context = unquote(value);
      continue;
    }
    const nested = /^\s+([^:\s]+):\s*(.+)$/.exec(line);
    if (inContexts && nested !== null) contexts.set(unquote(nested[1] ?? ''), unquote(nested[2] ?? ''));
  }
  const token = context === 'default' ? (defaultToken ?? contexts.get('default')) : contexts.get(context);
  return token === undefined || token === '' ? undefined : token;
}
