import { describe, expect, it } from 'vitest';
import { Masquerade, NftError, renderMasqueradeScript, renderRemoveScript, type NftResult, type NftRunner } from '../../src/nftables/index.js';

const spec = { clusterNetwork: '10.244.0.0/16', podSubnet: '10.244.3.0/24' };
const ok = (stdout = ''): NftResult => ({ code: 0, stdout, stderr: '' });

/** A fake nft: records every call and answers from `answer`. */
function fakeNft(answer: (args: readonly string[], input?: string) => NftResult | Promise<NftResult>) {
  const calls: { args: readonly string[]; input: string | undefined }[] = [];
  const runner: NftRunner = async (args, input) => {
    calls.push({ args, input });
    return answer(args, input);
  };
  return { calls, runner };
}

describe('Masquerade (with a fake nft)', () => {
  it('apply() feeds the rendered script to one `nft -f -`', async () => {
    const nft = fakeNft(() => ok());
    await new Masquerade({ runner: nft.runner }).apply(spec);
    expect(nft.calls).toEqual([{ args: ['-f', '-'], input: renderMasqueradeScript(spec) }]);
  });

  it('remove() runs the delete-if-present script', async () => {
    const nft = fakeNft(() => ok());
    await new Masquerade({ runner: nft.runner }).remove();
    expect(nft.calls).toEqual([{ args: ['-f', '-'], input: renderRemoveScript() }]);
  });

  it('apply() rejects invalid input before running nft', async () => {
    const nft = fakeNft(() => ok());
    await expect(new Masquerade({ runner: nft.runner }).apply({ clusterNetwork: '10.244.0.0/16', podSubnet: '10.9.0.0/24' }))
      .rejects.toThrow(/not inside the cluster network/);
    expect(nft.calls).toHaveLength(0);
  });

  it('turns a failing nft into an NftError carrying its stderr and exit code', async () => {
    const nft = fakeNft(() => ({ code: 1, stdout: '', stderr: 'Error: Could not process rule: No such file or directory\n' }));
    const err = await new Masquerade({ runner: nft.runner }).apply(spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NftError);
    expect(err).toMatchObject({ code: 'ENFT', exitCode: 1, command: 'nft -f -', stderr: 'Error: Could not process rule: No such file or directory\n' });
    expect((err as Error).message).toBe('nft -f -: exited with code 1: Error: Could not process rule: No such file or directory');
  });

  it('turns an nft that cannot start into an NftError with the cause', async () => {
    const enoent = Object.assign(new Error('spawn nft ENOENT'), { code: 'ENOENT' });
    const m = new Masquerade({ runner: () => Promise.reject(enoent) });
    const err = await m.remove().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NftError);
    expect((err as NftError).message).toMatch(/^nft -f -: could not run: spawn nft ENOENT/);
    expect((err as NftError).cause).toBe(enoent);
  });

  it('names the namespace and binary in messages when it builds the runner itself', async () => {
    const m = new Masquerade({ nftPath: '/nonexistent/nft-binary' });
    await expect(m.remove()).rejects.toThrow(/^\/nonexistent\/nft-binary -f -: could not run: spawn \/nonexistent\/nft-binary ENOENT/);
  });

  it('current() reads the table back from `nft -j list table ip twill`', async () => {
    const listing = '{"nftables":[{"table":{"family":"ip","name":"twill","handle":4}},{"chain":{"family":"ip","table":"twill","name":"forward","handle":1}}]}';
    const nft = fakeNft(() => ok(listing));
    const t = await new Masquerade({ runner: nft.runner }).current();
    expect(nft.calls.map((c) => c.args)).toEqual([['-j', 'list', 'table', 'ip', 'twill']]);
    expect(t).toMatchObject({ name: 'twill', handle: 4, chains: [{ name: 'forward' }], rules: [] });
  });

  it('current() is undefined when the table is absent: decided from `nft -j list tables`, not from the error text', async () => {
    const nft = fakeNft((args) => (args[2] === 'table'
      ? { code: 1, stdout: '', stderr: 'Error: No such file or directory\n' }
      : ok('{"nftables":[{"metainfo":{}},{"table":{"family":"ip","name":"filter","handle":1}}]}')));
    expect(await new Masquerade({ runner: nft.runner }).current()).toBeUndefined();
    expect(nft.calls.map((c) => c.args)).toEqual([['-j', 'list', 'table', 'ip', 'twill'], ['-j', 'list', 'tables', 'ip']]);
  });

  it('current() fails when listing fails although the table exists', async () => {
    const nft = fakeNft((args) => (args[2] === 'table'
      ? { code: 1, stdout: '', stderr: 'Error: Permission denied\n' }
      : ok('{"nftables":[{"table":{"family":"ip","name":"twill","handle":1}}]}')));
    await expect(new Masquerade({ runner: nft.runner }).current()).rejects.toThrow(/list table ip twill: exited with code 1: Error: Permission denied/);
  });

  it('current() reports output that is not JSON as an NftError', async () => {
    const nft = fakeNft(() => ok('table ip twill {\n}'));
    await expect(new Masquerade({ runner: nft.runner }).current()).rejects.toThrow(NftError);
  });

  it('runs operations one at a time, in call order, even when one fails', async () => {
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const nft = fakeNft(async (_args, input) => {
      const what = input === renderRemoveScript() ? 'remove' : 'apply';
      order.push(`${what}:start`);
      if (order.length === 1) await gate;
      order.push(`${what}:end`);
      return what === 'apply' ? { code: 1, stdout: '', stderr: 'boom' } : ok();
    });
    const m = new Masquerade({ runner: nft.runner });
    const a = m.apply(spec);
    const r = m.remove();
    await Promise.resolve();
    release();
    await expect(a).rejects.toThrow(/boom/);
    await r;
    expect(order).toEqual(['apply:start', 'apply:end', 'remove:start', 'remove:end']);
  });
});
