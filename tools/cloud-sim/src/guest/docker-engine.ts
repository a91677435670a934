import { randomBytes, randomInt } from 'node:crypto';
import { EmulatedShell } from '../shell/emulated-shell.ts';
import { MemoryFileSystem } from '../shell/memory-filesystem.ts';
import { SHELL_COMMANDS } from '../shell/shell-commands.ts';
import { HELLO_FROM_DOCKER, type ImageDefinition, type ImageReference, imageId, layerIds, lookUpImage, manifestDigest, parseImageReference } from './docker-images.ts';

/**
 * The containers and images of one machine's emulated Docker Engine. They live on the machine's
 * disk (/var/lib/docker), so they outlive dockerd restarts; a container's process is the image's
 * command run by the emulated shell over the container's own in-memory filesystem (nothing runs on
 * the host).
 */

/** A pulled image. */
export interface LocalImage {
  readonly definition: ImageDefinition;
  readonly id: string;
  /** `busybox:latest`, … */
  readonly repoTags: Set<string>;
  readonly repoDigest: string;
  readonly pulledAt: Date;
}

/** Output of a container: 1 = stdout, 2 = stderr. */
export interface OutputChunk {
  readonly stream: 1 | 2;
  readonly data: Buffer;
}

export type ContainerStatus = 'created' | 'running' | 'exited' | 'removing';

/** The parts of `POST /containers/create`'s body the engine uses. */
export interface ContainerConfig {
  Image: string;
  Cmd: string[] | null;
  Entrypoint: string[] | null;
  Env: string[];
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  WorkingDir: string;
  Hostname: string;
  User: string;
  Labels: Record<string, string>;
}

/** One container. */
export interface Container {
  readonly id: string;
  readonly name: string;
  readonly image: LocalImage;
  readonly config: ContainerConfig;
  readonly hostConfig: Record<string, unknown>;
  readonly created: Date;
  status: ContainerStatus;
  exitCode: number;
  error: string;
  pid: number;
  startedAt: Date | undefined;
  finishedAt: Date | undefined;
  readonly output: OutputChunk[];
  readonly fs: MemoryFileSystem;
}

/** A Docker API error: the status and the daemon's message. */
export class EngineError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'EngineError';
    this.status = status;
  }
}

/** One line of `POST /images/create`'s progress stream. */
export type PullProgress = Record<string, unknown>;

/** The commands that start a shell at a prompt when run with `-it`. */
const INTERACTIVE_SHELLS = new Set(['sh', '/bin/sh', 'bash', '/bin/bash']);

const ADJECTIVES = ['admiring', 'brave', 'clever', 'dreamy', 'eager', 'festive', 'gifted', 'happy', 'jolly', 'keen', 'lucid', 'nifty', 'quirky', 'serene', 'trusting', 'vibrant', 'wizardly', 'zealous'];
const SCIENTISTS = ['curie', 'darwin', 'euler', 'feynman', 'galileo', 'hopper', 'kepler', 'lovelace', 'meitner', 'newton', 'noether', 'pasteur', 'ritchie', 'shannon', 'tesla', 'turing', 'wozniak', 'yalow'];

/** Exit code of a process killed by SIGKILL (a forced remove, dockerd stopping). */
const KILLED = 137;

interface Waiter {
  condition: 'next-exit' | 'removed';
  resolve: (code: number) => void;
}

/** The engine's containers and images. */
export class ContainerEngine {
  readonly images = new Map<string, LocalImage>();
  readonly containers = new Map<string, Container>();
  readonly #listeners = new Map<Container, Set<(chunk: OutputChunk | undefined) => void>>();
  readonly #waiters = new Map<Container, Waiter[]>();
  readonly #stdin = new Map<Container, { promise: Promise<Buffer>; resolve: (data: Buffer) => void; chunks: Buffer[] }>();
  /** Interactive containers read their stdin as it comes (a shell at a prompt). */
  readonly #stdinListeners = new Map<Container, (data: Buffer | undefined) => void>();

  /** The local image `reference` names (`busybox`, `busybox:latest`, an id or id prefix). */
  findImage(reference: string): LocalImage | undefined {
    const id = reference.startsWith('sha256:') ? reference : `sha256:${reference}`;
    if (/^(sha256:)?[0-9a-f]{6,64}$/.test(reference)) {
      for (const image of this.images.values()) if (image.id.startsWith(id)) return image;
    }
    const parsed = parseImageReference(reference);
    if (parsed === undefined) return undefined;
    for (const image of this.images.values()) if (image.repoTags.has(parsed.familiar)) return image;
    return undefined;
  }

