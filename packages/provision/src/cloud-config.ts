import { createRequire } from 'node:module';
import { daemonJson, guestPaths, systemdDropIn } from './daemon-config.ts';
import type { EngineOptions } from './engine-options.ts';
import type { MachineHostKey } from './host-key.ts';

type YamlModule = typeof import('yaml');

let yamlModule: YamlModule | undefined;

/** `yaml` is loaded on first use (synchronously: its CommonJS build), so importing this package stays cheap. */
function loadYaml(): YamlModule {
  yamlModule ??= createRequire(import.meta.url)('yaml') as YamlModule;
  return yamlModule;
}

/** The shell command that downloads and runs the engine install script (the URL is validated to need no escaping). */
export function installCommand(installUrl: string, sudo: boolean): string {
  return `curl -fsSL '${installUrl}' -o ${guestPaths.installScript} && ${sudo ? 'sudo ' : ''}sh ${guestPaths.installScript}`;
}

/**
 * The `#cloud-config` user data that makes a machine a Docker host while it boots: the machine's SSH
 * host key (`ssh_keys`, so the first connection is verified), daemon.json and the systemd drop-in
 * (`write_files`), and the engine install (`runcmd`). With `engine.noProvision` only the host key is
 * set. The certificates are not here: the server certificate needs the machine's IP, so they are
 * uploaded over SSH afterwards (see `provisionDocker`).
 */
export function buildCloudConfig(options: { engine: EngineOptions; hostKey?: MachineHostKey }): string {
  const config: Record<string, unknown> = {};
  if (options.hostKey !== undefined) {
    config.ssh_deletekeys = true;
    config.ssh_keys = { ed25519_private: options.hostKey.privateKey, ed25519_public: options.hostKey.publicKey };
  }
  if (!options.engine.noProvision) {
    config.write_files = [
      { path: guestPaths.daemonJson, content: daemonJson(options.engine), permissions: '0644', owner: 'root:root' },
      { path: guestPaths.systemdDropIn, content: systemdDropIn(options.engine), permissions: '0644', owner: 'root:root' },
    ];
    config.runcmd = [
      ['sh', '-c', installCommand(options.engine.installUrl, false)],
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', 'docker'],
    ];
  }
  const yaml = loadYaml();
  const document = new yaml.Document(config);
  // runcmd entries read best as one-line lists, their words double-quoted (old PyYAML refuses a
  // `:` inside an unquoted word of a flow list, as in a URL).
  const runcmd = document.get('runcmd', true);
  if (yaml.isSeq(runcmd)) {
    for (const item of runcmd.items) {
      if (!yaml.isSeq(item)) continue;
      item.flow = true;
      for (const word of item.items) if (yaml.isScalar(word)) word.type = 'QUOTE_DOUBLE';
    }
  }
  return `#cloud-config\n${document.toString({ lineWidth: 0, blockQuote: 'literal' })}`;
}
