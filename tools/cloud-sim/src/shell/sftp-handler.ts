import type ssh2 from 'ssh2';
import { type FileSystemNode, MemoryFileSystem } from './memory-filesystem.ts';
import { homeDirectory } from './ubuntu-image.ts';

/** SFTP v3 status codes (draft-ietf-secsh-filexfer-02). */
const STATUS = { OK: 0, EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, OP_UNSUPPORTED: 8 } as const;
/** SFTP v3 open flags. */
const OPEN = { READ: 0x1, WRITE: 0x2, APPEND: 0x4, CREAT: 0x8, TRUNC: 0x10, EXCL: 0x20 } as const;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

type Handle = { kind: 'file'; path: string; flags: number } | { kind: 'directory'; path: string; sent: boolean };

/**
 * Serves the SFTP subsystem over an instance's in-memory filesystem, so `scp`/`sftp` clients
 * (ssh2 `fastPut`/`fastGet`, `machine scp`) read and write the same files the emulated shell sees.
 * Relative paths start at the user's home directory.
 */
export function serveSftp(sftp: ssh2.SFTPWrapper, fs: MemoryFileSystem, username: string): void {
  const handles = new Map<number, Handle>();
  let nextHandle = 1;
  const home = homeDirectory(fs, username === '' ? 'root' : username);
  const resolve = (path: string): string => MemoryFileSystem.resolve(path === '' ? '.' : path, home);
  const newHandle = (handle: Handle): Buffer => {
    const id = nextHandle++;
    handles.set(id, handle);
    const buffer = Buffer.alloc(4);
    buffer.writeUInt32BE(id);
    return buffer;
  };
  const handleOf = (buffer: Buffer): Handle | undefined => (buffer.length === 4 ? handles.get(buffer.readUInt32BE(0)) : undefined);
  const fail = (reqId: number, error: unknown): void => {
    const code = (error as { code?: string }).code;
    sftp.status(reqId, code === 'ENOENT' ? STATUS.NO_SUCH_FILE : STATUS.FAILURE, error instanceof Error ? error.message : String(error));
  };
  const guard =
    <A extends unknown[]>(handler: (reqId: number, ...args: A) => void) =>
    (reqId: number, ...args: A): void => {
      try {
        handler(reqId, ...args);
      } catch (error) {
        fail(reqId, error);
      }
    };

  sftp.on(
    'OPEN',
    guard((reqId: number, filename: string, flags: number) => {
      const path = resolve(filename);
      const existing = fs.lookup(path);
      if (existing?.type === 'directory') throw Object.assign(new Error('Is a directory'), { code: 'EISDIR' });
      if (existing === undefined) {
        if ((flags & OPEN.CREAT) === 0) throw Object.assign(new Error('No such file'), { code: 'ENOENT' });
        fs.writeFile(path, '');
      } else if ((flags & OPEN.EXCL) !== 0 && (flags & OPEN.CREAT) !== 0) {
        throw new Error('File exists');
      } else if ((flags & OPEN.TRUNC) !== 0) {
        fs.writeFile(path, '');
      }
      sftp.handle(reqId, newHandle({ kind: 'file', path, flags }));
    }),
  );
  sftp.on(
    'READ',
    guard((reqId: number, handleBuffer: Buffer, offset: number, length: number) => {
      const handle = handleOf(handleBuffer);
      if (handle?.kind !== 'file') return sftp.status(reqId, STATUS.FAILURE, 'invalid handle');
      const data = fs.readFile(handle.path);
      if (offset >= data.length) return sftp.status(reqId, STATUS.EOF);
      sftp.data(reqId, data.subarray(offset, Math.min(data.length, offset + length)));
    }),
  );
  sftp.on(
    'WRITE',
    guard((reqId: number, handleBuffer: Buffer, offset: number, chunk: Buffer) => {
      const handle = handleOf(handleBuffer);
      if (handle?.kind !== 'file') return sftp.status(reqId, STATUS.FAILURE, 'invalid handle');
      const current = fs.readFile(handle.path);
      const start = (handle.flags & OPEN.APPEND) !== 0 ? current.length : offset;
      const size = Math.max(current.length, start + chunk.length);
      const next = Buffer.alloc(size);
      current.copy(next);
      chunk.copy(next, start);
      fs.writeFile(handle.path, next);
      sftp.status(reqId, STATUS.OK);
    }),
  );
  sftp.on(
    'CLOSE',
    guard((reqId: number, handleBuffer: Buffer) => {
      const ok = handleBuffer.length === 4 && handles.delete(handleBuffer.readUInt32BE(0));
      sftp.status(reqId, ok ? STATUS.OK : STATUS.FAILURE);
    }),
  );
  sftp.on(
    'FSTAT',
    guard((reqId: number, handleBuffer: Buffer) => {
      const handle = handleOf(handleBuffer);
      if (handle === undefined) return sftp.status(reqId, STATUS.FAILURE, 'invalid handle');
      sftp.attrs(reqId, attributes(fs.stat(handle.path)));
    }),
  );
  const stat = guard((reqId: number, path: string) => sftp.attrs(reqId, attributes(fs.stat(resolve(path)))));
  sftp.on('STAT', stat);
  sftp.on('LSTAT', stat);
  const setStat = (node: FileSystemNode, attrs: ssh2.Attributes): void => {
    if (attrs.mode !== undefined) node.mode = attrs.mode & 0o7777;
    if (attrs.mtime !== undefined) node.mtime = new Date(attrs.mtime * 1000);
    if (attrs.atime !== undefined) node.atime = new Date(attrs.atime * 1000);
    if (attrs.size !== undefined && node.type === 'file' && attrs.size !== node.data.length) {
      const resized = Buffer.alloc(attrs.size);
      node.data.copy(resized, 0, 0, Math.min(attrs.size, node.data.length));
      node.data = resized;
    }
  };
  sftp.on(
    'SETSTAT',
    guard((reqId: number, path: string, attrs: ssh2.Attributes) => {
      setStat(fs.stat(resolve(path)), attrs);
      sftp.status(reqId, STATUS.OK);
    }),
  );
  sftp.on(
    'FSETSTAT',
    guard((reqId: number, handleBuffer: Buffer, attrs: ssh2.Attributes) => {
      const handle = handleOf(handleBuffer);
      if (handle === undefined) return sftp.status(reqId, STATUS.FAILURE, 'invalid handle');
      setStat(fs.stat(handle.path), attrs);
      sftp.status(reqId, STATUS.OK);
    }),
  );
  sftp.on(
    'OPENDIR',
    guard((reqId: number, path: string) => {
      const absolute = resolve(path);
      if (fs.stat(absolute).type !== 'directory') throw new Error('Not a directory');
      sftp.handle(reqId, newHandle({ kind: 'directory', path: absolute, sent: false }));
    }),
  );
  sftp.on(
    'READDIR',
    guard((reqId: number, handleBuffer: Buffer) => {
      const handle = handleOf(handleBuffer);
      if (handle?.kind !== 'directory') return sftp.status(reqId, STATUS.FAILURE, 'invalid handle');
      if (handle.sent) return sftp.status(reqId, STATUS.EOF);
      handle.sent = true;
      sftp.name(
        reqId,
        fs.readdir(handle.path).map(([name, node]) => ({ filename: name, longname: name, attrs: attributes(node) })),
      );
    }),
  );
  sftp.on(
    'REALPATH',
    guard((reqId: number, path: string) => {
      const absolute = resolve(path);
      sftp.name(reqId, [{ filename: absolute, longname: absolute, attrs: {} as ssh2.Attributes }]);
    }),
  );
  sftp.on(
    'MKDIR',
    guard((reqId: number, path: string) => {
      fs.mkdir(resolve(path));
      sftp.status(reqId, STATUS.OK);
    }),
  );
  sftp.on(
    'RMDIR',
    guard((reqId: number, path: string) => {
      fs.remove(resolve(path), { directory: true });
      sftp.status(reqId, STATUS.OK);
    }),
  );
  sftp.on(
    'REMOVE',
    guard((reqId: number, path: string) => {
      fs.remove(resolve(path));
      sftp.status(reqId, STATUS.OK);
    }),
  );
  sftp.on(
    'RENAME',
    guard((reqId: number, from: string, to: string) => {
      fs.rename(resolve(from), resolve(to));
      sftp.status(reqId, STATUS.OK);
    }),
  );
  sftp.on('READLINK', (reqId: number) => sftp.status(reqId, STATUS.OP_UNSUPPORTED, 'no symbolic links'));
  sftp.on('SYMLINK', (reqId: number) => sftp.status(reqId, STATUS.OP_UNSUPPORTED, 'no symbolic links'));
}

function attributes(node: FileSystemNode): ssh2.Attributes {
  return {
    mode: (node.type === 'directory' ? S_IFDIR : S_IFREG) | node.mode,
    uid: node.uid,
    gid: node.gid,
    size: node.type === 'directory' ? 4096 : node.data.length,
    atime: Math.floor(node.atime.getTime() / 1000),
    mtime: Math.floor(node.mtime.getTime() / 1000),
  };
}
