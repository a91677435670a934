/** Thrown by the `exit` built-in; ends the script being run with `code`. */
export class ExitSignal {
  readonly code: number;

  constructor(code: number) {
    this.code = code;
  }
}
