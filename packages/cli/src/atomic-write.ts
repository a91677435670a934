import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';

/**
 * Writes `text` to `path` through a temp file beside it (0600) and a rename, so a reader sees the
 * old file or the new one, never half of one. `sync: false` skips the fsync, for files whose loss
 * to a power cut costs nothing (a rate bucket starts full again).
 */
export async function atomicWrite(path: string, text: string, options: { sync?: boolean } = {}): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(text, 'utf8');
    if (options.sync !== false) await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
}
