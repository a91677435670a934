import { posix } from 'node:path';

/** Ownership, permissions and times shared by files and directories. */
export interface NodeMetadata {
  /** Permission bits only (e.g. 0o644); the type comes from `type`. */
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  atime: Date;
}

/** A regular file. */
export interface FileNode extends NodeMetadata {
  readonly type: 'file';
  data: Buffer;
}

/** A directory. */
export interface DirectoryNode extends NodeMetadata {
  readonly type: 'directory';
  readonly children: Map<string, FileSystemNode>;
}

/** A file or a directory (no links, devices or sockets). */
export type FileSystemNode = FileNode | DirectoryNode;

/** Error codes the filesystem raises, named as POSIX does. */
export type FileSystemErrorCode = 'ENOENT' | 'ENOTDIR' | 'EISDIR' | 'EEXIST' | 'ENOTEMPTY' | 'EINVAL';

const MESSAGES: Record<FileSystemErrorCode, string> = {
  ENOENT: 'No such file or directory',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EEXIST: 'File exists',
  ENOTEMPTY: 'Directory not empty',
  EINVAL: 'Invalid argument',
};

/** A filesystem error; `message` is the POSIX text (`No such file or directory`). */
export class FileSystemError extends Error {
  readonly code: FileSystemErrorCode;
  readonly path: string;

  constructor(code: FileSystemErrorCode, path: string) {
    super(MESSAGES[code]);
    this.name = 'FileSystemError';
    this.code = code;
    this.path = path;
  }
}

/** Owner of new nodes. */
export interface Owner {
  uid: number;
  gid: number;
}

const ROOT: Owner = { uid: 0, gid: 0 };

/**
 * A per-instance in-memory filesystem. Paths are POSIX; relative paths resolve against `cwd`.
 * Permissions are recorded and reported but not enforced (every session acts as root, as `sudo`
 * would make it).
 */
export class MemoryFileSystem {
  readonly root: DirectoryNode = newDirectory(0o755, ROOT);

  /** Absolute, normalised form of `path` relative to `cwd`. */
  static resolve(path: string, cwd = '/'): string {
    return posix.resolve(cwd, path);
  }

  /** The node at `path`, or undefined. */
  lookup(path: string): FileSystemNode | undefined {
    let node: FileSystemNode = this.root;
    for (const part of split(path)) {
      if (node.type !== 'directory') return undefined;
      const child: FileSystemNode | undefined = node.children.get(part);
      if (child === undefined) return undefined;
      node = child;
    }
    return node;
  }

  /** The node at `path`; throws ENOENT. */
  stat(path: string): FileSystemNode {
    const node = this.lookup(path);
    if (node === undefined) throw new FileSystemError('ENOENT', path);
    return node;
  }

  /** True when something exists at `path`. */
  exists(path: string): boolean {
    return this.lookup(path) !== undefined;
  }

  /** A file's bytes; throws ENOENT or EISDIR. */
  readFile(path: string): Buffer {
    const node = this.stat(path);
    if (node.type !== 'file') throw new FileSystemError('EISDIR', path);
    node.atime = new Date();
    return node.data;
  }

  /** Creates or replaces (or with `append`, extends) a file; the parent directory must exist. */
  writeFile(path: string, data: string | Buffer, options: { append?: boolean; mode?: number; owner?: Owner } = {}): FileNode {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const existing = this.lookup(path);
    if (existing?.type === 'directory') throw new FileSystemError('EISDIR', path);
    if (existing !== undefined) {
      existing.data = options.append === true ? Buffer.concat([existing.data, bytes]) : Buffer.from(bytes);
      existing.mtime = new Date();
      return existing;
    }
    const { parent, name } = this.#parentOf(path);
    const file = newFile(bytes, options.mode ?? 0o644, options.owner ?? ROOT);
    parent.children.set(name, file);
    parent.mtime = new Date();
    return file;
  }

  /** Creates a directory (`recursive`: parents too, and no error when it exists). */
  mkdir(path: string, options: { recursive?: boolean; mode?: number; owner?: Owner } = {}): DirectoryNode {
    const existing = this.lookup(path);
    if (existing !== undefined) {
      if (existing.type === 'directory' && options.recursive === true) return existing;
      throw new FileSystemError(existing.type === 'directory' ? 'EEXIST' : 'ENOTDIR', path);
    }
    if (options.recursive === true) {
      const parentPath = posix.dirname(MemoryFileSystem.resolve(path));
      if (!this.exists(parentPath)) this.mkdir(parentPath, options);
    }
    const { parent, name } = this.#parentOf(path);
    const directory = newDirectory(options.mode ?? 0o755, options.owner ?? ROOT);
    parent.children.set(name, directory);
    parent.mtime = new Date();
    return directory;
  }

  /** Entries of a directory sorted by name; throws ENOENT or ENOTDIR. */
  readdir(path: string): [name: string, node: FileSystemNode][] {
    const node = this.stat(path);
    if (node.type !== 'directory') throw new FileSystemError('ENOTDIR', path);
    return [...node.children.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Removes a file, or a directory (empty unless `recursive`). */
  remove(path: string, options: { recursive?: boolean; directory?: boolean } = {}): void {
    const node = this.stat(path);
    if (node.type === 'directory') {
      if (options.recursive !== true && options.directory !== true) throw new FileSystemError('EISDIR', path);
      if (options.recursive !== true && node.children.size > 0) throw new FileSystemError('ENOTEMPTY', path);
    } else if (options.directory === true) {
      throw new FileSystemError('ENOTDIR', path);
    }
    const { parent, name } = this.#parentOf(path);
    if (name === '') throw new FileSystemError('EINVAL', path);
    parent.children.delete(name);
    parent.mtime = new Date();
  }

  /** Moves a node, replacing a file at the destination. */
  rename(from: string, to: string): void {
    const node = this.stat(from);
    const target = this.lookup(to);
    if (target?.type === 'directory') throw new FileSystemError('EISDIR', to);
    const source = this.#parentOf(from);
    const destination = this.#parentOf(to);
    source.parent.children.delete(source.name);
    destination.parent.children.set(destination.name, node);
  }

  /** Bytes held by all files. */
  usedBytes(): number {
    let total = 0;
    const walk = (directory: DirectoryNode): void => {
      for (const child of directory.children.values()) {
        if (child.type === 'file') total += child.data.length;
        else walk(child);
      }
    };
    walk(this.root);
    return total;
  }

  #parentOf(path: string): { parent: DirectoryNode; name: string } {
    const absolute = MemoryFileSystem.resolve(path);
    const parentPath = posix.dirname(absolute);
    const parent = this.lookup(parentPath);
    if (parent === undefined) throw new FileSystemError('ENOENT', path);
    if (parent.type !== 'directory') throw new FileSystemError('ENOTDIR', path);
    return { parent, name: posix.basename(absolute) };
  }
}

function split(path: string): string[] {
  return MemoryFileSystem.resolve(path)
    .split('/')
    .filter((part) => part !== '');
}

function newFile(data: Buffer, mode: number, owner: Owner): FileNode {
  const now = new Date();
  return { type: 'file', data: Buffer.from(data), mode, uid: owner.uid, gid: owner.gid, mtime: now, atime: now };
}

function newDirectory(mode: number, owner: Owner): DirectoryNode {
  const now = new Date();
  return { type: 'directory', children: new Map(), mode, uid: owner.uid, gid: owner.gid, mtime: now, atime: now };
}
