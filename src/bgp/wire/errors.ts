// The one error type of the codec. It carries what a NOTIFICATION needs (RFC 4271 §4.5) and, for
// UPDATE errors, the RFC 7606 §2 approach the session should take.
import { TwillError } from '../../core/errors.js';
import { NotificationCode } from './notification-codes.js';

/**
 * What the receiver does about a malformed message (RFC 7606 §2). Only 'session-reset' is thrown;
 * the others come back as warnings with the UPDATE already rewritten.
 */
export type ErrorAction = 'session-reset' | 'treat-as-withdraw' | 'attribute-discard' | 'afi-safi-disable';

const CODE_NAMES: Record<number, string> = {
  [NotificationCode.MESSAGE_HEADER_ERROR]: 'EBGP_HEADER',
  [NotificationCode.OPEN_MESSAGE_ERROR]: 'EBGP_OPEN',
  [NotificationCode.UPDATE_MESSAGE_ERROR]: 'EBGP_UPDATE',
  [NotificationCode.HOLD_TIMER_EXPIRED]: 'EBGP_HOLD_TIMER',
  [NotificationCode.FSM_ERROR]: 'EBGP_FSM',
  [NotificationCode.CEASE]: 'EBGP_CEASE',
};

const EMPTY = Buffer.alloc(0);

export class BgpMessageError extends TwillError {
  /** NOTIFICATION error code to send (for a session reset) or that the fault would carry. */
  readonly notificationCode: number;
  readonly subcode: number;
  /** NOTIFICATION data (RFC 4271 §6: e.g. the offending attribute, or the bad length field). */
  readonly data: Buffer;
  readonly action: ErrorAction;

  constructor(notificationCode: number, subcode: number, message: string, options: { data?: Uint8Array; action?: ErrorAction } = {}) {
    // No stack trace: the fault is in the peer's bytes, not in our code, and a peer sending a
    // table of malformed UPDATEs would otherwise make us capture one per warning.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(CODE_NAMES[notificationCode] ?? 'EBGP_MESSAGE', `${message} (NOTIFICATION ${notificationCode}/${subcode})`);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.notificationCode = notificationCode;
    this.subcode = subcode;
    // A copy: the data often points into a received buffer that the reader reuses or retains.
    this.data = options.data && options.data.length > 0 ? Buffer.from(options.data) : EMPTY;
    this.action = options.action ?? 'session-reset';
  }
}

/** Shorthand for the UPDATE errors (code 3), which make up most of the decoder's failures. */
export function updateError(subcode: number, message: string, action: ErrorAction = 'session-reset', data?: Uint8Array): BgpMessageError {
  return new BgpMessageError(NotificationCode.UPDATE_MESSAGE_ERROR, subcode, message, { action, ...(data ? { data } : {}) });
}