  /**
   * Pulls `reference` from the simulated registry: yields the progress lines dockerd streams (per
   * layer: Pulling fs layer, Downloading with progress, Verifying Checksum, Download complete,
   * Extracting, Pull complete), then Digest and Status. Throws EngineError before the first line
   * when the registry refuses (unknown repository or tag).
   */
  pull(fromImage: string, tag: string | undefined): { reference: ImageReference; lines: PullProgress[] } {
    const reference = parseImageReference(fromImage, tag);
    if (reference === undefined) throw new EngineError(400, `invalid reference format: repository name (${fromImage}) must be lowercase`);
    const found = lookUpImage(reference);
    if ('error' in found) throw new EngineError(found.status, found.error);
    const { image } = found;
    const id = imageId(image);
    const existing = this.images.get(id);
    const lines: PullProgress[] = [{ status: `Pulling from ${image.repository}`, id: reference.tag }];
    if (existing?.repoTags.has(reference.familiar) === true) {
      lines.push({ status: `Digest: ${manifestDigest(image)}` }, { status: `Status: Image is up to date for ${reference.familiar}` });
      return { reference, lines };
    }
    const layers = layerIds(image);
    for (const layer of layers) lines.push({ status: 'Pulling fs layer', progressDetail: {}, id: layer });
    for (const [index, layer] of layers.entries()) {
      const total = image.layers[index] ?? 0;
      for (const fraction of [0.25, 0.5, 1]) {
        const current = Math.round(total * fraction);
        lines.push({ status: 'Downloading', progressDetail: { current, total }, progress: progressBar(current, total), id: layer });
      }
      lines.push({ status: 'Verifying Checksum', progressDetail: {}, id: layer }, { status: 'Download complete', progressDetail: {}, id: layer });
    }
    for (const [index, layer] of layers.entries()) {
      const total = image.layers[index] ?? 0;
      lines.push({ status: 'Extracting', progressDetail: { current: total, total }, progress: progressBar(total, total), id: layer }, { status: 'Pull complete', progressDetail: {}, id: layer });
    }
    lines.push({ status: `Digest: ${manifestDigest(image)}` }, { status: `Status: Downloaded newer image for ${reference.familiar}` });
    const local = existing ?? { definition: image, id, repoTags: new Set<string>(), repoDigest: `${reference.familiar.slice(0, reference.familiar.lastIndexOf(':'))}@${manifestDigest(image)}`, pulledAt: new Date() };
    local.repoTags.add(reference.familiar);
    this.images.set(id, local);
    return { reference, lines };
  }

  /**
   * `DELETE /images/{name}` (`docker rmi`): untags the reference (an id: every tag) and deletes the
   * image when no tag is left; refused (409) while a container uses it, unless `force`.
   */
  removeImage(reference: string, force: boolean): Record<string, string>[] {
    const image = this.findImage(reference);
    if (image === undefined) throw new EngineError(404, `No such image: ${reference}`);
    const user = [...this.containers.values()].find((container) => container.image === image);
    if (user !== undefined && !force) {
      throw new EngineError(409, `conflict: unable to remove repository reference "${reference}" (must force) - container ${user.id.slice(0, 12)} is using its referenced image ${image.id.slice(7, 19)}`);
    }
    const parsed = parseImageReference(reference);
    const byId = image.id.startsWith(reference.startsWith('sha256:') ? reference : `sha256:${reference}`);
    const untagged = byId || parsed === undefined ? [...image.repoTags] : [parsed.familiar];
    for (const tag of untagged) image.repoTags.delete(tag);
    const answer: Record<string, string>[] = untagged.map((tag) => ({ Untagged: tag }));
    if (image.repoTags.size === 0) {
      answer.push({ Untagged: image.repoDigest }, { Deleted: image.id });
      this.images.delete(image.id);
    }
    return answer;
  }

