import { describe, expect, it } from 'vitest';
import { parseDemoFlags } from '../../src/ctl/demo/flags.js';

describe('twillctl demo flags', () => {
  const flags = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
    const c = parseDemoFlags(argv, env);
    if (c.kind !== 'run') throw new Error(`expected a run, got ${c.kind}`);
    return c.flags;
  };

  it('waits 30 s for readiness unless --ready-timeout or TWILL_DEMO_READY_TIMEOUT says otherwise', () => {
    expect(flags([]).readyTimeoutMs).toBe(30_000);
    expect(flags(['--ready-timeout', '2m']).readyTimeoutMs).toBe(120_000);
    expect(flags([], { TWILL_DEMO_READY_TIMEOUT: '90' }).readyTimeoutMs).toBe(90_000);
  });

  it('refuses a readiness deadline that is not a duration between 1s and 1h, naming the flag', () => {
    expect(() => flags(['--ready-timeout', '500ms'])).toThrow(/ready-timeout.*500ms.*between 1s and 1h/);
    expect(() => flags(['--ready-timeout', '2h'])).toThrow(/between 1s and 1h/);
    expect(() => flags(['--ready-timeout', 'soon'])).toThrow(/ready-timeout.*soon/);
  });
});
