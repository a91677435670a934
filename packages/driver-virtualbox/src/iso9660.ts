/**
 * A minimal ISO 9660 image writer for cloud-init NoCloud seeds: one root directory with a few small
 * files, a primary volume descriptor (8.3 upper-case names, as ISO 9660 level 1 demands) and a
 * Joliet supplementary descriptor carrying the real names (`user-data`, `meta-data`,
 * `network-config`), which Linux's isofs (and so cloud-init) uses when it is present. The layout is
 * fixed and tiny:
 *
 *   sectors 0-15  system area (zeros)
 *   16            primary volume descriptor
 *   17            Joliet supplementary volume descriptor (UCS-2 level 3, escape `%/E`)
 *   18            volume descriptor set terminator
 *   19-22         path tables: primary L, primary M, Joliet L, Joliet M
 *   23            primary root directory
 *   24            Joliet root directory
 *   25-           file contents, each starting on a sector boundary
 */

const sectorSize = 2048;

/** One file of the image. */
export interface IsoFile {
  /** The file's name (Joliet keeps it, up to 64 characters; the primary directory gets an 8.3 form). */
  name: string;
  content: Buffer | string;
}

/** Options for {@link buildIsoImage}. */
export interface IsoImageOptions {
  /** Volume label, up to 16 characters (`cidata` for NoCloud). */
  volumeId: string;
  files: readonly IsoFile[];
  /** Recording time (default now); fixed in tests for byte-identical output. */
  date?: Date;
}

/** Builds the whole image in memory (seeds are a few KB). */
export function buildIsoImage(options: IsoImageOptions): Buffer {
  const { volumeId, files } = options;
  if (volumeId.length === 0 || volumeId.length > 16 || !/^[\x20-\x7e]+$/.test(volumeId)) {
    throw new Error(`ISO volume id must be 1-16 printable ASCII characters, got "${volumeId}"`);
  }
  const names = new Set<string>();
  for (const file of files) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(file.name)) throw new Error(`ISO file name "${file.name}" must be 1-64 of A-Z a-z 0-9 . _ -`);
    if (names.has(file.name)) throw new Error(`duplicate ISO file name "${file.name}"`);
    names.add(file.name);
  }
  const date = options.date ?? new Date();
  const contents = files.map((file) => (typeof file.content === 'string' ? Buffer.from(file.content, 'utf8') : file.content));

  const primaryNames = shortNames(files.map((file) => file.name));
  const primaryRootLba = 23;
  const jolietRootLba = 24;
  let nextLba = 25;
  const extents = contents.map((content) => {
    const lba = nextLba;
    nextLba += Math.max(1, sectorCount(content.length));
    return lba;
  });
  const totalSectors = nextLba;

  // Directory entries are sorted by their identifier, as ISO 9660 (9.3) requires.
  const primaryEntries = files
    .map((_, index) => ({ id: Buffer.from(`${primaryNames[index]};1`, 'ascii'), index }))
    .sort((a, b) => Buffer.compare(a.id, b.id));
  const jolietEntries = files
    .map((file, index) => ({ id: ucs2(file.name), index }))
    .sort((a, b) => Buffer.compare(a.id, b.id));

  const primaryRoot = directorySector(primaryRootLba, primaryEntries, extents, contents, date);
  const jolietRoot = directorySector(jolietRootLba, jolietEntries, extents, contents, date);

  const image = Buffer.alloc(totalSectors * sectorSize);
  const pathTableSize = 10;
  volumeDescriptor(image, 16, {
    type: 1,
    text: padAscii,
    volumeId,
    totalSectors,
    pathTableSize,
    lPathLba: 19,
    mPathLba: 20,
    rootLba: primaryRootLba,
    date,
  });
  volumeDescriptor(image, 17, {
    type: 2,
    text: padUcs2,
    volumeId,
    totalSectors,
    pathTableSize,
    lPathLba: 21,
    mPathLba: 22,
    rootLba: jolietRootLba,
    date,
    escape: '%/E',
  });
  // Terminator.
  const terminator = 18 * sectorSize;
  image[terminator] = 255;
  image.write('CD001', terminator + 1, 'ascii');
  image[terminator + 6] = 1;

  pathTable(image, 19, primaryRootLba, 'LE');
  pathTable(image, 20, primaryRootLba, 'BE');
  pathTable(image, 21, jolietRootLba, 'LE');
  pathTable(image, 22, jolietRootLba, 'BE');
  primaryRoot.copy(image, primaryRootLba * sectorSize);
  jolietRoot.copy(image, jolietRootLba * sectorSize);
  contents.forEach((content, index) => {
    content.copy(image, (extents[index] ?? 0) * sectorSize);
  });
  return image;
}

