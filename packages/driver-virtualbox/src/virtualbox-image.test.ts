import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidConfigError, ProviderError } from '@machine/driver-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { checksumFromSums, imageFileName, resolveImage } from './virtualbox-image.ts';

// A loopback HTTP server stands in for cloud-images.ubuntu.com: no test touches the network.
const image = Buffer.concat([Buffer.from('fake vmdk\n'), Buffer.alloc(300_000, 1)]);
const digest = createHash('sha256').update(image).digest('hex');
const file = 'ubuntu-24.04-server-cloudimg-amd64.vmdk';

let server: Server;
let base: string;
let dir: string;
let requests: string[] = [];
let served: { sums?: string | number; image?: Buffer | number } = {};

beforeAll(async () => {
  server = createServer((request, response) => {
    requests.push(request.url ?? '');
    const body = request.url?.endsWith('/SHA256SUMS') ? served.sums : request.url?.endsWith(`/${file}`) ? served.image : 404;
    if (body === undefined || typeof body === 'number') {
      response.writeHead(typeof body === 'number' ? body : 404).end();
      return;
    }
    if (!request.url?.endsWith(`/${file}`)) {
      response.writeHead(200).end(body);
      return;
    }
    // The image goes out in slices with pauses, as a real download arrives, so progress is reported.
    const bytes = Buffer.from(body);
    response.writeHead(200, { 'content-length': String(bytes.length) });
    const slice = Math.ceil(bytes.length / 20);
    const send = (offset: number) => {
      if (offset >= bytes.length) {
        response.end();
        return;
      }
      response.write(bytes.subarray(offset, offset + slice));
      setTimeout(() => send(offset + slice), 2);
    };
    send(0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/releases/noble/release`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(async () => {
  requests = [];
  served = { sums: `${'0'.repeat(64)} *other.img\n${digest} *${file}\n`, image };
  dir = await mkdtemp(join(tmpdir(), 'vbox-image-'));
  return () => rm(dir, { recursive: true, force: true });
});

const options = () => ({ imageUrl: `${base}/${file}`, cacheDir: join(dir, 'cache'), machine: 'web1' });

describe('resolveImage', () => {
  it('downloads into the cache after checking SHA256SUMS, then reuses the cache without downloading again', async () => {
    const events: string[] = [];
    const first = await resolveImage({ ...options(), onProgress: (event) => events.push(`${event.phase} ${event.message}`) });
    expect(events[0]).toBe(`start downloading ${base}/${file}`);
    expect(events.filter((event) => /^info \d0% of 0\.3 MB$/.test(event)).length).toBeGreaterThanOrEqual(5);
    expect(events.at(-1)).toBe('done downloaded 0.3 MB, SHA-256 verified');
    expect(first).toEqual({ path: join(dir, 'cache', file), source: 'download', sha256: digest });
    expect((await readFile(first.path)).equals(image)).toBe(true);
    expect(requests).toEqual(['/releases/noble/release/SHA256SUMS', `/releases/noble/release/${file}`]);
    requests = [];
    const second = await resolveImage(options());
    expect(second.source).toBe('cache');
    expect(requests).toEqual(['/releases/noble/release/SHA256SUMS']);
    expect((await readdir(join(dir, 'cache'))).sort()).toEqual([file, `${file}.sha256`]);
  });

  it('hashes the cached image before each use: a cached file that changed since its download is fetched again', async () => {
    const first = await resolveImage(options());
    const corrupt = Buffer.from(image);
    corrupt[100] = 2; // one flipped byte; the sidecar still holds the digest of the download
    await writeFile(first.path, corrupt);
    requests = [];
    const again = await resolveImage(options());
    expect(again).toEqual({ path: first.path, source: 'download', sha256: digest });
    expect((await readFile(again.path)).equals(image)).toBe(true);
    expect(requests).toEqual(['/releases/noble/release/SHA256SUMS', `/releases/noble/release/${file}`]);
    // Offline, a changed cache is not used either: the error says so and the bad file is gone.
    await writeFile(first.path, corrupt);
    served.sums = 503;
    const error = await resolveImage(options()).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProviderError);
    expect(await readdir(join(dir, 'cache'))).toEqual([]);
  });

  it('deletes partial downloads a killed process left in the cache, but not one still being written', async () => {
    const cache = join(dir, 'cache');
    await mkdir(cache, { recursive: true });
    const stale = join(cache, `${file}.dead0001.part`);
    const live = join(cache, `${file}.live0001.part`);
    await writeFile(stale, 'half');
    await writeFile(live, 'half');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(stale, twoHoursAgo, twoHoursAgo);
    await resolveImage(options());
    expect((await readdir(cache)).sort()).toEqual([file, `${file}.live0001.part`, `${file}.sha256`]);
  });

  it('re-downloads when SHA256SUMS names a new image under the same URL', async () => {
    await resolveImage(options());
    const changed = Buffer.from('a newer serial');
    served = { sums: `${createHash('sha256').update(changed).digest('hex')}  ${file}\n`, image: changed };
    const again = await resolveImage(options());
    expect(again.source).toBe('download');
    expect((await readFile(again.path)).equals(changed)).toBe(true);
  });

  it('discards a download whose checksum does not match and keeps nothing in the cache', async () => {
    served.image = Buffer.from('tampered');
    const error = await resolveImage(options()).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).providerCode).toBe('CHECKSUM_MISMATCH');
    expect((error as Error).message).toContain(`checksum mismatch for ${base}/${file}: expected SHA-256 ${digest}`);
    expect(await readdir(join(dir, 'cache'))).toEqual([]);
  });

  it('uses --virtualbox-image-checksum instead of SHA256SUMS, and rejects a wrong one', async () => {
    served.sums = 404;
    const resolved = await resolveImage({ ...options(), imageChecksum: `sha256:${digest.toUpperCase()}` });
    expect(resolved.source).toBe('download');
    expect(requests).toEqual([`/releases/noble/release/${file}`]);
    await rm(join(dir, 'cache'), { recursive: true });
    const error = await resolveImage({ ...options(), imageChecksum: 'f'.repeat(64) }).catch((caught: unknown) => caught);
    expect((error as ProviderError).providerCode).toBe('CHECKSUM_MISMATCH');
    expect(await readdir(join(dir, 'cache'))).toEqual([]);
  });

  it('says to pass a checksum when there is no SHA256SUMS or it lists no such file', async () => {
    served.sums = 404;
    await expect(resolveImage(options())).rejects.toThrow(/--virtualbox-image-checksum: there is no SHA256SUMS next to .* \(404\)/);
    served.sums = `${digest} *something-else.img\n`;
    const error = await resolveImage(options()).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as Error).message).toContain(`lists no checksum for ${file}`);
    expect(requests.filter((url) => url.endsWith(file))).toEqual([]);
  });

  it('falls back to the cached image when SHA256SUMS cannot be read, and fails clearly when nothing is cached', async () => {
    await resolveImage(options());
    served.sums = 503;
    const events: string[] = [];
    const cached = await resolveImage({ ...options(), onProgress: (event) => events.push(event.message) });
    expect(cached.source).toBe('cache');
    expect(events.join('\n')).toMatch(/could not read .*SHA256SUMS \(HTTP 503\); using the cached/);
    await rm(join(dir, 'cache'), { recursive: true });
    const error = await resolveImage(options()).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).hint).toMatch(/--virtualbox-image-path/);
  });

  it('uses --virtualbox-image-path as is, checking it when a checksum is given', async () => {
    const local = join(dir, 'local.vmdk');
    await writeFile(local, image);
    expect(await resolveImage({ ...options(), imagePath: local })).toEqual({ path: local, source: 'path' });
    expect(await resolveImage({ ...options(), imagePath: local, imageChecksum: digest })).toEqual({ path: local, source: 'path', sha256: digest });
    await expect(resolveImage({ ...options(), imagePath: local, imageChecksum: 'a'.repeat(64) })).rejects.toThrow(/--virtualbox-image-checksum: .*local.vmdk has SHA-256/);
    await expect(resolveImage({ ...options(), imagePath: join(dir, 'missing.vmdk') })).rejects.toThrow(/--virtualbox-image-path: .*missing.vmdk is not a file/);
    expect(requests).toEqual([]);
  });

  it('reads SHA256SUMS lines in both text and binary form, and names cache files safely', () => {
    expect(checksumFromSums(`${digest}  ${file}\n`, file)).toBe(digest);
    expect(checksumFromSums(`${digest.toUpperCase()} *${file}\r\n`, file)).toBe(digest);
    expect(checksumFromSums(`${digest} *${file}.other\n`, file)).toBeUndefined();
    expect(imageFileName('https://example.test/a/b/ubuntu%20x.vmdk?x=1')).toBe('ubuntu_20x.vmdk');
  });
});
