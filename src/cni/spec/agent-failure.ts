import { CniCode, CniError } from './errors.js';
import { CURRENT_VERSION } from './versions.js';

/**
 * What the runtime sees when the agent itself fails a call (a malformed request, a worker that
 * died or got stuck): exit 1 and, by default, error 100 in the current spec version, the
 * request's own version being unknown.
 */
export function agentFailureStdout(msg: string, code: number = CniCode.INTERNAL, cniVersion: string = CURRENT_VERSION): string {
  return `${JSON.stringify(new CniError(code, msg).toJson(cniVersion))}\n`;
}
