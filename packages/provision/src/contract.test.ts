import type { FlagDefinition, MachineError } from '@machine/driver-core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import * as provision from './index.ts';
import type { ClientCertificates, EngineOptions, MachineHostKey, ProvisionOptions, ProvisionTarget, ServerCertificate } from './index.ts';

// The public API of /work/notes/provision-contract.md ("@machine/provision"), which the CLI codes
// against: each export with the contract's signature (checked by the type checker) and present at
// run time.

describe('the @machine/provision contract', () => {
  it('exports every function and value of the contract', () => {
    const exported: Record<string, unknown> = { ...provision };
    for (const name of [
      'ensureClientCertificates',
      'issueServerCertificate',
      'serverCertificateSans',
      'certificateSans',
      'generateHostKey',
      'engineOptionsFrom',
      'daemonConfig',
      'buildCloudConfig',
      'provisionDocker',
      'installServerCertificate',
      'dockerUrl',
      'dockerApi',
      'dockerVersion',
    ] as const) {
      expect(typeof exported[name], name).toBe('function');
    }
    expect(Array.isArray(provision.provisionFlags)).toBe(true);
    expect(typeof provision.ProvisionError).toBe('function');
  });

  it('has the contract signatures', () => {
    expectTypeOf(provision.ensureClientCertificates).toMatchTypeOf<(certsDir: string, options?: { organization?: string; regenerate?: boolean }) => Promise<ClientCertificates>>();
    expectTypeOf(provision.issueServerCertificate).toMatchTypeOf<
      (client: ClientCertificates, options: { sans: readonly string[]; commonName: string; organization?: string }) => Promise<ServerCertificate>
    >();
    expectTypeOf(provision.serverCertificateSans).toMatchTypeOf<(inputs: { ips: readonly string[]; dnsNames?: readonly string[]; tlsSans?: readonly string[] }) => string[]>();
    expectTypeOf(provision.certificateSans).toMatchTypeOf<(certPem: string) => string[]>();
    expectTypeOf(provision.generateHostKey).toMatchTypeOf<(comment?: string) => MachineHostKey>();
    expectTypeOf(provision.provisionFlags).toMatchTypeOf<readonly FlagDefinition[]>();
    expectTypeOf(provision.engineOptionsFrom).toMatchTypeOf<(values: Record<string, unknown>) => EngineOptions>();
    expectTypeOf(provision.daemonConfig).toMatchTypeOf<(engine: EngineOptions) => Record<string, unknown>>();
    expectTypeOf(provision.buildCloudConfig).toMatchTypeOf<(options: { engine: EngineOptions; hostKey?: MachineHostKey }) => string>();
    expectTypeOf(provision.provisionDocker).toMatchTypeOf<(target: ProvisionTarget, options: ProvisionOptions) => Promise<{ dockerVersion: string }>>();
    expectTypeOf(provision.installServerCertificate).toMatchTypeOf<
      (target: ProvisionTarget, options: { engine: EngineOptions; client: ClientCertificates; server: ServerCertificate; signal?: AbortSignal }) => Promise<void>
    >();
    expectTypeOf(provision.dockerUrl).toMatchTypeOf<(host: string, port: number) => string>();
    expectTypeOf(provision.dockerApi).toMatchTypeOf<
      (url: string, client: ClientCertificates, path: string, options?: { timeoutMs?: number; signal?: AbortSignal }) => Promise<{ status: number; body: string }>
    >();
    expectTypeOf(provision.dockerVersion).toMatchTypeOf<(url: string, client: ClientCertificates, options?: { timeoutMs?: number; signal?: AbortSignal }) => Promise<string>>();
    expectTypeOf<provision.ProvisionError>().toMatchTypeOf<MachineError & { step: string; logTail: string[] }>();
    expectTypeOf<EngineOptions>().toEqualTypeOf<{
      installUrl: string;
      port: number;
      opts: string[];
      env: string[];
      insecureRegistries: string[];
      registryMirrors: string[];
      labels: string[];
      storageDriver?: string;
      tlsSans: string[];
      noProvision: boolean;
    }>();
    const error = new provision.ProvisionError('boom', { machine: 'web1', step: 'restart-docker', logTail: ['a'] });
    expect(provision.ProvisionError.isInstance(error)).toBe(true);
    expect(error.message).toBe('provisioning web1 failed at restart-docker: boom');
  });
});
