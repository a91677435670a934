/** Runs one fake VBoxManage invocation against a state file (see fake-vboxmanage.mjs). */
export function runFakeVBoxManage(args: readonly string[], statePath: string): { stdout: string; stderr: string; code: number; lost: 'hold' | 'drop' | undefined };
/** The executable's entry point. */
export function main(argv?: readonly string[]): void;