  /** `POST /containers/create`: 404 `No such image` when the image is not pulled (the CLI then pulls it). */
  create(body: Partial<ContainerConfig> & { HostConfig?: Record<string, unknown> }, name: string | undefined): Container {
    const imageName = typeof body.Image === 'string' ? body.Image : '';
    if (imageName === '') throw new EngineError(400, 'Config cannot be empty in order to create a container');
    const image = this.findImage(imageName);
    if (image === undefined) {
      const parsed = parseImageReference(imageName);
      throw new EngineError(404, `No such image: ${parsed?.familiar ?? imageName}`);
    }
    if (name !== undefined && name !== '') {
      if (!/^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(name)) throw new EngineError(400, `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
      const clash = this.find(name);
      if (clash !== undefined && clash.name === name.replace(/^\//, '')) {
        throw new EngineError(409, `Conflict. The container name "/${clash.name}" is already in use by container "${clash.id}". You have to remove (or rename) that container to be able to reuse that name.`);
      }
    }
    const id = randomBytes(32).toString('hex');
    const config: ContainerConfig = {
      Image: imageName,
      Cmd: Array.isArray(body.Cmd) && body.Cmd.length > 0 ? body.Cmd.map(String) : null,
      Entrypoint: Array.isArray(body.Entrypoint) && body.Entrypoint.length > 0 ? body.Entrypoint.map(String) : null,
      Env: [...image.definition.env, ...(Array.isArray(body.Env) ? body.Env.map(String) : [])],
      Tty: body.Tty === true,
      OpenStdin: body.OpenStdin === true,
      StdinOnce: body.StdinOnce === true,
      AttachStdin: body.AttachStdin === true,
      AttachStdout: body.AttachStdout !== false,
      AttachStderr: body.AttachStderr !== false,
      WorkingDir: typeof body.WorkingDir === 'string' ? body.WorkingDir : '',
      Hostname: typeof body.Hostname === 'string' && body.Hostname !== '' ? body.Hostname : id.slice(0, 12),
      User: typeof body.User === 'string' ? body.User : '',
      Labels: typeof body.Labels === 'object' && body.Labels !== null ? body.Labels : {},
    };
    const container: Container = {
      id,
      name: name !== undefined && name !== '' ? name.replace(/^\//, '') : this.#generatedName(),
      image,
      config,
      hostConfig: body.HostConfig ?? {},
      created: new Date(),
      status: 'created',
      exitCode: 0,
      error: '',
      pid: 0,
      startedAt: undefined,
      finishedAt: undefined,
      output: [],
      fs: containerFileSystem(config.Hostname, image.definition.files),
    };
    this.containers.set(id, container);
    return container;
  }

  /** A container by full id, unique id prefix or name (`/name` too). */
  find(idOrName: string): Container | undefined {
    const wanted = idOrName.replace(/^\//, '');
    const exact = this.containers.get(wanted);
    if (exact !== undefined) return exact;
    for (const container of this.containers.values()) if (container.name === wanted) return container;
    const prefixed = [...this.containers.values()].filter((container) => container.id.startsWith(wanted));
    return prefixed.length === 1 ? prefixed[0] : undefined;
  }

  /** The argv a container runs: the entrypoint, then the command (the image's unless given). */
  argv(container: Container): string[] {
    const entrypoint = container.config.Entrypoint ?? container.image.definition.entrypoint ?? [];
    const cmd = container.config.Cmd ?? (container.config.Entrypoint === null ? [...container.image.definition.cmd] : []);
    return [...entrypoint, ...cmd];
  }

  /**
   * `POST /containers/{id}/start`. The process runs in the background; a command the image does not
   * have fails the start like runc does (exit 127).
   */
  start(container: Container): 'started' | 'already' {
    if (container.status === 'running') return 'already';
    if (container.status === 'removing') throw new EngineError(409, `container ${container.id} is marked for removal and cannot be started`);
    const argv = this.argv(container);
    const executable = argv[0] ?? '';
    if (!this.#canExecute(container, executable)) {
      container.status = 'exited';
      container.exitCode = 127;
      container.finishedAt = new Date();
      container.error = `exec: "${executable}": executable file not found in $PATH`;
      this.#exited(container);
      throw new EngineError(
        400,
        `failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: exec: "${executable}": executable file not found in $PATH: unknown`,
      );
    }
    container.status = 'running';
    container.pid = randomInt(1000, 60_000);
    container.startedAt = new Date();
    container.finishedAt = undefined;
    container.exitCode = 0;
    container.error = '';
    // The process starts once the caller has answered the start request (attach is already waiting).
    setImmediate(() => {
      this.#run(container, argv).then(
        (code) => this.#finish(container, code),
        (error: unknown) => {
          this.#emit(container, { stream: 2, data: Buffer.from(`${(error as Error).message}\n`) });
          this.#finish(container, 1);
        },
      );
    });
    return 'started';
  }

  /** Waits for `condition`: `not-running` (now if not running), `next-exit`, or `removed`; resolves with the exit code. */
  wait(container: Container, condition: string): Promise<number> {
    if ((condition === 'not-running' || condition === '') && container.status !== 'running') return Promise.resolve(container.exitCode);
    if (condition === 'removed' && !this.containers.has(container.id)) return Promise.resolve(container.exitCode);
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(container) ?? [];
      waiters.push({ condition: condition === 'removed' ? 'removed' : 'next-exit', resolve });
      this.#waiters.set(container, waiters);
    });
  }

  /** Follows the container's output: `listener` gets each chunk, then `undefined` when the process ended. Returns the unsubscribe. */
  subscribe(container: Container, listener: (chunk: OutputChunk | undefined) => void): () => void {
    const listeners = this.#listeners.get(container) ?? new Set();
    listeners.add(listener);
    this.#listeners.set(container, listeners);
    return () => listeners.delete(listener);
  }

  /** Bytes for the container's stdin (from an attached client); `end` closes it. */
  writeStdin(container: Container, data: Buffer | undefined): void {
    const listener = this.#stdinListeners.get(container);
    if (listener !== undefined) {
      listener(data);
      return;
    }
    const stdin = this.#stdinOf(container);
    if (data === undefined) stdin.resolve(Buffer.concat(stdin.chunks));
    else stdin.chunks.push(data);
  }

  /** `DELETE /containers/{id}`: a running container only with `force` (it is killed). */
  remove(container: Container, force: boolean): void {
    if (container.status === 'running' && !force) {
      throw new EngineError(409, `cannot remove container "/${container.name}": container is running: stop the container before removing or force remove`);
    }
    if (container.status === 'running') this.#finish(container, KILLED);
    this.#removeNow(container);
  }

  /** `docker stop`/`kill`: the process ends with `code` (143 for SIGTERM, 137 for SIGKILL). */
  kill(container: Container, code: number): void {
    this.#finish(container, code);
  }

  /** dockerd stopping: running containers are killed. */
  stopAll(): void {
    for (const container of this.containers.values()) if (container.status === 'running') this.#finish(container, KILLED);
  }

  #removeNow(container: Container): void {
    if (!this.containers.has(container.id)) return;
    this.containers.delete(container.id);
    const waiters = this.#waiters.get(container) ?? [];
    this.#waiters.delete(container);
    for (const waiter of waiters) waiter.resolve(container.exitCode);
    this.#listeners.delete(container);
    this.#stdin.delete(container);
    this.#stdinListeners.delete(container);
  }

  #finish(container: Container, code: number): void {
    if (container.status !== 'running') return;
    container.status = 'exited';
    container.exitCode = code;
    container.finishedAt = new Date();
    container.pid = 0;
    this.#exited(container);
  }

  #exited(container: Container): void {
    for (const listener of this.#listeners.get(container) ?? []) listener(undefined);
    this.#listeners.delete(container);
    const waiters = this.#waiters.get(container) ?? [];
    const stillWaiting = waiters.filter((waiter) => waiter.condition === 'removed');
    for (const waiter of waiters) if (waiter.condition === 'next-exit') waiter.resolve(container.exitCode);
    this.#waiters.set(container, stillWaiting);
    if (container.hostConfig.AutoRemove === true) this.#removeNow(container);
  }

  #emit(container: Container, chunk: OutputChunk): void {
    container.output.push(chunk);
    for (const listener of this.#listeners.get(container) ?? []) listener(chunk);
  }

  #stdinOf(container: Container): { promise: Promise<Buffer>; resolve: (data: Buffer) => void; chunks: Buffer[] } {
    let stdin = this.#stdin.get(container);
    if (stdin === undefined) {
      let resolve: (data: Buffer) => void = () => {};
      const promise = new Promise<Buffer>((done) => {
        resolve = done;
      });
      stdin = { promise, resolve, chunks: [] };
      this.#stdin.set(container, stdin);
    }
    return stdin;
  }

  #canExecute(container: Container, executable: string): boolean {
    if (container.image.definition.program === 'hello') return executable === '/hello';
    if (executable === '') return false;
    const base = executable.slice(executable.lastIndexOf('/') + 1);
    return Object.hasOwn(SHELL_COMMANDS, base) || container.fs.lookup(executable)?.type === 'file';
  }

  async #run(container: Container, argv: string[]): Promise<number> {
    const stdout = (data: string | Buffer): void => this.#emit(container, { stream: 1, data: toBuffer(data) });
    const stderr = (data: string | Buffer): void => this.#emit(container, { stream: 2, data: toBuffer(data) });
    if (container.image.definition.program === 'hello') {
      stdout(HELLO_FROM_DOCKER);
      return 0;
    }
    // No systemd, no network, no package manager: a container, not a machine.
    const shell = new EmulatedShell(container.fs, { hostname: container.config.Hostname });
    if (container.config.OpenStdin && container.config.Tty && argv.length === 1 && INTERACTIVE_SHELLS.has(argv[0] ?? '')) return this.#interactive(container, shell);
    const stdin = container.config.OpenStdin ? this.#stdinOf(container).promise : Promise.resolve(Buffer.alloc(0));
    return shell.exec(argv.map(shellQuote).join(' '), { stdout, stderr, stdin });
  }

  /**
   * `docker run -it IMAGE sh`: a shell at a prompt on the container's terminal. The terminal echoes
   * what is typed (backspace erases, Ctrl-C drops the line, Ctrl-D on an empty line ends the shell);
   * each line runs in the emulated shell; `exit [N]` ends it with N.
   */
  #interactive(container: Container, shell: EmulatedShell): Promise<number> {
    const write = (text: string | Buffer): void => {
      const data = typeof text === 'string' ? text : text.toString('utf8');
      this.#emit(container, { stream: 1, data: Buffer.from(data.replace(/\r?\n/g, '\r\n')) });
    };
    const prompt = container.image.definition.prompt.replace('HOST', container.config.Hostname);
    return new Promise<number>((resolve) => {
      let line = '';
      let chain = Promise.resolve();
      let ended = false;
      const end = (code: number): void => {
        if (ended) return;
        ended = true;
        this.#stdinListeners.delete(container);
        resolve(code);
      };
      const submit = (text: string): void => {
        chain = chain.then(async () => {
          if (ended) return;
          const exit = /^\s*exit(?:\s+(\d+))?\s*$/.exec(text);
          if (exit !== null) {
            end(Number(exit[1] ?? 0));
            return;
          }
          if (text.trim() !== '') await shell.exec(text, { stdout: write, stderr: write, stdin: Promise.resolve(Buffer.alloc(0)) });
          write(prompt);
        });
      };
      const onData = (data: Buffer | undefined): void => {
        if (data === undefined) {
          chain = chain.then(() => end(0));
          return;
        }
        for (const char of data.toString('utf8')) {
          if (char === '\r' || char === '\n') {
            write('\n');
            submit(line);
            line = '';
          } else if (char === '\x7f' || char === '\b') {
            if (line !== '') {
              line = line.slice(0, -1);
              write('\b \b');
            }
          } else if (char === '\x03') {
            write(`^C\n${prompt}`);
            line = '';
          } else if (char === '\x04') {
            if (line === '') {
              write('\n');
              chain = chain.then(() => end(0));
            }
          } else if (char >= ' ' || char === '\t') {
            line += char;
            write(char);
          }
        }
      };
      this.#stdinListeners.set(container, onData);
      write(prompt);
      // What was typed before the shell started.
      const early = this.#stdin.get(container);
      this.#stdin.delete(container);
      for (const chunk of early?.chunks ?? []) onData(chunk);
    });
  }

  #generatedName(): string {
    for (;;) {
      const name = `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${SCIENTISTS[randomInt(SCIENTISTS.length)]}`;
      if (this.find(name)?.name !== name) return name;
    }
  }
}

/** A container's root filesystem: the usual top-level folders, /etc/hostname, /etc/hosts. */
function containerFileSystem(hostname: string, files: Readonly<Record<string, string>>): MemoryFileSystem {
  const fs = new MemoryFileSystem();
  for (const dir of ['/bin', '/dev', '/etc', '/home', '/proc', '/root', '/sys', '/tmp', '/usr', '/usr/bin', '/usr/sbin', '/var', '/var/log']) fs.mkdir(dir, { recursive: true });
  fs.writeFile('/etc/hostname', `${hostname}\n`);
  fs.writeFile('/etc/hosts', `127.0.0.1\tlocalhost\n172.17.0.2\t${hostname}\n`);
  fs.writeFile('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n');
  for (const [path, content] of Object.entries(files)) fs.writeFile(path, content);
  return fs;
}

function progressBar(current: number, total: number): string {
  const width = 50;
  const filled = total === 0 ? width : Math.floor((current / total) * width);
  const bar = filled >= width ? '='.repeat(width) : `${'='.repeat(Math.max(0, filled - 1))}>${' '.repeat(width - Math.max(1, filled))}`;
  return `[${bar}]  ${humanBytes(current)}/${humanBytes(total)}`;
}

function humanBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes}B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(2)}kB`;
  return `${(bytes / 1_000_000).toFixed(2)}MB`;
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./=:,+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function toBuffer(data: string | Buffer): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}
