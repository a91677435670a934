import { InvalidConfigError } from '@machine/driver-core';
import type { EngineOptions } from './engine-options.ts';
import { applyEngineOpts, parseEngineOpt } from './engine-opts.ts';

/** Where things live on the machine (the guest contract). */
export const guestPaths = {
  caCert: '/etc/docker/ca.pem',
  serverCert: '/etc/docker/server.pem',
  serverKey: '/etc/docker/server-key.pem',
  daemonJson: '/etc/docker/daemon.json',
  systemdDropIn: '/etc/systemd/system/docker.service.d/10-machine.conf',
  cloudInitLog: '/var/log/cloud-init-output.log',
  uploadDir: '/tmp/machine-provision',
  installScript: '/tmp/install-docker.sh',
} as const;

/**
 * The machine's `/etc/docker/daemon.json`: dockerd on the unix socket and on TLS port
 * `engine.port` with client verification against the uploaded CA, plus labels, registries, the
 * storage driver and every `--engine-opt` (mapped to its daemon.json key). Empty keys are left out.
 * Throws InvalidConfigError (one line) for an unknown, malformed or reserved `--engine-opt`.
 */
export function daemonConfig(engine: EngineOptions): Record<string, unknown> {
  for (const entry of engine.opts) {
    try {
      parseEngineOpt(entry);
    } catch (error) {
      throw new InvalidConfigError([{ flag: 'engine-opt', message: (error as Error).message }], { operation: 'config' });
    }
  }
  const config: Record<string, unknown> = {
    hosts: ['unix:///var/run/docker.sock', `tcp://0.0.0.0:${engine.port}`],
    tls: true,
    tlsverify: true,
    tlscacert: guestPaths.caCert,
    tlscert: guestPaths.serverCert,
    tlskey: guestPaths.serverKey,
  };
  if (engine.labels.length > 0) config.labels = [...engine.labels];
  if (engine.insecureRegistries.length > 0) config['insecure-registries'] = [...engine.insecureRegistries];
  if (engine.registryMirrors.length > 0) config['registry-mirrors'] = [...engine.registryMirrors];
  if (engine.storageDriver !== undefined && engine.storageDriver !== '') config['storage-driver'] = engine.storageDriver;
  applyEngineOpts(config, engine.opts);
  if (engine.storageDriver !== undefined && engine.storageDriver !== '' && config['storage-driver'] !== engine.storageDriver) {
    throw new InvalidConfigError(
      [{ flag: 'engine-opt', message: `storage-driver=${String(config['storage-driver'])} contradicts --engine-storage-driver ${engine.storageDriver}; keep one` }],
      { operation: 'config' },
    );
  }
  return config;
}

/** daemon.json as the file text (2-space JSON and a final newline). */
export function daemonJson(engine: EngineOptions): string {
  return `${JSON.stringify(daemonConfig(engine), null, 2)}\n`;
}

/**
 * The systemd drop-in `/etc/systemd/system/docker.service.d/10-machine.conf`: the packaged unit
 * starts dockerd with `-H fd://`, which conflicts with `hosts` in daemon.json, so ExecStart is
 * cleared and replaced; each `--engine-env` becomes an `Environment=` line.
 */
export function systemdDropIn(engine: EngineOptions): string {
  const lines = [
    '# Written by machine: dockerd reads its listeners and TLS files from /etc/docker/daemon.json.',
    '[Service]',
    'ExecStart=',
    'ExecStart=/usr/bin/dockerd --containerd=/run/containerd/containerd.sock',
  ];
  for (const entry of engine.env) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(entry) || /[\n\r\0]/.test(entry)) {
      throw new InvalidConfigError([{ flag: 'engine-env', message: `"${entry}" is not KEY=VALUE on one line` }], { operation: 'config' });
    }
    // systemd: double quotes group, backslash escapes, % starts a specifier.
    lines.push(`Environment="${entry.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%')}"`);
  }
  return `${lines.join('\n')}\n`;
}
