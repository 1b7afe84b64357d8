/**
 * Errors that reach the user. Each carries the exit code the CLI returns and, where it
 * helps, one hint saying what to do. Anything else that escapes is an internal error.
 */
export const EXIT = {
  OK: 0,
  BAD_INPUT: 1,
  USAGE: 2,
  MODEL: 3,
  OUTPUT: 4,
  INTERNAL: 5,
  BATCH_PARTIAL: 6,
  BATCH_FAILED: 7,
  QUEUE: 8,
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export type ErrorKind = 'input' | 'usage' | 'model' | 'output' | 'internal' | 'interrupted' | 'queue';

const KIND_EXIT: Record<ErrorKind, ExitCode> = {
  input: EXIT.BAD_INPUT,
  usage: EXIT.USAGE,
  model: EXIT.MODEL,
  output: EXIT.OUTPUT,
  internal: EXIT.INTERNAL,
  interrupted: EXIT.INTERRUPTED,
  queue: EXIT.QUEUE,
};

export class RestoreError extends Error {
  readonly kind: ErrorKind;
  readonly hint?: string;
  constructor(kind: ErrorKind, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'RestoreError';
    this.kind = kind;
    this.hint = opts.hint;
  }
  get exitCode(): ExitCode {
    return KIND_EXIT[this.kind];
  }
  /** The one line the CLI prints. */
  toLine(): string {
    return this.hint ? `${this.message} (${this.hint})` : this.message;
  }
}

export const inputError = (msg: string, hint?: string, cause?: unknown) =>
  new RestoreError('input', msg, { hint, cause });
export const usageError = (msg: string, hint?: string) => new RestoreError('usage', msg, { hint });
export const modelError = (msg: string, hint?: string, cause?: unknown) =>
  new RestoreError('model', msg, { hint, cause });
export const outputError = (msg: string, hint?: string, cause?: unknown) =>
  new RestoreError('output', msg, { hint, cause });

/** The job queue (Redis) cannot be reached or refused a command. */
export const queueError = (msg: string, hint?: string, cause?: unknown) =>
  new RestoreError('queue', msg, { hint, cause });

export function isRestoreError(e: unknown): e is RestoreError {
  return e instanceof RestoreError;
}
