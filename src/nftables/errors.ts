import { TwillError } from '../core/errors.js';

/**
 * nft failed: it could not be started, it exited non-zero, or it printed something other than
 * the JSON that was asked for. `stderr` is nft's own explanation (it names the offending line of
 * a script), so callers log it rather than guess.
 */
export class NftError extends TwillError {
  /** The command line as run, for messages ("nft -f -"). */
  readonly command: string;
  /** nft's exit code; null when it could not start or was killed. */
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(details: { command: string; exitCode: number | null; stderr: string; problem?: string }, options?: { cause?: unknown }) {
    const how = details.problem ?? (details.exitCode === null ? 'did not finish' : `exited with code ${details.exitCode}`);
    const stderr = details.stderr.trim();
    super('ENFT', `${details.command}: ${how}${stderr ? `: ${stderr}` : ''}`, options);
    this.command = details.command;
    this.exitCode = details.exitCode;
    this.stderr = details.stderr;
  }
}
