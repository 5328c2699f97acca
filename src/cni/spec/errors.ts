import { TwillError } from '../../core/errors.js';

/**
 * CNI error codes (SPEC.md "Error": 1-99 are the spec's, 100 and above belong to the plugin).
 * 50 and 51 were added after the 1.1.0 tag; runtimes that know STATUS understand them.
 */
export const CniCode = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODE_FAILURE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  UNAVAILABLE: 50,
  UNAVAILABLE_DEGRADED: 51,
  // Twill's own.
  INTERNAL: 100,
  ADDRESSES_EXHAUSTED: 101,
  ADDRESS_UNAVAILABLE: 102,
  INTERFACE_EXISTS: 103,
  DUPLICATE_ATTACHMENT: 104,
  CHECK_FAILED: 105,
  AGENT_STATE: 106,
  /** The pod's namespace has a route twill would add (a default route of another network). */
  ROUTE_EXISTS: 107,
} as const;
export type CniCodeValue = (typeof CniCode)[keyof typeof CniCode];

/** An error the plugin reports to the runtime as the spec's error JSON on stdout. */
export class CniError extends TwillError {
  readonly cniCode: number;
  readonly details: string | undefined;

  constructor(cniCode: number, msg: string, details?: string, options?: { cause?: unknown }) {
    super('ECNI', msg, options);
    this.cniCode = cniCode;
    this.details = details;
  }

  /** The error object of SPEC.md: `cniVersion` is the config's (or ours when it is unknown). */
  toJson(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return { cniVersion, code: this.cniCode, msg: this.message, ...(this.details !== undefined && { details: this.details }) };
  }
}
