import { pino, type DestinationStream, type Logger } from 'pino';
import { InvalidArgumentError } from './errors.js';

// The one logger factory (code-style-anchors §2.12): twilld makes a single root logger and hands
// `log.child({ component: 'lease' })` down; libraries below the agent emit events instead of
// logging. Output is pino's JSON lines, errors under `err`.

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  readonly level: LogLevel;
  /** Where the JSON lines go. Default: fd 2 (stderr), written synchronously so nothing is lost on exit. */
  readonly destination?: DestinationStream;
}

/** Checks a level name (a flag or env value); `what` names it in the error. */
export function parseLogLevel(text: string, what = 'log level'): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(text)) return text as LogLevel;
  throw new InvalidArgumentError(what, text, `must be one of ${LOG_LEVELS.join(', ')}`);
}

export function createLogger(options: LoggerOptions): Logger {
  const level = parseLogLevel(options.level);
  // stderr, never stdout: the CNI plugin's stdout carries its result (CNI spec), and the agent
  // keeps the same convention so both can share this factory.
  return pino({ level }, options.destination ?? pino.destination(2));
}
