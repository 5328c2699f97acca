import { describe, expect, it } from 'vitest';
import { serve } from '../../src/ctl/bgp/serve.js';
import type { ServeConfig } from '../../src/ctl/bgp/serve-flags.js';

// `twillctl bgp serve` runs the speaker's warm-up before anything else and says so in a line of
// its own; --warm-up-prefixes 0 starts at once. No peers and no listener: nothing touches a socket.

const config = (warmUpPrefixes: number): ServeConfig => ({
  asn: 65001, routerId: '198.18.0.1', listen: [], peers: [], announce: [], accept: [], printRoutes: false, netns: undefined, warmUpPrefixes,
});

async function events(warmUpPrefixes: number): Promise<Record<string, unknown>[]> {
  const lines: Record<string, unknown>[] = [];
  const ac = new AbortController();
  await serve(config(warmUpPrefixes), (line) => {
    lines.push(line);
    if (line.event === 'ready') ac.abort();
  }, ac.signal);
  return lines;
}

describe('twillctl bgp serve warm-up', () => {
  it('passes the whole synthetic table before the speaker is ready', async () => {
    const lines = await events(2_000);
    expect(lines.map((l) => l.event)).toEqual(['warm-up', 'ready', 'stopped']);
    expect(lines[0]).toMatchObject({ prefixes: 2_000, received: 2_000 });
  });

  it('starts at once with 0', async () => {
    expect((await events(0)).map((l) => l.event)).toEqual(['ready', 'stopped']);
  });
});
