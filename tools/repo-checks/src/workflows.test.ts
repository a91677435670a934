import { describe, expect, it } from 'vitest';
import { actionReferences, type Workflow, workflows, workspaceDependencyClosure } from './workflows.ts';
import { workspacePackages } from './workspace.ts';

const all = workflows();
const packages = workspacePackages();
const published = packages.filter((pkg) => pkg.manifest.private !== true);
const releaseFile = 'release.yml';
const byFile = (file: string): Workflow => {
  const workflow = all.find((candidate) => candidate.file === file);
  if (workflow === undefined) throw new Error(`.github/workflows/${file} is missing`);
  return workflow;
};

describe('workflows', () => {
  it.each(all.map((workflow) => [workflow.file, workflow]))('%s cancels superseded runs of the same ref (a release never)', (file, workflow) => {
    expect(workflow.concurrency?.group).toContain('github.ref');
    expect(workflow.concurrency?.['cancel-in-progress']).toBe(file !== releaseFile);
  });

  it.each(all.map((workflow) => [workflow.file, workflow]))('%s reads the repository and nothing more, unless it is the release', (file, workflow) => {
    expect(workflow.permissions).toEqual({ contents: 'read' });
    for (const [name, job] of Object.entries(workflow.jobs)) {
      if (file === releaseFile) continue;
      expect(job.permissions, `job ${name} raises its permissions`).toBeUndefined();
    }
    if (file !== releaseFile) expect(workflow.text).not.toMatch(/id-token:\s*write/);
  });

  it.each(all.map((workflow) => [workflow.file, workflow]))('%s pins every action by a full commit SHA', (_file, workflow) => {
    const references = actionReferences(workflow);
    expect(references.length).toBeGreaterThan(0);
    const floating = references.filter((ref) => !ref.startsWith('./') && !/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/.test(ref));
    expect(floating).toEqual([]);
  });

  it.each(all.map((workflow) => [workflow.file, workflow]))('%s caches the pnpm store, and turbo wherever it runs tests', (file, workflow) => {
    for (const [name, job] of Object.entries(workflow.jobs)) {
      const steps = job.steps ?? [];
      const caches = steps.filter((step) => step.uses?.startsWith('actions/cache@')).map((step) => String(step.with?.path ?? ''));
      if (!steps.some((step) => step.run?.includes('pnpm install') || step.run?.includes('.ci/run'))) continue;
      expect(caches.some((path) => path.includes('pnpm-store')), `${name}: pnpm store cache`).toBe(true);
      if (file !== releaseFile) expect(caches, `${name}: turbo cache`).toContain('.turbo/cache');
    }
  });

  it.each(all.filter((workflow) => workflow.file !== releaseFile).map((workflow) => [workflow.file, workflow]))(
    '%s tests on Node 22.12 (our floor) and 24',
    (_file, workflow) => {
      const matrices = Object.values(workflow.jobs).map((job) => job.strategy?.matrix?.node);
      expect(matrices).toContainEqual(['22.12', '24']);
    },
  );

  it.each([['cli.yml'], ['driver-virtualbox.yml']])('%s also runs its unit tests on Windows and macOS', (file) => {
    const systems = Object.values(byFile(file).jobs).map((job) => job.strategy?.matrix?.os);
    expect(systems).toContainEqual(expect.arrayContaining(['windows-latest', 'macos-latest']));
  });

  it.each(published.map((pkg) => [pkg.path, pkg]))('%s has a workflow whose path filter covers every workspace package it depends on', (_path, pkg) => {
    const file = `${pkg.folder}.yml`;
    const workflow = byFile(file);
    const push = workflow.on.push?.paths ?? [];
    const pullRequest = workflow.on.pull_request?.paths ?? [];
    expect(pullRequest).toEqual(push);
    const needed = [pkg, ...workspaceDependencyClosure(pkg, packages)].map((dependency) => `${dependency.path}/**`);
    expect(push).toEqual(expect.arrayContaining([...needed, 'pnpm-lock.yaml', `.github/workflows/${file}`]));
  });

  it('releases from one workflow: changesets, pnpm publish with provenance and id-token: write', () => {
    const release = byFile(releaseFile);
    expect(release.text).toContain('changesets/action@');
    expect(release.text).toContain('pnpm run release');
    const jobs = Object.values(release.jobs);
    expect(jobs.some((job) => (job.permissions as Record<string, string> | undefined)?.['id-token'] === 'write')).toBe(true);
    expect(jobs.some((job) => (job.permissions as Record<string, string> | undefined)?.contents === 'write')).toBe(true);
  });
});
