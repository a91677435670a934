import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { readRepositoryFile, repositoryRoot, type WorkspacePackage } from './workspace.ts';

/** A step of a GitHub Actions job, as far as the checks read it. */
export interface WorkflowStep {
  readonly uses?: string;
  readonly run?: string;
  readonly with?: Record<string, unknown>;
}

/** A job of a GitHub Actions workflow, as far as the checks read it. */
export interface WorkflowJob {
  readonly 'runs-on'?: unknown;
  readonly uses?: string;
  readonly permissions?: unknown;
  readonly strategy?: { matrix?: Record<string, unknown> };
  readonly steps?: WorkflowStep[];
}

/** One parsed file of .github/workflows. */
export interface Workflow {
  readonly file: string;
  readonly text: string;
  readonly on: Record<string, { paths?: string[]; branches?: string[] } | null>;
  readonly concurrency?: { group?: string; 'cancel-in-progress'?: boolean };
  readonly permissions?: unknown;
  readonly jobs: Record<string, WorkflowJob>;
}

/** Every workflow file, parsed. */
export function workflows(): Workflow[] {
  const folder = join(repositoryRoot, '.github/workflows');
  return readdirSync(folder)
    .filter((name) => name.endsWith('.yml') || name.endsWith('.yaml'))
    .sort()
    .map((file) => {
      const text = readRepositoryFile(`.github/workflows/${file}`);
      return { file, text, ...(parse(text) as Omit<Workflow, 'file' | 'text'>) };
    });
}

/** Every `uses:` of a workflow: reusable workflows and steps. */
export function actionReferences(workflow: Workflow): string[] {
  return Object.values(workflow.jobs).flatMap((job) => [
    ...(job.uses === undefined ? [] : [job.uses]),
    ...(job.steps ?? []).flatMap((step) => (step.uses === undefined ? [] : [step.uses])),
  ]);
}

/** The workspace packages `pkg` depends on (dependencies, dev and peer), followed transitively. */
export function workspaceDependencyClosure(pkg: WorkspacePackage, all: readonly WorkspacePackage[]): WorkspacePackage[] {
  const byName = new Map(all.map((candidate) => [candidate.manifest.name, candidate]));
  const found = new Map<string, WorkspacePackage>();
  const pending = [pkg];
  while (pending.length > 0) {
    const current = pending.pop() as WorkspacePackage;
    for (const field of ['dependencies', 'devDependencies', 'peerDependencies'] as const) {
      const ranges = (current.manifest[field] ?? {}) as Record<string, string>;
      for (const name of Object.keys(ranges)) {
        const dependency = byName.get(name);
        if (dependency !== undefined && dependency !== pkg && !found.has(dependency.path)) {
          found.set(dependency.path, dependency);
          pending.push(dependency);
        }
      }
    }
  }
  return [...found.values()].sort((a, b) => a.path.localeCompare(b.path));
}
