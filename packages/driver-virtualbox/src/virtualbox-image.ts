import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { InvalidConfigError, type ProgressEvent, ProviderError, throwIfAborted } from '@machine/driver-core';

/** Options for {@link resolveImage}. */
export interface ImageOptions {
  imageUrl: string;
  imagePath?: string | undefined;
  imageChecksum?: string | undefined;
  /** Folder of downloaded images (`<storage>/cache/virtualbox`). */
  cacheDir: string;
  machine?: string;
  signal?: AbortSignal | undefined;
  onProgress?: ((event: ProgressEvent) => void) | undefined;
}

/** The image create clones the VM's disk from. */
export interface ResolvedImage {
  path: string;
  /** Where it came from: the user's file, the cache, or a fresh download. */
  source: 'path' | 'cache' | 'download';
  /** The verified SHA-256, when one was checked. */
  sha256?: string;
}

function normalizeChecksum(value: string): string {
  return value.replace(/^sha256:/i, '').toLowerCase();
}

/** SHA-256 of a file, streamed. */
export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, signal === undefined ? {} : { signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Finds the digest of `file` in a SHA256SUMS text (`<hex> *<name>` or `<hex>  <name>` lines). */
export function checksumFromSums(sums: string, file: string): string | undefined {
  for (const line of sums.split(/\r?\n/)) {
    const match = /^([0-9a-fA-F]{64})\s+\*?(.+)$/.exec(line.trim());
    if (match !== null && (match[2] ?? '').trim() === file) return (match[1] ?? '').toLowerCase();
  }
  return undefined;
}

/** The file name an image URL is cached under. */
export function imageFileName(url: string): string {
  const name = basename(new URL(url).pathname);
  return name.replace(/[^A-Za-z0-9._-]/g, '_') || 'image';
}

/**
 * Finds the cloud image: `--virtualbox-image-path` as is (checked against
 * `--virtualbox-image-checksum` when given), else `--virtualbox-image-url` from the cache or
 * downloaded into it. Downloads are verified against `--virtualbox-image-checksum` or the
 * `SHA256SUMS` file next to the URL before they are kept; a mismatch keeps nothing.
 */
export async function resolveImage(options: ImageOptions): Promise<ResolvedImage> {
  const where = { ...(options.machine === undefined ? {} : { machine: options.machine }), operation: 'create' };
  const expectedFlag = options.imageChecksum === undefined || options.imageChecksum === '' ? undefined : normalizeChecksum(options.imageChecksum);
  if (options.imagePath !== undefined && options.imagePath !== '') {
    const info = await stat(options.imagePath).catch(() => undefined);
    if (info === undefined || !info.isFile()) {
      throw new InvalidConfigError([{ flag: 'virtualbox-image-path', message: `${options.imagePath} is not a file` }], where);
    }
    if (expectedFlag === undefined) return { path: options.imagePath, source: 'path' };
    const actual = await sha256File(options.imagePath, options.signal);
    if (actual !== expectedFlag) {
      throw new InvalidConfigError(
        [{ flag: 'virtualbox-image-checksum', message: `${options.imagePath} has SHA-256 ${actual}, not ${expectedFlag}` }],
        where,
      );
    }
    return { path: options.imagePath, source: 'path', sha256: actual };
  }

  const url = options.imageUrl;
  const file = imageFileName(url);
  const target = join(options.cacheDir, file);
  const sidecar = `${target}.sha256`;
  const cachedDigest = await readFile(sidecar, 'utf8')
    .then((text) => text.trim())
    .catch(() => undefined);
  const cachedExists = cachedDigest !== undefined && (await stat(target).catch(() => undefined))?.isFile() === true;

  let expected = expectedFlag;
  if (expected === undefined) {
    const sumsUrl = new URL('SHA256SUMS', url).toString();
    let sums: string;
    try {
      const response = await fetch(sumsUrl, options.signal === undefined ? {} : { signal: options.signal });
      if (response.status === 404) {
        throw new InvalidConfigError(
          [{ flag: 'virtualbox-image-checksum', message: `there is no SHA256SUMS next to ${url} (404); pass the image's SHA-256` }],
          where,
        );
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      sums = await response.text();
    } catch (error) {
      if (InvalidConfigError.isInstance(error)) throw error;
      throwIfAborted(options.signal, where);
      if (cachedExists && (await cacheIntact(target, sidecar, cachedDigest, options.signal))) {
        options.onProgress?.({ step: 'image', phase: 'info', message: `could not read ${sumsUrl} (${(error as Error).message}); using the cached ${file}` });
        return { path: target, source: 'cache', sha256: cachedDigest };
      }
      throw new ProviderError(`could not download ${sumsUrl}: ${(error as Error).message}`, {
        ...where,
        cause: error,
        retryable: true,
        hint: 'check the network, or pass --virtualbox-image-path with a local image',
      });
    }
    expected = checksumFromSums(sums, file);
    if (expected === undefined) {
      throw new InvalidConfigError([{ flag: 'virtualbox-image-checksum', message: `${sumsUrl} lists no checksum for ${file}; pass the image's SHA-256` }], where);
    }
  }
  if (cachedExists && cachedDigest === expected && (await cacheIntact(target, sidecar, expected, options.signal))) {
    return { path: target, source: 'cache', sha256: expected };
  }

  await download(url, target, expected, options, where);
  await writeFile(sidecar, `${expected}\n`);
  return { path: target, source: 'download', sha256: expected };
}

/**
 * Hashes the cached image before each use: the sidecar only says what was verified when it was
 * downloaded, not that the file is still that (a disk error, a copy over it, an edit by hand). A
 * file that no longer matches is deleted with its sidecar, so it is downloaded again.
 */
async function cacheIntact(target: string, sidecar: string, digest: string, signal: AbortSignal | undefined): Promise<boolean> {
  if ((await sha256File(target, signal)) === digest) return true;
  await unlink(target).catch(() => {});
  await unlink(sidecar).catch(() => {});
  return false;
}

/** Partial downloads no process has written to for this long were left by a killed one. */
const stalePartialMs = 60 * 60 * 1000;

/** Deletes `<image>.<random>.part` files of killed downloads (a live download keeps touching its own). */
async function removeStalePartials(cacheDir: string, file: string): Promise<void> {
  const names = await readdir(cacheDir).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(`${file}.`) || !name.endsWith('.part')) continue;
    const path = join(cacheDir, name);
    const info = await stat(path).catch(() => undefined);
    if (info !== undefined && Date.now() - info.mtimeMs > stalePartialMs) await unlink(path).catch(() => {});
  }
}

