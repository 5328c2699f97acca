/**
 * Base of every error Twill raises on purpose. `code` is stable and meant for programs;
 * `message` is for people. Subclasses add the fields a caller needs to act on the failure.
 */
export class TwillError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * This host lacks something Twill needs (a kernel module, say), and the message says what and how
 * to get it: all an operator needs, so it is reported in one line without a stack trace.
 */
export class HostRequirementError extends TwillError {}

/** A value given to Twill (a flag, a config field, an API argument) is not acceptable. */
export class InvalidArgumentError extends TwillError {
  /** What the value was meant to be, e.g. "interface name" or "CIDR". */
  readonly what: string;
  /** The offending value, as given. */
  readonly value: unknown;

  constructor(what: string, value: unknown, reason: string) {
    super('EINVAL_ARG', `invalid ${what} ${JSON.stringify(value)}: ${reason}`);
    this.what = what;
    this.value = value;
  }
}
