import { execFileSync } from 'node:child_process';

/** Options for the import-cost measurements. */
export interface ImportCostOptions {
  /** The folder the child processes run in (the package whose imports are measured). */
  cwd: string;
  /** Fresh processes per measurement (default 15). */
  runs?: number;
}

/** Runs `node …args` in `cwd` and returns its stdout. */
function node(args: readonly string[], cwd: string): string {
  return execFileSync(process.execPath, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

/** Median wall time, ms, of fresh `node …args` processes: what a cold start pays. */
export function medianProcessMs(args: readonly string[], options: ImportCostOptions): number {
  const times: number[] = [];
  for (let run = 0; run < (options.runs ?? 15); run++) {
    const started = performance.now();
    node(args, options.cwd);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? Number.NaN;
}

/** Median wall time, ms, of fresh processes that run the ES module `code` (`node -e 0` when empty). */
export function medianModuleMs(code: string, options: ImportCostOptions): number {
  return medianProcessMs(code === '' ? ['-e', '0'] : ['--input-type=module', '-e', code], options);
}

/** The URL of every module a fresh process resolves while importing `specifier`. */
export function modulesLoadedBy(specifier: string, options: Pick<ImportCostOptions, 'cwd'>): string[] {
  const script = `import { registerHooks } from 'node:module';
const seen = [];
registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); seen.push(result.url); return result; } });
await import(${JSON.stringify(specifier)});
process.stdout.write(JSON.stringify(seen));`;
  return JSON.parse(node(['--input-type=module', '-e', script], options.cwd)) as string[];
}
