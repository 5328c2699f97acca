import { CniCode, CniError } from './errors.js';
import { CURRENT_VERSION } from './versions.js';

/**
 * What the runtime sees when the agent itself fails a call (a malformed request, a worker that
 * died): exit 1 and error 100 in the current spec version, the request's own version being unknown.
 */
export function agentFailureStdout(msg: string): string {
  return `${JSON.stringify(new CniError(CniCode.INTERNAL, msg).toJson(CURRENT_VERSION))}\n`;
}
