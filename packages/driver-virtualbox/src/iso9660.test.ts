import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildIsoImage } from './iso9660.ts';

// Checked with an independent reader: isoinfo (Debian genisoimage; .ci/run installs it).
const dir = mkdtempSync(join(tmpdir(), 'iso9660-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function isoinfo(iso: string, ...args: string[]): string {
  return execFileSync('isoinfo', ['-i', iso, ...args], { encoding: 'utf8' });
}

function write(name: string, image: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, image);
  return path;
}

const big = `${'x'.repeat(5000)}\nend\n`;
const files = [
  { name: 'user-data', content: '#cloud-config\nusers: []\n' },
  { name: 'meta-data', content: 'instance-id: web1-1\nlocal-hostname: web1\n' },
  { name: 'network-config', content: big },
  { name: 'empty', content: '' },
];

describe('buildIsoImage', () => {
  const iso = write('seed.iso', buildIsoImage({ volumeId: 'cidata', files, date: new Date(Date.UTC(2026, 10, 26, 1, 2, 3)) }));

  it('writes a primary and a Joliet descriptor with the volume label', () => {
    const info = isoinfo(iso, '-d');
    expect(info).toContain('CD-ROM is in ISO 9660 format');
    expect(info).toMatch(/Volume id: cidata\n/);
    expect(info).toContain('Joliet with UCS level 3 found');
    expect(info).toContain('Logical block size is: 2048');
  });

  it('is found by the label cloud-init looks for (blkid, util-linux)', () => {
    // /usr/sbin is not on a non-root user's PATH on Debian.
    const blkid = ['/usr/sbin/blkid', '/sbin/blkid'].find((path) => existsSync(path)) ?? 'blkid';
    const probe = execFileSync(blkid, ['-p', '-o', 'export', iso], { encoding: 'utf8' });
    expect(probe).toContain('LABEL=cidata\n');
    expect(probe).toContain('TYPE=iso9660\n');
  });

  it('keeps the lowercase hyphenated names in the Joliet tree', () => {
    const listing = isoinfo(iso, '-J', '-f').split('\n').filter((line) => line !== '').sort();
    expect(listing).toEqual(['/empty', '/meta-data', '/network-config', '/user-data']);
  });

  it('gives the primary tree unique ISO level 1 names', () => {
    const listing = isoinfo(iso, '-f').split('\n').filter((line) => line !== '').sort();
    expect(listing).toEqual(['/EMPTY.;1', '/META_DAT.;1', '/NETWORK_.;1', '/USER_DAT.;1']);
  });

  it('stores every file byte for byte, including one spanning several sectors and an empty one', () => {
    for (const file of files) expect(isoinfo(iso, '-J', '-x', `/${file.name}`)).toBe(file.content);
    expect(isoinfo(iso, '-x', '/USER_DAT.;1')).toBe(files[0]?.content);
  });

  it('is byte-identical for the same input and date', () => {
    const date = new Date(Date.UTC(2026, 0, 1));
    expect(buildIsoImage({ volumeId: 'cidata', files, date }).equals(buildIsoImage({ volumeId: 'cidata', files, date }))).toBe(true);
  });

  it('makes 8.3 names unique when two long names share a prefix', () => {
    const path = write('twins.iso', buildIsoImage({ volumeId: 'cidata', files: [{ name: 'user-data-one', content: '1' }, { name: 'user-data-two', content: '2' }] }));
    expect(isoinfo(path, '-f').split('\n').filter(Boolean).sort()).toEqual(['/USER_DAT.;1', '/USER_D_1.;1']);
    expect(isoinfo(path, '-J', '-x', '/user-data-two')).toBe('2');
  });

  it('rejects names and labels it cannot represent, and directories that do not fit one sector', () => {
    expect(() => buildIsoImage({ volumeId: '', files: [] })).toThrow(/volume id/);
    expect(() => buildIsoImage({ volumeId: 'a-label-that-is-too-long', files: [] })).toThrow(/volume id/);
    expect(() => buildIsoImage({ volumeId: 'cidata', files: [{ name: 'a/b', content: '' }] })).toThrow(/file name/);
    expect(() => buildIsoImage({ volumeId: 'cidata', files: [{ name: 'a', content: '' }, { name: 'a', content: '' }] })).toThrow(/duplicate/);
    const many = Array.from({ length: 40 }, (_, index) => ({ name: `file-number-${String(index).padStart(3, '0')}-with-a-long-name`, content: '' }));
    expect(() => buildIsoImage({ volumeId: 'cidata', files: many })).toThrow(/one-sector/);
  });
});
