/** Driving a `docker-machine-driver-NAME` binary as a driver-core driver. */
export { redactConfig, restoreConfig } from './legacy-config.ts';
export { type LegacyPluginData, LegacyPluginDriver, type LegacyPluginDriverOptions, legacyDataKey } from './legacy-plugin-driver.ts';
export {
  type FoundLegacyPlugin,
  findLegacyPlugin,
  flagFromMcnFlag,
  isLegacyPluginDescriptor,
  type LegacyPluginDescriptor,
  legacyPluginJournalNotice,
  legacyPluginPrefix,
  legacyPluginSearchPath,
  listLegacyPlugins,
  type OpenLegacyPluginOptions,
  openLegacyPlugin,
} from './open-legacy-plugin.ts';
export { type LaunchOptions, launchPluginProcess, type PluginProcess } from './plugin-process.ts';
export { PluginSession, type SessionOptions } from './plugin-session.ts';
