import type { Logger, LogLevel } from '../core/logger.js';

// The in-process plugin's log lines: pino's JSON on stderr, as the agent writes them. Loading
// pino and the streams under it costs a call more time than the rest of its JavaScript (see
// docs/design/cni-shim-and-socket.md, "The fallback's start-up"), and most calls log nothing, so
// it is loaded when the first line that passes the level is written.

/** Most severe first, as pino orders them. */
const LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

export class FallbackLog {
  private readonly level: LogLevel;
  private logger: Promise<Logger> | undefined;

  /** `levelName` is TWILL_CNI_LOG_LEVEL; anything but a level name means info. */
  constructor(levelName: string | undefined) {
    this.level = LEVELS.find((l) => l === levelName) ?? 'info';
  }

  async warn(obj: object, msg: string): Promise<void> {
    if (this.enabled('warn')) (await this.load()).warn(obj, msg);
  }

  async error(obj: object, msg: string): Promise<void> {
    if (this.enabled('error')) (await this.load()).error(obj, msg);
  }

  private enabled(level: LogLevel): boolean {
    return LEVELS.indexOf(level) <= LEVELS.indexOf(this.level);
  }

  private load(): Promise<Logger> {
    this.logger ??= import('../core/logger.js').then(({ createLogger }) => createLogger({ level: this.level }).child({ component: 'cni' }));
    return this.logger;
  }
}