async function download(url: string, target: string, expected: string, options: ImageOptions, where: { machine?: string; operation: string }): Promise<void> {
  await mkdir(options.cacheDir, { recursive: true });
  await removeStalePartials(options.cacheDir, basename(target));
  const partial = `${target}.${randomBytes(4).toString('hex')}.part`;
  options.onProgress?.({ step: 'download-image', phase: 'start', message: `downloading ${url}` });
  const handle = await open(partial, 'w', 0o644);
  let kept = false;
  try {
    let response: Response;
    try {
      response = await fetch(url, options.signal === undefined ? {} : { signal: options.signal });
    } catch (error) {
      throwIfAborted(options.signal, where);
      throw new ProviderError(`could not download ${url}: ${(error as Error).message}`, { ...where, cause: error, retryable: true });
    }
    if (!response.ok || response.body === null) {
      throw new ProviderError(`could not download ${url}: HTTP ${response.status}`, {
        ...where,
        statusCode: response.status,
        ...(response.status === 404 ? { hint: 'check --virtualbox-image-url' } : {}),
      });
    }
    const hash = createHash('sha256');
    const total = Number(response.headers.get('content-length') ?? Number.NaN);
    let bytes = 0;
    let reported = 0;
    for await (const chunk of response.body) {
      const buffer = Buffer.from(chunk);
      hash.update(buffer);
      bytes += buffer.length;
      await handle.write(buffer);
      const tenth = Number.isFinite(total) && total > 0 ? Math.floor((bytes / total) * 10) : 0;
      if (tenth > reported && tenth < 10) {
        reported = tenth;
        options.onProgress?.({ step: 'download-image', phase: 'info', message: `${tenth * 10}% of ${(total / 1048576).toFixed(1)} MB` });
      }
    }
    await handle.close();
    const actual = hash.digest('hex');
    if (actual !== expected) {
      throw new ProviderError(`checksum mismatch for ${url}: expected SHA-256 ${expected}, got ${actual}; the download was discarded`, {
        ...where,
        providerCode: 'CHECKSUM_MISMATCH',
        hint: 'retry; if it persists the image changed or a proxy altered it: check --virtualbox-image-url / --virtualbox-image-checksum',
      });
    }
    await rename(partial, target);
    kept = true;
    options.onProgress?.({ step: 'download-image', phase: 'done', message: `downloaded ${(bytes / 1048576).toFixed(1)} MB, SHA-256 verified` });
  } catch (error) {
    throwIfAborted(options.signal, where);
    throw error;
  } finally {
    await handle.close().catch(() => {});
    if (!kept) await unlink(partial).catch(() => {});
  }
}
