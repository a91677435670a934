import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type Container, type ContainerEngine, EngineError, type OutputChunk } from './docker-engine.ts';
import { imageId, layerIds } from './docker-images.ts';

/**
 * The Docker Engine API routes for containers and images that `docker run`, `pull`, `create`,
 * `start`, `attach`, `wait`, `logs`, `ps`, `rm` and `images` call, answered from a
 * {@link ContainerEngine}. Paths come without the `/v1.NN` prefix.
 */

/** What every answer carries (API version, server). */
export type EngineHeaders = Readonly<Record<string, string>>;

/** Answers `request` when it is a container or image route; false when it is not one. */
export async function answerEngineRoute(engine: ContainerEngine, headers: EngineHeaders, request: IncomingMessage, response: ServerResponse, path: string, query: URLSearchParams): Promise<boolean> {
  const method = request.method ?? 'GET';
  const json = (status: number, body: unknown): void => {
    response.writeHead(status, { ...headers, 'content-type': 'application/json' });
    response.end(`${JSON.stringify(body)}\n`);
  };
  const noContent = (status = 204): void => {
    response.writeHead(status, headers);
    response.end();
  };
  try {
    if (path === '/containers/create' && method === 'POST') {
      const body = (await readJson(request)) as Parameters<ContainerEngine['create']>[0];
      const container = engine.create(body, query.get('name') ?? undefined);
      json(201, { Id: container.id, Warnings: [] });
      return true;
    }
    if (path === '/containers/json' && method === 'GET') {
      const all = truthy(query.get('all'));
      const limit = Number(query.get('limit') ?? '-1');
      let containers = [...engine.containers.values()].filter((container) => all || container.status === 'running').sort((a, b) => b.created.getTime() - a.created.getTime());
      if (Number.isInteger(limit) && limit > 0) containers = containers.slice(0, limit);
      json(200, containers.map((container) => containerSummary(engine, container)));
      return true;
    }
    if (path === '/images/create' && method === 'POST') {
      const fromImage = query.get('fromImage') ?? '';
      if (fromImage === '') throw new EngineError(400, 'fromImage is required (import from a source is not supported here)');
      const { lines } = engine.pull(fromImage, query.get('tag') ?? undefined);
      response.writeHead(200, { ...headers, 'content-type': 'application/json' });
      for (const line of lines) response.write(`${JSON.stringify(line)}\r\n`);
      response.end();
      return true;
    }
    if (path === '/images/json' && method === 'GET') {
      json(
        200,
        [...engine.images.values()].map((image) => ({
          Id: image.id,
          ParentId: '',
          RepoTags: [...image.repoTags],
          RepoDigests: [image.repoDigest],
          Created: Math.floor(Date.parse(image.definition.created) / 1000),
          Size: image.definition.layers.reduce((sum, size) => sum + size, 0),
          SharedSize: -1,
          Labels: {},
          Containers: -1,
        })),
      );
      return true;
    }
    const removeImage = /^\/images\/(.+)$/.exec(path);
    if (removeImage !== null && method === 'DELETE') {
      json(200, engine.removeImage(decodeURIComponent(removeImage[1] ?? ''), truthy(query.get('force'))));
      return true;
    }
    const imageRoute = /^\/images\/(.+)\/json$/.exec(path);
    if (imageRoute !== null && method === 'GET') {
      const name = decodeURIComponent(imageRoute[1] ?? '');
      const image = engine.findImage(name);
      if (image === undefined) throw new EngineError(404, `No such image: ${name}`);
      json(200, {
        Id: image.id,
        RepoTags: [...image.repoTags],
        RepoDigests: [image.repoDigest],
        Created: image.definition.created,
        Config: { Cmd: image.definition.cmd, Entrypoint: image.definition.entrypoint, Env: image.definition.env, WorkingDir: '', Labels: null },
        Architecture: 'amd64',
        Os: 'linux',
        Size: image.definition.layers.reduce((sum, size) => sum + size, 0),
        RootFS: { Type: 'layers', Layers: layerIds(image.definition).map((id) => `sha256:${id}`) },
        Metadata: { LastTagTime: image.pulledAt.toISOString() },
      });
      return true;
    }
    const containerRoute = /^\/containers\/([^/]+)(?:\/([a-z]+))?$/.exec(path);
    if (containerRoute === null) return false;
    const [, rawId = '', action] = containerRoute;
    const container = engine.find(decodeURIComponent(rawId));
    if (container === undefined) throw new EngineError(404, `No such container: ${decodeURIComponent(rawId)}`);
    if (action === undefined && method === 'DELETE') {
      engine.remove(container, truthy(query.get('force')));
      noContent();
      return true;
    }
    if (action === 'json' && method === 'GET') {
      json(200, containerInspect(engine, container));
      return true;
    }
    if (action === 'start' && method === 'POST') {
      noContent(engine.start(container) === 'already' ? 304 : 204);
      return true;
    }
    if ((action === 'stop' || action === 'kill') && method === 'POST') {
      if (container.status !== 'running') {
        if (action === 'kill') throw new EngineError(409, `cannot kill container: ${container.id}: container ${container.id} is not running`);
        noContent(304);
        return true;
      }
      engine.kill(container, action === 'stop' ? 143 : 137);
      noContent();
      return true;
    }
    if (action === 'resize' && method === 'POST') {
      noContent(200);
      return true;
    }
    if (action === 'wait' && method === 'POST') {
      // The client waits for the headers before it starts the container: send them now.
      response.writeHead(200, { ...headers, 'content-type': 'application/json' });
      response.flushHeaders();
      const code = await engine.wait(container, query.get('condition') ?? 'not-running');
      response.end(`${JSON.stringify({ Error: null, StatusCode: code })}\n`);
      return true;
    }
    if (action === 'logs' && method === 'GET') {
      const stdout = truthy(query.get('stdout'));
      const stderr = truthy(query.get('stderr'));
      if (!stdout && !stderr) throw new EngineError(400, 'Bad parameters: you must choose at least one stream');
      const tail = query.get('tail');
      const tty = container.config.Tty;
      response.writeHead(200, { ...headers, 'content-type': tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream' });
      const wanted = (chunk: OutputChunk): boolean => (chunk.stream === 1 ? stdout : stderr);
      let chunks = container.output.filter(wanted);
      if (tail !== null && tail !== 'all' && Number.isInteger(Number(tail))) chunks = tailLines(chunks, Number(tail));
      for (const chunk of chunks) response.write(tty ? chunk.data : frame(chunk));
      if (!truthy(query.get('follow')) || container.status !== 'running') {
        response.end();
        return true;
      }
      const unsubscribe = engine.subscribe(container, (chunk) => {
        if (chunk === undefined) response.end();
        else if (wanted(chunk)) response.write(tty ? chunk.data : frame(chunk));
      });
      response.on('close', unsubscribe);
      return true;
    }
    return false;
  } catch (error) {
    if (error instanceof EngineError) {
      json(error.status, { message: error.message });
      return true;
    }
    if (error instanceof SyntaxError) {
      json(400, { message: `invalid JSON: ${error.message}` });
      return true;
    }
    throw error;
  }
}

/**
 * `POST /containers/{id}/attach` with `Upgrade: tcp`: answers 101 and hijacks the connection. The
 * container's output is streamed to it (multiplexed unless the container has a TTY), bytes from the
 * client go to its stdin, and the connection closes when the process ends.
 */
export function answerAttach(engine: ContainerEngine, headers: EngineHeaders, request: IncomingMessage, socket: Duplex, path: string, query: URLSearchParams): void {
  const refuse = (status: number, reason: string, message: string): void => {
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nApi-Version: ${headers['api-version'] ?? ''}\r\nConnection: close\r\n\r\n${JSON.stringify({ message })}\n`);
  };
  const route = /^\/containers\/([^/]+)\/attach$/.exec(path);
  if (route === null || request.method !== 'POST') {
    refuse(404, 'Not Found', 'page not found');
    return;
  }
  const container = engine.find(decodeURIComponent(route[1] ?? ''));
  if (container === undefined) {
    refuse(404, 'Not Found', `No such container: ${decodeURIComponent(route[1] ?? '')}`);
    return;
  }
  const tty = container.config.Tty;
  const lines = [
    'HTTP/1.1 101 UPGRADED',
    `Content-Type: ${tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream'}`,
    'Connection: Upgrade',
    'Upgrade: tcp',
    ...Object.entries(headers).map(([key, value]) => `${key}: ${value}`),
  ];
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  const stdout = truthy(query.get('stdout'));
  const stderr = truthy(query.get('stderr'));
  const write = (chunk: OutputChunk): void => {
    if ((chunk.stream === 1 && stdout) || (chunk.stream === 2 && stderr)) socket.write(tty ? chunk.data : frame(chunk));
  };
  if (truthy(query.get('logs'))) for (const chunk of container.output) write(chunk);
  if (!truthy(query.get('stream'))) {
    socket.end();
    return;
  }
  // A container that is not running yet (or any more) streams from its next start (`docker start -a`) to its exit.
  const unsubscribe = engine.subscribe(container, (chunk) => {
    if (chunk === undefined) socket.end();
    else write(chunk);
  });
  socket.on('close', unsubscribe);
  socket.on('error', unsubscribe);
  if (truthy(query.get('stdin')) && container.config.OpenStdin) {
    socket.on('data', (data: Buffer) => engine.writeStdin(container, data));
    socket.on('end', () => engine.writeStdin(container, undefined));
  }
}

function containerSummary(engine: ContainerEngine, container: Container): Record<string, unknown> {
  const argv = engine.argv(container);
  return {
    Id: container.id,
    Names: [`/${container.name}`],
    Image: container.config.Image,
    ImageID: imageId(container.image.definition),
    Command: argv.join(' '),
    Created: Math.floor(container.created.getTime() / 1000),
    Ports: [],
    Labels: container.config.Labels,
    State: container.status,
    Status: statusText(container),
    HostConfig: { NetworkMode: 'bridge' },
    NetworkSettings: { Networks: {} },
    Mounts: [],
  };
}

function containerInspect(engine: ContainerEngine, container: Container): Record<string, unknown> {
  const [path = '', ...args] = engine.argv(container);
  return {
    Id: container.id,
    Created: container.created.toISOString(),
    Path: path,
    Args: args,
    State: {
      Status: container.status,
      Running: container.status === 'running',
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      Pid: container.pid,
      ExitCode: container.exitCode,
      Error: container.error,
      StartedAt: container.startedAt?.toISOString() ?? '0001-01-01T00:00:00Z',
      FinishedAt: container.finishedAt?.toISOString() ?? '0001-01-01T00:00:00Z',
    },
    Image: container.image.id,
    Name: `/${container.name}`,
    RestartCount: 0,
    Driver: 'overlay2',
    Platform: 'linux',
    HostConfig: { AutoRemove: false, NetworkMode: 'bridge', ...container.hostConfig },
    Config: { ...container.config, Cmd: container.config.Cmd ?? container.image.definition.cmd },
    NetworkSettings: { Networks: {}, Ports: {} },
    Mounts: [],
  };
}

/** `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`, as `docker ps` shows it. */
export function statusText(container: Container, now = Date.now()): string {
  if (container.status === 'running') return `Up ${humanDuration(now - (container.startedAt?.getTime() ?? now))}`;
  if (container.status === 'created') return 'Created';
  if (container.status === 'removing') return 'Removal In Progress';
  return `Exited (${container.exitCode}) ${humanDuration(now - (container.finishedAt?.getTime() ?? now))} ago`;
}

/** Go's units.HumanDuration, as docker uses it. */
function humanDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.round(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(minutes / 60);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  return `${Math.round(hours / 24)} days`;
}

/** One frame of Docker's multiplexed stream: stream type, three zero bytes, the big-endian length, the data. */
function frame(chunk: OutputChunk): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt8(chunk.stream, 0);
  header.writeUInt32BE(chunk.data.length, 4);
  return Buffer.concat([header, chunk.data]);
}

function tailLines(chunks: readonly OutputChunk[], count: number): OutputChunk[] {
  const lines: OutputChunk[] = [];
  for (const chunk of chunks) {
    for (const line of chunk.data.toString('utf8').split(/(?<=\n)/)) if (line !== '') lines.push({ stream: chunk.stream, data: Buffer.from(line) });
  }
  return count <= 0 ? [] : lines.slice(-count);
}

function truthy(value: string | null): boolean {
  return value !== null && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text.trim() === '' ? {} : JSON.parse(text);
}
