import type { MemoryFileSystem } from '../shell/memory-filesystem.ts';
import type { DaemonListener, DaemonSettings } from './dockerd.ts';

/** The docker.service unit the docker-ce package installs (Ubuntu 24.04). */
export const DOCKER_UNIT_PATH = '/usr/lib/systemd/system/docker.service';
export const DOCKER_DROP_IN_DIR = '/etc/systemd/system/docker.service.d';
export const DAEMON_JSON = '/etc/docker/daemon.json';

export const DOCKER_UNIT = `[Unit]
Description=Docker Application Container Engine
Documentation=https://docs.docker.com
After=network-online.target docker.socket firewalld.service containerd.service time-set.target
Wants=network-online.target containerd.service
Requires=docker.socket

[Service]
Type=notify
ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock
ExecReload=/bin/kill -s HUP $MAINPID
TimeoutStartSec=0
RestartSec=2
Restart=always
StartLimitBurst=3
StartLimitInterval=60s
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
Delegate=yes
KillMode=process
OOMScoreAdjust=-500

[Install]
WantedBy=multi-user.target
`;

/** docker.service as systemd loaded it: the unit file plus its drop-ins, in order. */
export interface LoadedUnit {
  /** The unit and drop-in texts it was built from, to notice changes on disk. */
  source: string;
  /** The effective `ExecStart=` argv. */
  execStart: string[];
  environment: string[];
}

