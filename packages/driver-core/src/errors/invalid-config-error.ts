import { MachineError, type MachineErrorOptions } from './machine-error.ts';

/** One problem with one flag or input. */
export interface ConfigIssue {
  /** The flag (without leading dashes), e.g. `digitalocean-size`, or the input's name. */
  flag: string;
  /** `input` for things that are not flags (the machine name, a file); default `flag`. */
  kind?: 'flag' | 'input';
  /** What is wrong and what to do, one line. */
  message: string;
}

/** Bad input: a flag, a machine name, a key file. Raised before any API call. */
export class InvalidConfigError extends MachineError {
  override readonly code = 'INVALID_CONFIG';
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[], options: MachineErrorOptions = {}) {
    super(issues.map((issue) => `${issue.kind === 'input' ? issue.flag : `--${issue.flag}`}: ${issue.message}`).join('; '), options);
    this.issues = issues;
  }
}
