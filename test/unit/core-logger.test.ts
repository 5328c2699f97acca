import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { createLogger, LOG_LEVELS, parseLogLevel } from '../../src/core/logger.js';

/** A destination that keeps every JSON line written to it. */
function sink(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const lines = (): Record<string, unknown>[] =>
    chunks.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  return { stream, lines };
}

describe('createLogger', () => {
  it('writes JSON lines at or above the level, with child bindings and errors under err', () => {
    const out = sink();
    const log = createLogger({ level: 'info', destination: out.stream });
    log.debug('hidden');
    log.child({ component: 'lease' }).info({ subnet: '10.244.3.0/24' }, 'acquired');
    log.error({ err: new Error('boom') }, 'failed');
    const lines = out.lines();
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 30, component: 'lease', subnet: '10.244.3.0/24', msg: 'acquired' });
    expect(lines[1]).toMatchObject({ level: 50, msg: 'failed', err: { type: 'Error', message: 'boom' } });
  });

  it('defaults to stderr and refuses unknown levels', () => {
    expect(createLogger({ level: 'trace' }).level).toBe('trace');
    expect(() => createLogger({ level: 'verbose' as never })).toThrow(InvalidArgumentError);
  });
});

describe('parseLogLevel', () => {
  it('accepts the six pino levels and names a bad one', () => {
    for (const level of LOG_LEVELS) expect(parseLogLevel(level)).toBe(level);
    expect(() => parseLogLevel('INFO', '--log-level')).toThrow('invalid --log-level "INFO": must be one of fatal, error, warn, info, debug, trace');
  });
});