/** Reads docker.service and `docker.service.d/*.conf` the way systemd merges them. */
export function loadDockerUnit(fs: MemoryFileSystem): LoadedUnit | undefined {
  if (!fs.exists(DOCKER_UNIT_PATH)) return undefined;
  const texts = [fs.readFile(DOCKER_UNIT_PATH).toString('utf8')];
  if (fs.lookup(DOCKER_DROP_IN_DIR)?.type === 'directory') {
    for (const [name, node] of fs.readdir(DOCKER_DROP_IN_DIR)) if (node.type === 'file' && name.endsWith('.conf')) texts.push(node.data.toString('utf8'));
  }
  let execStart: string[] = [];
  const environment: string[] = [];
  for (const text of texts) {
    let section = '';
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
      const header = /^\[(.+)\]$/.exec(line);
      if (header !== null) {
        section = header[1]!;
        continue;
      }
      if (section !== 'Service') continue;
      const equals = line.indexOf('=');
      if (equals === -1) continue;
      const key = line.slice(0, equals).trim();
      const value = line.slice(equals + 1).trim();
      if (key === 'ExecStart') execStart = value === '' ? [] : value.split(/\s+/);
      else if (key === 'Environment') environment.push(...value.split(/\s+(?=(?:[^"]*"[^"]*")*[^"]*$)/).map((part) => part.replace(/^"|"$/g, '')));
    }
  }
  return { source: texts.join('\0'), execStart, environment };
}

/** daemon.json keys dockerd 27 accepts (unknown keys stop it, as the real daemon does). */
const DAEMON_KEYS = new Set([
  'allow-direct-routing', 'allow-nondistributable-artifacts', 'api-cors-header', 'authorization-plugins', 'bip', 'bip6', 'bridge', 'builder',
  'cdi-spec-dirs', 'cgroup-parent', 'containerd', 'containerd-namespace', 'containerd-plugins-namespace', 'cpu-rt-period', 'cpu-rt-runtime',
  'cri-containerd', 'data-root', 'debug', 'default-address-pools', 'default-cgroupns-mode', 'default-gateway', 'default-gateway-v6',
  'default-ipc-mode', 'default-network-opts', 'default-runtime', 'default-shm-size', 'default-ulimits', 'dns', 'dns-opts', 'dns-search',
  'exec-opts', 'exec-root', 'experimental', 'features', 'fixed-cidr', 'fixed-cidr-v6', 'group', 'host-gateway-ip', 'host-gateway-ips', 'hosts',
  'http-proxy', 'https-proxy', 'icc', 'init', 'init-path', 'insecure-registries', 'ip', 'ip-forward', 'ip-forward-no-drop', 'ip-masq',
  'ip6tables', 'iptables', 'ipv6', 'labels', 'live-restore', 'log-driver', 'log-format', 'log-level', 'log-opts', 'max-concurrent-downloads',
  'max-concurrent-uploads', 'max-download-attempts', 'metrics-addr', 'min-api-version', 'mtu', 'no-new-privileges', 'no-proxy',
  'node-generic-resources', 'oom-score-adjust', 'pidfile', 'proxies', 'raw-logs', 'registry-mirrors', 'runtimes', 'seccomp-profile',
  'selinux-enabled', 'shutdown-timeout', 'storage-driver', 'storage-opts', 'swarm-default-advertise-addr', 'tls', 'tlscacert', 'tlscert',
  'tlskey', 'tlsverify', 'userland-proxy', 'userland-proxy-path', 'userns-remap',
]);

/** Flags of `ExecStart` that conflict with a daemon.json key of the same name. */
const FLAG_KEYS: Readonly<Record<string, string>> = {
  '-H': 'hosts', '--host': 'hosts', '--tls': 'tls', '--tlsverify': 'tlsverify', '--tlscacert': 'tlscacert', '--tlscert': 'tlscert',
  '--tlskey': 'tlskey', '--label': 'labels', '--storage-driver': 'storage-driver', '-s': 'storage-driver', '--insecure-registry': 'insecure-registries',
  '--registry-mirror': 'registry-mirrors',
};

/**
 * Works out what dockerd would do when started with `execStart` on a machine whose files are
 * `fs`: the settings to serve with, or the error line dockerd prints before exiting 1.
 */
export function daemonSettings(fs: MemoryFileSystem, execStart: readonly string[], machine: { hostname: string; publicIp: string; id: string }): DaemonSettings | { error: string } {
  let config: Record<string, unknown> = {};
  if (fs.exists(DAEMON_JSON)) {
    const text = fs.readFile(DAEMON_JSON).toString('utf8');
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('json: cannot unmarshal into Go value of type map[string]interface {}');
      config = parsed as Record<string, unknown>;
    } catch (error) {
      return { error: `unable to configure the Docker daemon with file ${DAEMON_JSON}: ${(error as Error).message}` };
    }
    const unknown = Object.keys(config).filter((key) => !DAEMON_KEYS.has(key));
    if (unknown.length > 0) return { error: `unable to configure the Docker daemon with file ${DAEMON_JSON}: the following directives don't match any configuration option: ${unknown.join(', ')}` };
  }
  const flags: Record<string, string[]> = {};
  const switches = new Set<string>();
  for (let index = 1; index < execStart.length; index++) {
    const word = execStart[index]!;
    const [name = '', inline] = word.split(/=(.*)/s, 2);
    const key = FLAG_KEYS[name];
    if (key === undefined) continue;
    if (['tls', 'tlsverify'].includes(key)) {
      switches.add(key);
      continue;
    }
    const value = inline ?? execStart[++index] ?? '';
    flags[key] = [...(flags[key] ?? []), value];
  }
  const conflicts = Object.keys(flags)
    .concat([...switches])
    .filter((key) => config[key] !== undefined);
  if (conflicts.length > 0) {
    const detail = conflicts.map((key) => `${key}: (from flag: [${(flags[key] ?? ['true']).join(' ')}], from file: ${formatGo(config[key])})`).join(', ');
    return { error: `unable to configure the Docker daemon with file ${DAEMON_JSON}: the following directives are specified both as a flag and in the configuration file: ${detail}` };
  }
  const hosts = [...(flags.hosts ?? []), ...stringList(config.hosts)];
  const listeners: DaemonListener[] = [];
  for (const host of hosts) {
    if (host.startsWith('unix://') || host.startsWith('fd://')) continue;
    const tcp = /^tcp:\/\/(\[[^\]]*\]|[^:/]*)?:(\d+)\/?$/.exec(host);
    if (tcp === null) return { error: `failed to load listeners: error parsing -H ${host}: invalid bind address (${host})` };
    const address = (tcp[1] ?? '').replace(/^\[|\]$/g, '');
    const port = Number(tcp[2]);
    if (port < 1 || port > 65535) return { error: `failed to load listeners: error parsing -H ${host}: invalid port` };
    // Every address of the machine is its public IP here; a loopback bind is not reachable from outside.
    if (['', '0.0.0.0', '::', machine.publicIp].includes(address)) listeners.push({ host: machine.publicIp, port });
  }
  const tlsVerify = switches.has('tlsverify') || config.tlsverify === true;
  const tlsOn = tlsVerify || switches.has('tls') || config.tls === true;
  const settings: DaemonSettings = {
    listeners,
    hostname: machine.hostname,
    labels: [...(flags.labels ?? []), ...stringList(config.labels)],
    storageDriver: typeof config['storage-driver'] === 'string' ? config['storage-driver'] : (flags['storage-driver']?.[0] ?? 'overlay2'),
    registryMirrors: stringList(config['registry-mirrors']),
    insecureRegistries: stringList(config['insecure-registries']),
    id: machine.id,
  };
  if (!tlsOn || listeners.length === 0) return settings;
  const pathOf = (key: string, fallback: string): string => (typeof config[key] === 'string' ? (config[key] as string) : (flags[key]?.[0] ?? fallback));
  const certPath = pathOf('tlscert', '/root/.docker/cert.pem');
  const keyPath = pathOf('tlskey', '/root/.docker/key.pem');
  const caPath = pathOf('tlscacert', '/root/.docker/ca.pem');
  const read = (path: string): Buffer | undefined => (fs.lookup(path)?.type === 'file' ? fs.readFile(path) : undefined);
  const cert = read(certPath);
  const key = read(keyPath);
  if (cert === undefined || key === undefined) {
    const missing = cert === undefined ? certPath : keyPath;
    return { error: `failed to load listeners: could not load X509 key pair (cert: "${certPath}", key: "${keyPath}"): open ${missing}: no such file or directory` };
  }
  const ca = read(caPath);
  if (tlsVerify && ca === undefined) return { error: `failed to load listeners: could not read CA certificate "${caPath}": open ${caPath}: no such file or directory` };
  return { ...settings, tls: { cert, key, ...(ca === undefined ? {} : { ca }), verify: tlsVerify } };
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

function formatGo(value: unknown): string {
  return Array.isArray(value) ? `[${value.join(' ')}]` : String(value);
}
