import type { ComputeMetadata } from './google-clients.ts';

/** One `ssh-keys` metadata line: `user:ssh-ed25519 AAAA… comment`. */
export function sshKeysLine(username: string, publicKey: string): string {
  return `${username}:${publicKey.trim()}`;
}

/**
 * The metadata items with `line` added to `ssh-keys` (kept once), every other key and every
 * other line left as they were. The legacy `sshKeys` key is left alone.
 */
export function withSSHKey(metadata: ComputeMetadata | null | undefined, line: string): { key: string; value: string }[] {
  const items = itemsOf(metadata);
  const existing = items.find((item) => item.key === 'ssh-keys');
  const lines = splitLines(existing?.value ?? '').filter((entry) => entry !== line);
  const value = [...lines, line].join('\n');
  return existing === undefined ? [...items, { key: 'ssh-keys', value }] : items.map((item) => (item.key === 'ssh-keys' ? { key: item.key, value } : item));
}

/** The metadata items with `line` taken out of `ssh-keys` (the key is dropped when it becomes empty). */
export function withoutSSHKey(metadata: ComputeMetadata | null | undefined, line: string): { key: string; value: string }[] {
  const items = itemsOf(metadata);
  return items.flatMap((item) => {
    if (item.key !== 'ssh-keys') return [item];
    const lines = splitLines(item.value).filter((entry) => entry !== line);
    return lines.length === 0 ? [] : [{ key: item.key, value: lines.join('\n') }];
  });
}

/** True when `ssh-keys` holds `line`. */
export function hasSSHKey(metadata: ComputeMetadata | null | undefined, line: string): boolean {
  return splitLines(itemsOf(metadata).find((item) => item.key === 'ssh-keys')?.value ?? '').includes(line);
}

function itemsOf(metadata: ComputeMetadata | null | undefined): { key: string; value: string }[] {
  return (metadata?.items ?? []).map((item) => ({ key: item.key ?? '', value: item.value ?? '' }));
}

function splitLines(value: string): string[] {
  return value
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
}
