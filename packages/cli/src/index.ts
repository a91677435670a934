/**
 * @machine/cli: the `machine` command as a library. `main(argv, io)` runs it in-process.
 */
export { CliError, ExitCode } from './cli-error.ts';
export type { CliIO, OutputStream } from './io.ts';
export { main } from './main.ts';
export { type MachineRecord, MachineStore, storagePath } from './store.ts';
export { parseTemplate } from './template.ts';
