/**
 * @machine/provision: turns a machine into a Docker host — TLS certificates (CA, client, per-machine
 * server), the machine's SSH host key, the cloud-init user data that installs the engine while the
 * machine boots, provisioning over SSH, and Docker API calls over TLS. Importing this module loads
 * neither ssh2, yaml nor @peculiar/x509: each is loaded by the function that needs it.
 */
export {
  type ClientCertificates,
  certificateSans,
  clientCertificatePaths,
  ensureClientCertificates,
  issueServerCertificate,
  type ServerCertificate,
  serverCertificateSans,
} from './certificates.ts';
export { buildCloudConfig, installCommand } from './cloud-config.ts';
export { daemonConfig, daemonJson, guestPaths, systemdDropIn } from './daemon-config.ts';
export { type DockerApiOptions, dockerApi, dockerUrl, dockerVersion } from './docker-api.ts';
export { type DockerApiFailure, DockerApiError } from './docker-api-error.ts';
export { defaultEnginePort, defaultInstallUrl, type EngineOptions, engineOptionsFrom, provisionFlags } from './engine-options.ts';
export { knownEngineOpts } from './engine-opts.ts';
export { generateHostKey, type MachineHostKey } from './host-key.ts';
export { type EngineUpgradeMethod, installServerCertificate, type ProvisionOptions, type ProvisionTarget, provisionDocker, upgradeDocker } from './provision-docker.ts';
export { ProvisionError, type ProvisionErrorOptions, type ProvisionStep } from './provision-error.ts';
