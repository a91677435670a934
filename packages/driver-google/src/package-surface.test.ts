import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { acceptsBootUserData, driverDescriptorProblem, type FlagDefinition, parseFlags } from '@machine/driver-core';
import { describe, expect, it } from 'vitest';
import google, { googleFlags } from './index.ts';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

describe('@machine/driver-google package surface', () => {
  it('default-exports a valid v1 descriptor', () => {
    expect(driverDescriptorProblem(google)).toBeUndefined();
    expect(google.name).toBe('google');
    expect(google.flags.every((flag) => flag.name.startsWith('google-'))).toBe(true);
  });

  it('takes boot user data for a new instance, not for an adopted one (--google-use-existing)', () => {
    const base = { 'google-project': 'my-project' };
    expect(acceptsBootUserData(google, parseFlags(googleFlags, base, { env: {} }))).toBe(true);
    expect(acceptsBootUserData(google, parseFlags(googleFlags, { ...base, 'google-use-existing': true }, { env: {} }))).toBe(false);
  });

  it('importing the package loads neither the client library nor ssh2', () => {
    const script = `import { registerHooks } from 'node:module';
const seen = [];
registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); seen.push(result.url); return result; } });
await import('./src/index.ts');
process.stdout.write(JSON.stringify(seen));`;
    const output = execFileSync(process.execPath, ['--conditions=@machine/source', '--input-type=module', '-e', script], { cwd: packageDir, encoding: 'utf8' });
    const urls = JSON.parse(output) as string[];
    expect(urls.some((url) => url.includes('google-driver.ts'))).toBe(true);
    expect(urls.filter((url) => /@google-cloud|google-gax|google-auth-library|grpc|ssh2/.test(url))).toEqual([]);
  });

  it('the README documents every flag with its env var and default', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const flag of googleFlags as readonly FlagDefinition[]) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`--${flag.name}\``));
      expect(row, `README row for --${flag.name}`).toBeDefined();
      if (flag.envVar !== undefined) expect(row, flag.name).toContain(`\`${flag.envVar}\``);
      if (flag.default !== undefined && !Array.isArray(flag.default)) expect(row, flag.name).toContain(String(flag.default));
    }
  });
});
