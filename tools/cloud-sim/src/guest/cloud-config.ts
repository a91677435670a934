import { gunzipSync } from 'node:zlib';
import { parse as parseYaml } from 'yaml';
import { splitUserData } from './user-data.ts';

/** One `write_files` entry, decoded. */
export interface WriteFileEntry {
  path: string;
  content: Buffer;
  /** Permission bits (cloud-init's default 0644). */
  permissions: number;
  /** `user:group` (default `root:root`). */
  owner: string;
  append: boolean;
}

/** What the simulated cloud-init does with an instance's user data. */
export interface BootPlan {
  /** `ssh_keys` (`ed25519_private`, `ed25519_public`, …), merged over every cloud-config part. */
  sshKeys: Record<string, string>;
  sshDeleteKeys: boolean;
  writeFiles: WriteFileEntry[];
  /** `runcmd` entries: a string is a shell line, a list is an argv. */
  runcmd: (string | string[])[];
  /** `text/x-shellscript` parts, run after runcmd (scripts_user), named as cloud-init names them. */
  scripts: { name: string; content: string }[];
  /** Problems cloud-init would log as WARNING and count as errors (`cloud-init status: error`). */
  errors: string[];
  /** Parts cloud-init would skip (include URLs, part handlers…), logged as warnings only. */
  skipped: string[];
}

/**
 * Plans what cloud-init does with `userData`: every `#cloud-config` part (plain or in a MIME
 * multipart, nested ones too) is parsed as YAML 1.1 like PyYAML does (so `0644` is octal) and merged
 * into the parts before it the way cloud-init's cloud-config handler does, for the keys used here.
 * Its default, `dict(replace)+list()+str()`, lets a later part's `runcmd`/`write_files` list replace
 * an earlier one whole; a part whose `Merge-Type` header (or `merge_how`) says `list(append)` adds
 * its entries instead, and `dict(no_replace)` keeps values an earlier part set. Other keys are
 * ignored.
 */
export function planBoot(userData: string | undefined): BootPlan {
  const plan: BootPlan = { sshKeys: {}, sshDeleteKeys: true, writeFiles: [], runcmd: [], scripts: [], errors: [], skipped: [] };
  if (userData === undefined || userData.trim() === '') return plan;
  let scriptIndex = 0;
  const seen = new Set<string>();
  for (const part of splitUserData(userData)) {
    switch (part.contentType) {
      case 'text/cloud-config':
        applyCloudConfig(plan, part.content, part.mergeType, seen);
        break;
      case 'text/x-shellscript':
        plan.scripts.push({ name: part.filename ?? `part-${String(++scriptIndex).padStart(3, '0')}`, content: part.content });
        break;
      default:
        plan.skipped.push(`Unhandled non-multipart (${part.contentType}) userdata: '${part.content.split('\n', 1)[0]?.slice(0, 40) ?? ''}...'`);
    }
  }
  return plan;
}

/** How one part merges into the parts before it (from `Merge-Type`/`merge_how`). */
interface MergeRules {
  /** `list(append)` (or prepend): list values add to the existing list. */
  appendLists: boolean;
  /** `dict(no_replace)`: a value an earlier part set is kept. */
  keepExisting: boolean;
}

/** Reads a merge spec: `list(append)+dict(no_replace,recurse_list)+str()` or `merge_how` as a list of mergers. */
function mergeRules(spec: unknown): MergeRules {
  const settingsOf = (name: string): string[] => {
    if (typeof spec === 'string') {
      const match = new RegExp(`(?:^|\\+)\\s*${name}\\(([^)]*)\\)`).exec(spec);
      return match?.[1]?.split(',').map((setting) => setting.trim()) ?? [];
    }
    if (!Array.isArray(spec)) return [];
    const merger = spec.find((entry) => (entry as { name?: unknown })?.name === name) as { settings?: unknown } | undefined;
    return Array.isArray(merger?.settings) ? merger.settings.map(String) : [];
  };
  const list = settingsOf('list');
  const dict = settingsOf('dict');
  return { appendLists: list.includes('append') || list.includes('prepend'), keepExisting: dict.includes('no_replace') };
}

