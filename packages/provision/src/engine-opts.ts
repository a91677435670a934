/**
 * `--engine-opt key=value` → daemon.json. The reference passed these to dockerd as `--key=value`
 * flags; here dockerd is configured through daemon.json only (a flag and a daemon.json key for the
 * same option make dockerd refuse to start), so each known dockerd option maps to its daemon.json key
 * and value type. Unknown options and the ones this tool owns (hosts, TLS) are refused up front.
 */

type OptKind =
  | { kind: 'string'; key: string }
  | { kind: 'bool'; key: string }
  | { kind: 'int'; key: string }
  /** Repeatable: each value is appended to a list. */
  | { kind: 'list'; key: string }
  /** `name=value` pairs into an object (`log-opt max-size=10m`). */
  | { kind: 'map'; key: string }
  /** `name=true|false` pairs into an object of booleans (`feature containerd-snapshotter=true`). */
  | { kind: 'bool-map'; key: string }
  /** `nofile=1024:2048` → `{ nofile: { Name, Soft, Hard } }`. */
  | { kind: 'ulimit'; key: string }
  /** `base=10.10.0.0/16,size=24` → `[{ base, size }]`. */
  | { kind: 'address-pool'; key: string };

const s = (key: string): OptKind => ({ kind: 'string', key });
const b = (key: string): OptKind => ({ kind: 'bool', key });
const i = (key: string): OptKind => ({ kind: 'int', key });
const l = (key: string): OptKind => ({ kind: 'list', key });
const m = (key: string): OptKind => ({ kind: 'map', key });

/** dockerd flag name → daemon.json key and type (dockerd 27 `dockerd --help` / daemon.json reference). */
const engineOptTable: Readonly<Record<string, OptKind>> = {
  'allow-nondistributable-artifacts': l('allow-nondistributable-artifacts'),
  'authorization-plugin': l('authorization-plugins'),
  bip: s('bip'),
  bridge: s('bridge'),
  'cgroup-parent': s('cgroup-parent'),
  'cpu-rt-period': i('cpu-rt-period'),
  'cpu-rt-runtime': i('cpu-rt-runtime'),
  'data-root': s('data-root'),
  graph: s('data-root'),
  debug: b('debug'),
  'default-address-pool': { kind: 'address-pool', key: 'default-address-pools' },
  'default-cgroupns-mode': s('default-cgroupns-mode'),
  'default-gateway': s('default-gateway'),
  'default-gateway-v6': s('default-gateway-v6'),
  'default-ipc-mode': s('default-ipc-mode'),
  'default-runtime': s('default-runtime'),
  'default-shm-size': s('default-shm-size'),
  'default-ulimit': { kind: 'ulimit', key: 'default-ulimits' },
  dns: l('dns'),
  'dns-opt': l('dns-opts'),
  'dns-search': l('dns-search'),
  'exec-opt': l('exec-opts'),
  'exec-root': s('exec-root'),
  experimental: b('experimental'),
  feature: { kind: 'bool-map', key: 'features' },
  'fixed-cidr': s('fixed-cidr'),
  'fixed-cidr-v6': s('fixed-cidr-v6'),
  group: s('group'),
  'host-gateway-ip': s('host-gateway-ip'),
  icc: b('icc'),
  init: b('init'),
  'init-path': s('init-path'),
  'insecure-registry': l('insecure-registries'),
  ip: s('ip'),
  'ip-forward': b('ip-forward'),
  'ip-masq': b('ip-masq'),
  iptables: b('iptables'),
  ip6tables: b('ip6tables'),
  ipv6: b('ipv6'),
  label: l('labels'),
  'live-restore': b('live-restore'),
  'log-driver': s('log-driver'),
  'log-format': s('log-format'),
  'log-level': s('log-level'),
  'log-opt': m('log-opts'),
  'max-concurrent-downloads': i('max-concurrent-downloads'),
  'max-concurrent-uploads': i('max-concurrent-uploads'),
  'max-download-attempts': i('max-download-attempts'),
  metrics: s('metrics-addr'),
  'metrics-addr': s('metrics-addr'),
  mtu: i('mtu'),
  'no-new-privileges': b('no-new-privileges'),
  'node-generic-resource': l('node-generic-resources'),
  'oom-score-adjust': i('oom-score-adjust'),
  pidfile: s('pidfile'),
  'registry-mirror': l('registry-mirrors'),
  'seccomp-profile': s('seccomp-profile'),
  'selinux-enabled': b('selinux-enabled'),
  'shutdown-timeout': i('shutdown-timeout'),
  'storage-driver': s('storage-driver'),
  'storage-opt': l('storage-opts'),
  'swarm-default-advertise-addr': s('swarm-default-advertise-addr'),
  'userland-proxy': b('userland-proxy'),
  'userland-proxy-path': s('userland-proxy-path'),
  'userns-remap': s('userns-remap'),
};

/** Options this tool sets itself: the engine must listen on TLS with the machine's certificates. */
const ownedOpts: Readonly<Record<string, string>> = {
  host: 'use --engine-port to change the port',
  hosts: 'use --engine-port to change the port',
  H: 'use --engine-port to change the port',
  tls: 'the engine always uses TLS with client verification',
  tlsverify: 'the engine always uses TLS with client verification',
  tlscacert: 'the certificates are managed by machine (machine regenerate-certs)',
  tlscert: 'the certificates are managed by machine (machine regenerate-certs)',
  tlskey: 'the certificates are managed by machine (machine regenerate-certs)',
  'config-file': 'machine writes /etc/docker/daemon.json itself',
  containerd: 'machine starts dockerd with --containerd=/run/containerd/containerd.sock',
  validate: 'not an option',
};

