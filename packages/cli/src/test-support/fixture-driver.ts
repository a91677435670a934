import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Writes an installable driver package `machine-driver-NAME` into `dir` (a MACHINE_DRIVER_PATH
 * folder): plain JavaScript with no imports, whose "cloud" is a folder of files (one per
 * instance) so several CLI processes share it. It has no SSH, like the reference's `none`.
 */
export async function writeFixtureDriver(dir: string, name: string, version = '1.2.3'): Promise<void> {
  const packageDir = join(dir, `machine-driver-${name}`);
  await mkdir(packageDir, { recursive: true });
  await writeFile(
    join(packageDir, 'package.json'),
    JSON.stringify({ name: `machine-driver-${name}`, version, type: 'module', exports: { '.': { import: './index.js' } } }),
  );
  await writeFile(join(packageDir, 'index.js'), fixtureSource(name));
}

/** Writes a package named like a driver that does not export one. */
export async function writeBrokenDriver(dir: string, name: string): Promise<void> {
  const packageDir = join(dir, `machine-driver-${name}`);
  await mkdir(packageDir, { recursive: true });
  await writeFile(join(packageDir, 'package.json'), JSON.stringify({ name: `machine-driver-${name}`, version: '0.0.1', type: 'module', main: 'index.js' }));
  await writeFile(join(packageDir, 'index.js'), 'export default { hello: "world" };\n');
}

function fixtureSource(name: string): string {
  return `import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const marker = Symbol.for('@machine/driver-core.error');
function machineError(code, message) {
  const error = new Error(message);
  error[marker] = true;
  error.code = code;
  error.detail = message;
  return error;
}

export default {
  name: ${JSON.stringify(name)},
  specificationVersion: 'v1',
  description: 'file-backed test driver',
  flags: [
    { name: '${name}-cloud-dir', key: 'cloudDir', type: 'string', envVar: 'FIXTURE_CLOUD_DIR', required: true, description: 'folder that plays the cloud' },
    { name: '${name}-color', key: 'color', type: 'string', default: 'blue', description: 'a harmless setting' },
    { name: '${name}-hang', key: 'hang', type: 'bool', description: 'create waits until it is aborted (to test Ctrl-C)' },
  ],
  createDriver({ config, context }) {
    const file = (id) => join(config.cloudDir, id);
    const instance = () => context.journal.entries().find((entry) => entry.kind === 'instance');
    async function state() {
      const entry = instance();
      if (entry === undefined) throw machineError('NOT_FOUND', 'no instance');
      try {
        return (await readFile(file(entry.id), 'utf8')).trim();
      } catch {
        throw machineError('NOT_FOUND', 'instance ' + entry.id + ' not found');
      }
    }
    const set = async (value) => writeFile(file(instance().id), value);
    return {
      driverName: ${JSON.stringify(name)},
      machineName: context.machineName,
      async preCreateCheck() {},
      async create(options = {}) {
        await mkdir(config.cloudDir, { recursive: true });
        const id = 'i-' + context.machineName;
        await writeFile(file(id), 'Running');
        await context.journal.record({ kind: 'instance', id });
        if (config.hang) {
          // Like a real driver: wait for the cloud until aborted, then delete what was made.
          const polling = setInterval(() => {}, 100); // a real driver has its API polls pending
          await new Promise((resolve) => options.signal?.addEventListener('abort', resolve, { once: true }));
          clearInterval(polling);
          await rm(file(id), { force: true });
          await context.journal.forget('instance', id);
          throw machineError('CANCELLED', 'the operation was cancelled');
        }
      },
      async remove() {
        for (const entry of [...context.journal.entries()]) {
          await rm(file(entry.id), { force: true });
          await context.journal.forget(entry.kind, entry.id);
        }
      },
      start: () => set('Running'),
      stop: () => set('Stopped'),
      kill: () => set('Stopped'),
      restart: () => set('Running'),
      getState: state,
      async getIP() { return '192.0.2.10'; },
      async getSSHHostname() { throw machineError('NOT_SUPPORTED', 'no SSH'); },
      async getSSHPort() { return 22; },
      getSSHUsername: () => 'root',
      getSSHKeyPath: () => '',
      async getURL() { return 'tcp://192.0.2.10:2376'; },
    };
  },
};
`;
}