function applyCloudConfig(plan: BootPlan, text: string, mergeType: string | undefined, seen: Set<string>): void {
  let config: unknown;
  try {
    config = parseYaml(text, { version: '1.1' });
  } catch (error) {
    plan.errors.push(`Failed loading yaml blob. ${(error as Error).message.split('\n', 1)[0] ?? ''}`);
    return;
  }
  if (config === null || config === undefined) return;
  if (typeof config !== 'object' || Array.isArray(config)) {
    plan.errors.push(`Cloud-config is not a dictionary: ${typeof config}`);
    return;
  }
  const record = config as Record<string, unknown>;
  const rules = mergeRules(mergeType ?? record.merge_how);
  // What this part does to a key an earlier part set: add to it, keep it, or replace it.
  const action = (key: string): 'set' | 'append' | 'keep' => {
    const earlier = seen.has(key);
    seen.add(key);
    if (!earlier) return 'set';
    if (rules.appendLists) return 'append';
    return rules.keepExisting ? 'keep' : 'set';
  };
  if (typeof record.ssh_deletekeys === 'boolean' && !(seen.has('ssh_deletekeys') && rules.keepExisting)) {
    seen.add('ssh_deletekeys');
    plan.sshDeleteKeys = record.ssh_deletekeys;
  }
  if (record.ssh_keys !== undefined) {
    if (typeof record.ssh_keys !== 'object' || record.ssh_keys === null) plan.errors.push('Invalid cloud-config provided: ssh_keys: is not of type object');
    else {
      for (const [key, value] of Object.entries(record.ssh_keys)) {
        if (typeof value === 'string' && !(plan.sshKeys[key] !== undefined && rules.keepExisting)) plan.sshKeys[key] = value;
      }
    }
  }
  if (record.write_files !== undefined) {
    const how = action('write_files');
    if (!Array.isArray(record.write_files)) plan.errors.push('Invalid cloud-config provided: write_files: is not of type array');
    else if (how !== 'keep') {
      if (how === 'set') plan.writeFiles = [];
      for (const [index, entry] of record.write_files.entries()) addWriteFile(plan, entry, index);
    }
  }
  if (record.runcmd !== undefined) {
    const how = action('runcmd');
    if (!Array.isArray(record.runcmd)) plan.errors.push('Invalid cloud-config provided: runcmd: is not of type array');
    else if (how !== 'keep') {
      if (how === 'set') plan.runcmd = [];
      for (const entry of record.runcmd) {
        if (typeof entry === 'string') plan.runcmd.push(entry);
        else if (Array.isArray(entry)) plan.runcmd.push(entry.map(String));
        else plan.errors.push(`Invalid cloud-config provided: runcmd entry ${JSON.stringify(entry)} is not a string or a list`);
      }
    }
  }
}

function addWriteFile(plan: BootPlan, entry: unknown, index: number): void {
  if (typeof entry !== 'object' || entry === null) {
    plan.errors.push(`Invalid cloud-config provided: write_files.${index}: is not of type object`);
    return;
  }
  const file = entry as Record<string, unknown>;
  if (typeof file.path !== 'string' || !file.path.startsWith('/')) {
    plan.errors.push(`Invalid cloud-config provided: write_files.${index}: 'path' is a required property`);
    return;
  }
  const raw = file.content === undefined || file.content === null ? '' : String(file.content);
  const encoding = typeof file.encoding === 'string' ? file.encoding.toLowerCase() : 'text/plain';
  let content: Buffer;
  try {
    if (['b64', 'base64'].includes(encoding)) content = Buffer.from(raw, 'base64');
    else if (['gz+b64', 'gzip+base64', 'gz+base64', 'gzip+b64'].includes(encoding)) content = gunzipSync(Buffer.from(raw, 'base64'));
    else if (['gz', 'gzip'].includes(encoding)) content = gunzipSync(Buffer.from(raw, 'latin1'));
    else content = Buffer.from(raw, 'utf8');
  } catch (error) {
    plan.errors.push(`write_files: cannot decode ${file.path} (${encoding}): ${(error as Error).message}`);
    return;
  }
  let permissions = 0o644;
  if (typeof file.permissions === 'number') permissions = file.permissions;
  else if (typeof file.permissions === 'string') {
    const parsed = Number.parseInt(file.permissions, 8);
    if (Number.isNaN(parsed)) {
      plan.errors.push(`write_files: invalid permissions '${file.permissions}' for ${file.path}`);
      return;
    }
    permissions = parsed;
  }
  plan.writeFiles.push({ path: file.path, content, permissions: permissions & 0o7777, owner: typeof file.owner === 'string' ? file.owner : 'root:root', append: file.append === true });
}

/** How cloud-init writes a runcmd entry into its script: argv entries single-quoted word by word. */
export function runcmdLine(entry: string | string[]): string {
  if (typeof entry === 'string') return entry;
  return entry.map((word) => `'${word.replace(/'/g, `'"'"'`)}'`).join(' ');
}
