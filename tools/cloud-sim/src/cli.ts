#!/usr/bin/env node
/**
 * `pnpm sim`: starts every implemented provider front end, prints endpoints and the environment to
 * point drivers at them, and runs until SIGINT/SIGTERM. Options: `--providers a,b`, `--host`,
 * `--ssh-port N`, `--docker-port N`, `--port provider=N`, `--pending-ms N`, `--stopping-ms N`, `--state-file PATH` (JSON `{pid, endpoints, sshPort, dockerPort, env, realism}`
 * written once ready, removed on exit). Faults come from `CLOUD_SIM_FAULTS` (JSON), extra downloads
 * for instances from `CLOUD_SIM_DOWNLOADS` (JSON object URL → body), each provider's options and
 * realism knobs from `CLOUD_SIM_PROVIDER_OPTIONS` (JSON object provider → options, e.g.
 * `{"digitalocean":{"burstLimit":20}}`).
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parseFaultSpecs } from './core/faults.ts';
import { createRealism, type RealismOptions, type RealismProfile } from './core/realism.ts';
import { startSim } from './sim.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      providers: { type: 'string' },
      host: { type: 'string' },
      'ssh-port': { type: 'string' },
      port: { type: 'string', multiple: true },
      'state-file': { type: 'string' },
      'pending-ms': { type: 'string' },
      'stopping-ms': { type: 'string' },
      'docker-port': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write('usage: cloud-sim [--providers digitalocean] [--host 127.0.0.1] [--ssh-port N] [--docker-port N] [--port provider=N] [--pending-ms N] [--stopping-ms N] [--state-file PATH]\n');
    return;
  }
  const ports: Record<string, number> = {};
  for (const entry of values.port ?? []) {
    const [name, port] = entry.split('=');
    if (name === undefined || port === undefined || !/^\d+$/.test(port)) throw new Error(`--port expects provider=N, got ${entry}`);
    ports[name] = Number(port);
  }
  const realismOptions: RealismOptions = {
    // `kind` turns the real clouds' timing windows off; createRealism rejects other names.
    ...(process.env.CLOUD_SIM_PROFILE ? { profile: process.env.CLOUD_SIM_PROFILE as RealismProfile } : {}),
    ...(process.env.CLOUD_SIM_TIME_SCALE ? { timeScale: Number(process.env.CLOUD_SIM_TIME_SCALE) } : {}),
  };
  const started = performance.now();
  const sim = await startSim({
    ...(values.providers ? { providers: values.providers.split(',').map((name) => name.trim()) } : {}),
    ...(values.host ? { host: values.host } : {}),
    ...(values['ssh-port'] ? { sshPort: Number(values['ssh-port']) } : {}),
    ...(values['docker-port'] ? { dockerPort: Number(values['docker-port']) } : {}),
    ports,
    delays: {
      ...(values['pending-ms'] ? { pendingMs: Number(values['pending-ms']) } : {}),
      ...(values['stopping-ms'] ? { stoppingMs: Number(values['stopping-ms']) } : {}),
    },
    faults: process.env.CLOUD_SIM_FAULTS ? parseFaultSpecs(process.env.CLOUD_SIM_FAULTS) : [],
    ...(process.env.CLOUD_SIM_DOWNLOADS ? { downloads: parseDownloads(process.env.CLOUD_SIM_DOWNLOADS) } : {}),
    ...(process.env.CLOUD_SIM_PROVIDER_OPTIONS ? { providerOptions: parseProviderOptions(process.env.CLOUD_SIM_PROVIDER_OPTIONS) } : {}),
    ...realismOptions,
  });
  const env = sim.env();
  const lines = [`cloud-sim ready in ${Math.round(performance.now() - started)} ms (pid ${process.pid})`];
  for (const [name, url] of Object.entries(sim.endpoints)) lines.push(`  ${name.padEnd(14)} ${url}`);
  lines.push(`  ssh            <instance public ip>:${sim.sshPort}`, `  docker         <instance public ip>:${sim.dockerPort} (use as --engine-port)`, '');
  for (const [key, value] of Object.entries(env)) lines.push(`export ${key}=${value}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  // Written last: whoever waits for this file can rely on everything above being ready.
  const stateFile = values['state-file'];
  if (stateFile !== undefined) {
    // The realism lets a client scale its own timing to the simulator's (the CLI's shared rate budgets).
    const { profile, timeScale } = createRealism(realismOptions);
    const state = `${JSON.stringify({ pid: process.pid, endpoints: sim.endpoints, sshPort: sim.sshPort, dockerPort: sim.dockerPort, env, realism: { profile, timeScale } }, null, 2)}\n`;
    await writeFile(`${stateFile}.tmp`, state);
    await rename(`${stateFile}.tmp`, stateFile); // readers never see a half-written file
  }

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`cloud-sim: ${signal}, stopping\n`);
    const leaks = sim.leaks();
    if (leaks.length > 0) process.stderr.write(`cloud-sim: ${leaks.length} resource(s) still alive at exit\n`);
    void sim
      .close()
      .then(() => (stateFile === undefined ? undefined : rm(stateFile, { force: true })))
      .finally(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

function parseProviderOptions(json: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new Error(`CLOUD_SIM_PROVIDER_OPTIONS is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || Object.values(parsed).some((options) => typeof options !== 'object' || options === null)) {
    throw new Error('CLOUD_SIM_PROVIDER_OPTIONS must be a JSON object of provider name → options object');
  }
  return parsed as Record<string, unknown>;
}

function parseDownloads(json: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new Error(`CLOUD_SIM_DOWNLOADS is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || Object.values(parsed).some((body) => typeof body !== 'string')) {
    throw new Error('CLOUD_SIM_DOWNLOADS must be a JSON object of URL → body text');
  }
  return parsed as Record<string, string>;
}

main().catch((error: unknown) => {
  process.stderr.write(`cloud-sim: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
