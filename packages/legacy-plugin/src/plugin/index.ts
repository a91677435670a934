/** Serving a driver-core driver as a `docker-machine-driver-NAME` plugin binary. */
export { type LegacyDriverServiceOptions, legacyDriverService } from './legacy-driver-service.ts';
export { type LegacyPluginBinOptions, legacyPluginBinaryName, legacyPluginScript, writeLegacyPluginBin } from './plugin-bin.ts';
export {
  type LegacyPluginServer,
  notAPluginHostNotice,
  redirectConsoleToStderr,
  runLegacyPlugin,
  type ServeLegacyPluginOptions,
  serveLegacyPlugin,
} from './serve-legacy-plugin.ts';