function sectorCount(bytes: number): number {
  return Math.ceil(bytes / sectorSize);
}

/** ISO 9660 level 1 names: upper-case d-characters, 8 + 3, unique. */
function shortNames(names: readonly string[]): string[] {
  const used = new Set<string>();
  return names.map((name) => {
    const clean = (part: string) => part.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
    const dot = name.lastIndexOf('.');
    const base = clean(dot > 0 ? name.slice(0, dot) : name).slice(0, 8) || '_';
    const extension = clean(dot > 0 ? name.slice(dot + 1) : '').slice(0, 3);
    let candidate = `${base}.${extension}`;
    for (let counter = 1; used.has(candidate); counter++) {
      const suffix = `_${counter}`;
      candidate = `${base.slice(0, 8 - suffix.length)}${suffix}.${extension}`;
    }
    used.add(candidate);
    return candidate;
  });
}

function ucs2(text: string): Buffer {
  const buffer = Buffer.alloc(text.length * 2);
  for (let index = 0; index < text.length; index++) buffer.writeUInt16BE(text.charCodeAt(index), index * 2);
  return buffer;
}

function padAscii(text: string, length: number): Buffer {
  const buffer = Buffer.alloc(length, 0x20);
  buffer.write(text.slice(0, length), 0, 'ascii');
  return buffer;
}

function padUcs2(text: string, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  for (let offset = 0; offset + 1 < length; offset += 2) buffer.writeUInt16BE(0x20, offset);
  ucs2(text.slice(0, Math.floor(length / 2))).copy(buffer, 0);
  return buffer;
}

function both16(buffer: Buffer, offset: number, value: number): void {
  buffer.writeUInt16LE(value, offset);
  buffer.writeUInt16BE(value, offset + 2);
}

function both32(buffer: Buffer, offset: number, value: number): void {
  buffer.writeUInt32LE(value, offset);
  buffer.writeUInt32BE(value, offset + 4);
}

/** The 17-byte volume descriptor date (`YYYYMMDDHHMMSScc` + offset from GMT in 15-minute units). */
function longDate(date: Date | undefined): Buffer {
  const buffer = Buffer.alloc(17, 0x30);
  if (date === undefined) {
    buffer[16] = 0;
    return buffer;
  }
  const pad = (value: number, width: number) => String(value).padStart(width, '0');
  const text =
    pad(date.getUTCFullYear(), 4) +
    pad(date.getUTCMonth() + 1, 2) +
    pad(date.getUTCDate(), 2) +
    pad(date.getUTCHours(), 2) +
    pad(date.getUTCMinutes(), 2) +
    pad(date.getUTCSeconds(), 2) +
    pad(Math.floor(date.getUTCMilliseconds() / 10), 2);
  buffer.write(text, 0, 'ascii');
  buffer[16] = 0;
  return buffer;
}

/** The 7-byte directory record date. */
function shortDate(date: Date): Buffer {
  return Buffer.from([
    date.getUTCFullYear() - 1900,
    date.getUTCMonth() + 1,
    date.getUTCDate(),
    date.getUTCHours(),
    date.getUTCMinutes(),
    date.getUTCSeconds(),
    0,
  ]);
}