/** The options accepted by `--engine-opt`, sorted. */
export const knownEngineOpts: readonly string[] = Object.keys(engineOptTable).sort();

/**
 * Whether a comma-separated piece of `--engine-opt` starts a new option: `key=value`, or a bare
 * boolean option (`debug`). `size=24` continues `default-address-pool=base=…/16`.
 */
export function engineOptStandsAlone(piece: string): boolean {
  if (engineOptTable[stripDashes(piece)]?.kind === 'bool') return true;
  return piece.includes('=') && !/^(base|size)=/.test(piece);
}

/** What is wrong with one `--engine-opt` entry, in one line; undefined when it is fine. */
export function engineOptProblem(entry: string): string | undefined {
  try {
    parseEngineOpt(entry);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** One parsed `--engine-opt`: the daemon.json key and the value to set, append or merge. */
export interface ParsedEngineOpt {
  key: string;
  kind: OptKind['kind'];
  value: unknown;
}

/** Parses `key=value` (or a bare boolean option) into its daemon.json key and value; throws Error with one line. */
export function parseEngineOpt(entry: string): ParsedEngineOpt {
  const equals = entry.indexOf('=');
  const name = stripDashes(equals === -1 ? entry : entry.slice(0, equals)).trim();
  const raw = equals === -1 ? undefined : entry.slice(equals + 1);
  if (name === '') throw new Error(`"${entry}" has no option name; write key=value, e.g. log-driver=journald`);
  const owned = ownedOpts[name];
  if (owned !== undefined) throw new Error(`"${name}" cannot be overridden: ${owned}`);
  const spec = engineOptTable[name];
  if (spec === undefined) {
    const near = knownEngineOpts.filter((known) => known.startsWith(name.slice(0, 3))).slice(0, 3);
    const suggestion = near.length > 0 ? ` (did you mean ${near.join(', ')}?)` : '';
    throw new Error(`"${name}" is not a dockerd option machine knows${suggestion}; see the --engine-opt list in the README`);
  }
  if (raw === undefined && spec.kind !== 'bool') throw new Error(`"${name}" needs a value: ${name}=VALUE`);
  if (raw !== undefined && /[\n\r\0]/.test(raw)) throw new Error(`the value of "${name}" contains a line break`);
  const value = raw ?? 'true';
  switch (spec.kind) {
    case 'string':
    case 'list':
      if (value === '') throw new Error(`"${name}" needs a value: ${name}=VALUE`);
      return { key: spec.key, kind: spec.kind, value };
    case 'bool': {
      const lowered = value.toLowerCase();
      if (lowered === 'true' || lowered === '1') return { key: spec.key, kind: 'bool', value: true };
      if (lowered === 'false' || lowered === '0') return { key: spec.key, kind: 'bool', value: false };
      throw new Error(`"${name}" is true or false, got "${value}"`);
    }
    case 'int':
      if (!/^-?\d+$/.test(value)) throw new Error(`"${name}" is a whole number, got "${value}"`);
      return { key: spec.key, kind: 'int', value: Number(value) };
    case 'map': {
      const inner = value.indexOf('=');
      if (inner <= 0) throw new Error(`"${name}" takes name=value, e.g. ${name}=max-size=10m`);
      return { key: spec.key, kind: 'map', value: [value.slice(0, inner), value.slice(inner + 1)] };
    }
    case 'bool-map': {
      const inner = /^([^=]+)=(true|false|1|0)$/i.exec(value);
      if (inner === null) throw new Error(`"${name}" takes name=true|false, e.g. ${name}=containerd-snapshotter=true`);
      return { key: spec.key, kind: 'map', value: [inner[1], /^(true|1)$/i.test(inner[2] ?? '')] };
    }
    case 'ulimit': {
      const match = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(value);
      if (match === null) throw new Error(`"${name}" takes NAME=SOFT[:HARD], e.g. ${name}=nofile=1024:2048`);
      const soft = Number(match[2]);
      const hard = match[3] === undefined ? soft : Number(match[3]);
      return { key: spec.key, kind: 'ulimit', value: { Name: match[1], Soft: soft, Hard: hard } };
    }
    case 'address-pool': {
      const fields = Object.fromEntries(value.split(',').map((part) => part.split('=', 2) as [string, string]));
      const size = Number(fields.size);
      if (typeof fields.base !== 'string' || !/^[\d.:a-f]+\/\d+$/i.test(fields.base) || !Number.isInteger(size)) {
        throw new Error(`"${name}" takes base=CIDR,size=N, e.g. ${name}=base=10.10.0.0/16,size=24`);
      }
      return { key: spec.key, kind: 'address-pool', value: { base: fields.base, size } };
    }
  }
}

/** Applies parsed options onto a daemon.json object (lists append, maps merge, scalars replace). */
export function applyEngineOpts(config: Record<string, unknown>, entries: readonly string[]): void {
  for (const entry of entries) {
    const opt = parseEngineOpt(entry);
    switch (opt.kind) {
      case 'list':
      case 'address-pool': {
        const current = Array.isArray(config[opt.key]) ? (config[opt.key] as unknown[]) : [];
        if (!current.some((item) => JSON.stringify(item) === JSON.stringify(opt.value))) config[opt.key] = [...current, opt.value];
        break;
      }
      case 'map': {
        const [name, value] = opt.value as [string, unknown];
        config[opt.key] = { ...(config[opt.key] as Record<string, unknown> | undefined), [name]: value };
        break;
      }
      case 'ulimit': {
        const limit = opt.value as { Name: string };
        config[opt.key] = { ...(config[opt.key] as Record<string, unknown> | undefined), [limit.Name]: limit };
        break;
      }
      default:
        config[opt.key] = opt.value;
    }
  }
}

function stripDashes(name: string): string {
  return name.replace(/^-+/, '');
}
