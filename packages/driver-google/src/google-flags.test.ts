import { InvalidConfigError, parseFlags } from '@machine/driver-core';
import { describe, expect, it } from 'vitest';
import { defaultMachineImage, googleFlags, imagePath, parseEndpoint, parseLabels } from './google-flags.ts';

const parse = (values: Record<string, unknown>, env: Record<string, string> = {}) => parseFlags(googleFlags, values, { env });

describe('google flags', () => {
  it('has the reference names and env vars with current defaults', () => {
    const config = parse({ 'google-project': 'my-project' });
    expect(config).toMatchObject({
      project: 'my-project',
      zone: 'us-central1-a',
      machineType: 'e2-small',
      machineImage: defaultMachineImage,
      username: 'docker-user',
      serviceAccount: 'default',
      diskSize: 10,
      diskType: 'pd-balanced',
      network: 'default',
      preemptible: false,
      spot: false,
      useExisting: false,
      sshPort: 22,
      allowedCidrs: ['0.0.0.0/0'],
    });
    expect(config.scopes).toHaveLength(3);
    expect(defaultMachineImage).toMatch(/ubuntu-2404-lts/);
    const envVars = Object.fromEntries(googleFlags.map((flag) => [flag.name, flag.envVar]));
    expect(envVars['google-project']).toBe('GOOGLE_PROJECT');
    expect(envVars['google-zone']).toBe('GOOGLE_ZONE');
    expect(envVars['google-use-internal-ip-only']).toBe('GOOGLE_USE_INTERNAL_IP_ONLY');
  });

  it('reads env vars and lists', () => {
    const config = parse({}, { GOOGLE_PROJECT: 'env-project', GOOGLE_TAGS: 'web,db', GOOGLE_PREEMPTIBLE: 'true', GOOGLE_LABELS: 'team=infra,env:prod' });
    expect(config.project).toBe('env-project');
    expect(config.tags).toEqual(['web', 'db']);
    expect(config.preemptible).toBe(true);
    expect(parseLabels(config.labels)).toEqual({ team: 'infra', env: 'prod' });
  });

  it('names the project flag and its env var when it is missing', () => {
    expect(() => parse({})).toThrow(/--google-project: is required: pass --google-project or set GOOGLE_PROJECT/);
  });

  it.each([
    [{ 'google-zone': 'us-central1' }, 'google-zone'],
    [{ 'google-machine-image': 'ubuntu' }, 'google-machine-image'],
    [{ 'google-disk-size': 5 }, 'google-disk-size'],
    [{ 'google-tags': 'Web' }, 'google-tags'],
    [{ 'google-labels': 'Team=x' }, 'google-labels'],
    [{ 'google-allowed-cidr': '10.0.0.0/8,::/0' }, 'google-allowed-cidr'],
    [{ 'google-allowed-cidr': '10.0.0/8' }, 'google-allowed-cidr'],
    [{ 'google-endpoint': 'http://compute.example.com' }, 'google-endpoint'],
    [{ 'google-username': 'Root User' }, 'google-username'],
    [{ 'google-ssh-port': 0 }, 'google-ssh-port'],
  ])('rejects %j', (values, flag) => {
    const error = (() => {
      try {
        parse({ 'google-project': 'my-project', ...values });
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as InvalidConfigError).issues.map((issue) => issue.flag)).toContain(flag);
  });

  it('normalises image paths the way users write them', () => {
    expect(imagePath('https://www.googleapis.com/compute/v1/projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64')).toBe(
      'projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64',
    );
    expect(imagePath('ubuntu-os-cloud/global/images/ubuntu-2404-noble-amd64-v20250101')).toBe('projects/ubuntu-os-cloud/global/images/ubuntu-2404-noble-amd64-v20250101');
    expect(imagePath('not an image')).toBeUndefined();
  });

  it('parses endpoints as host:port or URL', () => {
    expect(parseEndpoint('127.0.0.1:8080')).toEqual({ apiEndpoint: '127.0.0.1', port: 8080, protocol: 'http' });
    expect(parseEndpoint('http://127.0.0.1:9000/')).toEqual({ apiEndpoint: '127.0.0.1', port: 9000, protocol: 'http' });
    expect(parseEndpoint('https://compute.example.com')).toEqual({ apiEndpoint: 'compute.example.com', port: 443, protocol: 'https' });
  });
});