function directoryRecord(id: Buffer, lba: number, size: number, isDirectory: boolean, date: Date): Buffer {
  const length = 33 + id.length + (id.length % 2 === 0 ? 1 : 0);
  const record = Buffer.alloc(length);
  record[0] = length;
  record[1] = 0;
  both32(record, 2, lba);
  both32(record, 10, size);
  shortDate(date).copy(record, 18);
  record[25] = isDirectory ? 2 : 0;
  both16(record, 28, 1);
  record[32] = id.length;
  id.copy(record, 33);
  return record;
}

function directorySector(
  ownLba: number,
  entries: readonly { id: Buffer; index: number }[],
  extents: readonly number[],
  contents: readonly Buffer[],
  date: Date,
): Buffer {
  const records = [
    directoryRecord(Buffer.from([0]), ownLba, sectorSize, true, date),
    directoryRecord(Buffer.from([1]), ownLba, sectorSize, true, date),
    ...entries.map((entry) => directoryRecord(entry.id, extents[entry.index] ?? 0, contents[entry.index]?.length ?? 0, false, date)),
  ];
  const directory = Buffer.concat(records);
  if (directory.length > sectorSize) throw new Error('too many files for a one-sector ISO directory');
  const sector = Buffer.alloc(sectorSize);
  directory.copy(sector);
  return sector;
}

interface DescriptorFields {
  type: 1 | 2;
  text: (value: string, length: number) => Buffer;
  volumeId: string;
  totalSectors: number;
  pathTableSize: number;
  lPathLba: number;
  mPathLba: number;
  rootLba: number;
  date: Date;
  escape?: string;
}

function volumeDescriptor(image: Buffer, lba: number, fields: DescriptorFields): void {
  const descriptor = Buffer.alloc(sectorSize);
  descriptor[0] = fields.type;
  descriptor.write('CD001', 1, 'ascii');
  descriptor[6] = 1;
  fields.text('LINUX', 32).copy(descriptor, 8); // system identifier
  fields.text(fields.volumeId, 32).copy(descriptor, 40);
  both32(descriptor, 80, fields.totalSectors);
  if (fields.escape !== undefined) descriptor.write(fields.escape, 88, 'ascii');
  both16(descriptor, 120, 1); // volume set size
  both16(descriptor, 124, 1); // volume sequence number
  both16(descriptor, 128, sectorSize);
  both32(descriptor, 132, fields.pathTableSize);
  descriptor.writeUInt32LE(fields.lPathLba, 140);
  descriptor.writeUInt32BE(fields.mPathLba, 148);
  directoryRecord(Buffer.from([0]), fields.rootLba, sectorSize, true, fields.date).copy(descriptor, 156);
  fields.text('', 128).copy(descriptor, 190); // volume set
  fields.text('', 128).copy(descriptor, 318); // publisher
  fields.text('', 128).copy(descriptor, 446); // data preparer
  fields.text('MACHINE DRIVER-VIRTUALBOX', 128).copy(descriptor, 574); // application
  fields.text('', 37).copy(descriptor, 702);
  fields.text('', 37).copy(descriptor, 739);
  fields.text('', 37).copy(descriptor, 776);
  longDate(fields.date).copy(descriptor, 813);
  longDate(fields.date).copy(descriptor, 830);
  longDate(undefined).copy(descriptor, 847);
  longDate(undefined).copy(descriptor, 864);
  descriptor[881] = 1; // file structure version
  descriptor.copy(image, lba * sectorSize);
}

function pathTable(image: Buffer, lba: number, rootLba: number, order: 'LE' | 'BE'): void {
  const offset = lba * sectorSize;
  image[offset] = 1; // length of the root's identifier
  image[offset + 1] = 0;
  if (order === 'LE') {
    image.writeUInt32LE(rootLba, offset + 2);
    image.writeUInt16LE(1, offset + 6);
  } else {
    image.writeUInt32BE(rootLba, offset + 2);
    image.writeUInt16BE(1, offset + 6);
  }
  image[offset + 8] = 0; // the root's identifier, then one pad byte
}
