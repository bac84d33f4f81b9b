/**
 * Errors a user can cause (bad spec, missing file, corrupt checkpoint, bad image). The CLI prints the message
 * alone, with no stack, and exits with `exitCode`.
 * @module
 */

/** An error caused by user input; `exitCode` 2 for bad usage/spec, 1 for a run that failed on bad data. */
export class UserError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = "UserError";
    this.exitCode = exitCode;
  }
}
