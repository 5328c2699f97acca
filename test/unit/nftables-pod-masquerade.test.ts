import { describe, expect, it } from 'vitest';
import { NftError, PodMasquerade, podMasqueradeOwner, type NftResult, type NftRunner } from '../../src/nftables/index.js';

const ok = (stdout = ''): NftResult => ({ code: 0, stdout, stderr: '' });

/** A fake nft: records every call and answers from `answer`. */
function fakeNft(answer: (args: readonly string[], input?: string) => NftResult = () => ok()) {
  const calls: { args: readonly string[]; input: string | undefined }[] = [];
  const runner: NftRunner = (args, input) => {
    calls.push({ args, input });
    return Promise.resolve(answer(args, input));
  };
  return { calls, runner };
}

const OWNER = podMasqueradeOwner('/run/twill/ipam', 'twill');

/** The add script of one family's section, as the plugin has written it for IPv4 since 0.1.0. */
function addSection(family: 'ip' | 'ip6', pod: string, subnet: string, network: string, owner: string | undefined): string[] {
  const type = family === 'ip' ? 'ipv4_addr' : 'ipv6_addr';
  const multicast = family === 'ip' ? '224.0.0.0/4' : 'ff00::/8';
  const t = `${family} twill-cni`;
  return [
    `add table ${t}`,
    `add set ${t} masq-pods { type ${type}; comment "pods whose CNI config has ipMasq"; }`,
    `add set ${t} pod-subnets { type ${type}; flags interval; comment "this host's pod subnets"; }`,
    `add set ${t} cluster-networks { type ${type}; flags interval; comment "cluster networks: pod to pod keeps its source"; }`,
    `add chain ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    `flush chain ${t} postrouting`,
    `add rule ${t} postrouting ${family} saddr @masq-pods ${family} daddr != @pod-subnets ${family} daddr != @cluster-networks ${family} daddr != ${multicast} masquerade comment "twill CNI ipMasq"`,
    `add element ${t} pod-subnets { ${subnet} }`,
    `add element ${t} cluster-networks { ${network} }`,
    `add element ${t} masq-pods { ${pod}${owner === undefined ? '' : ` comment "${owner}"`} }`,
  ];
}

const V4 = { ip: '10.244.3.5', subnet: '10.244.3.0/24', clusterNetwork: '10.244.0.0/16' };
const V6 = { ip: 'fd00:10:244:3::5', subnet: 'fd00:10:244:3::/64', clusterNetwork: 'fd00:10:244::/56' };

describe('PodMasquerade (with a fake nft)', () => {
  it('add() of an IPv4 pod writes the `ip twill-cni` script, exactly as before dual-stack', async () => {
    const nft = fakeNft();
    await new PodMasquerade({ runner: nft.runner }).add(V4.ip, V4.subnet, V4.clusterNetwork, OWNER);
    expect(nft.calls).toEqual([{
      args: ['-f', '-'],
      input: `${[
        'add table ip twill-cni',
        'add set ip twill-cni masq-pods { type ipv4_addr; comment "pods whose CNI config has ipMasq"; }',
        'add set ip twill-cni pod-subnets { type ipv4_addr; flags interval; comment "this host\'s pod subnets"; }',
        'add set ip twill-cni cluster-networks { type ipv4_addr; flags interval; comment "cluster networks: pod to pod keeps its source"; }',
        'add chain ip twill-cni postrouting { type nat hook postrouting priority srcnat; policy accept; }',
        'flush chain ip twill-cni postrouting',
        'add rule ip twill-cni postrouting ip saddr @masq-pods ip daddr != @pod-subnets ip daddr != @cluster-networks ip daddr != 224.0.0.0/4 masquerade comment "twill CNI ipMasq"',
        'add element ip twill-cni pod-subnets { 10.244.3.0/24 }',
        'add element ip twill-cni cluster-networks { 10.244.0.0/16 }',
        `add element ip twill-cni masq-pods { 10.244.3.5 comment "${OWNER}" }`,
      ].join('\n')}\n`,
    }]);
  });

  it('addPod() of a dual-stack pod writes both tables in one transaction, IPv4 first', async () => {
    const nft = fakeNft();
    // Given IPv6 first: the script's order does not depend on the caller's.
    await new PodMasquerade({ runner: nft.runner }).addPod([V6, V4], OWNER);
    expect(nft.calls).toHaveLength(1);
    expect(nft.calls[0]!.args).toEqual(['-f', '-']);
    expect(nft.calls[0]!.input).toBe(`${[
      ...addSection('ip', V4.ip, V4.subnet, V4.clusterNetwork, OWNER),
      ...addSection('ip6', V6.ip, V6.subnet, V6.clusterNetwork, OWNER),
    ].join('\n')}\n`);
    expect(nft.calls[0]!.input).toContain('add rule ip6 twill-cni postrouting ip6 saddr @masq-pods ip6 daddr != @pod-subnets ip6 daddr != @cluster-networks ip6 daddr != ff00::/8 masquerade comment "twill CNI ipMasq"');
  });

  it('an IPv6-only pod touches `ip6 twill-cni` only; addresses reach nft in canonical form', async () => {
    const nft = fakeNft();
    await new PodMasquerade({ runner: nft.runner }).add('FD00:10:244:3:0:0:0:5', 'fd00:10:244:3:0::/64', 'FD00:10:244::/56');
    expect(nft.calls[0]!.input).toBe(`${addSection('ip6', 'fd00:10:244:3::5', 'fd00:10:244:3::/64', 'fd00:10:244::/56', undefined).join('\n')}\n`);
    expect(nft.calls[0]!.input).not.toMatch(/\bip twill-cni|ipv4_addr/);
  });

  it('addPod() of no address runs nothing', async () => {
    const nft = fakeNft();
    await new PodMasquerade({ runner: nft.runner }).addPod([], OWNER);
    expect(nft.calls).toEqual([]);
  });

  it('refuses a subnet or cluster network of the other family, before running nft', async () => {
    const nft = fakeNft();
    const m = new PodMasquerade({ runner: nft.runner });
    await expect(m.add(V6.ip, V4.subnet, V6.clusterNetwork)).rejects.toThrow(
      'invalid pod subnet "10.244.3.0/24": is IPv4 but the pod IP fd00:10:244:3::5 is IPv6: an address is masqueraded with its own family\'s pod subnet and cluster network');
    await expect(m.add(V4.ip, V4.subnet, V6.clusterNetwork)).rejects.toThrow(/^invalid cluster network "fd00:10:244::\/56": is IPv6 but the pod IP 10\.244\.3\.5 is IPv4/);
    await expect(m.addPod([V4, { ...V6, subnet: V4.subnet }])).rejects.toMatchObject({ code: 'EINVAL_ARG', what: 'pod subnet' });
    expect(nft.calls).toEqual([]);
  });

  it('never passes text that is not an address, a prefix or a plain owner tag', async () => {
    const nft = fakeNft();
    const m = new PodMasquerade({ runner: nft.runner });
    const evil = '10.244.3.5 }; flush ruleset; add element ip twill-cni masq-pods { 10.244.3.6';
    await expect(m.add(evil, V4.subnet, V4.clusterNetwork)).rejects.toThrow(/pod IP/);
    await expect(m.add(V6.ip, 'fd00:10:244:3::/64 }; flush ruleset', V6.clusterNetwork)).rejects.toThrow(/pod subnet/);
    await expect(m.add(V6.ip, 'fd00:10:244:3::1/64', V6.clusterNetwork)).rejects.toThrow(/host bits are set/);
    await expect(m.addPod([V4, V6], 'x" ; flush ruleset; "')).rejects.toThrow(NftError);
    await expect(m.remove([V4.ip, 'fd00::1 } ; flush ruleset'])).rejects.toThrow(/pod IP/);
    expect(nft.calls).toEqual([]);
  });

  it('remove() of IPv4 addresses writes exactly the pre-dual-stack script', async () => {
    const nft = fakeNft();
    await new PodMasquerade({ runner: nft.runner }).remove(['10.244.3.5', '10.244.3.6']);
    expect(nft.calls).toEqual([{
      args: ['-f', '-'],
      input: `${[
        'add table ip twill-cni',
        'add set ip twill-cni masq-pods { type ipv4_addr; comment "pods whose CNI config has ipMasq"; }',
        'add element ip twill-cni masq-pods { 10.244.3.5, 10.244.3.6 }',
        'delete element ip twill-cni masq-pods { 10.244.3.5, 10.244.3.6 }',
      ].join('\n')}\n`,
    }]);
  });

  it('remove() of a dual-stack pod deletes from both tables in one transaction; IPv6 only touches ip6', async () => {
    const nft = fakeNft();
    const m = new PodMasquerade({ runner: nft.runner });
    await m.remove([V6.ip, V4.ip]);
    await m.remove(['FD00:10:244:3:0::7']);
    await m.remove([]);
    expect(nft.calls.map((c) => c.input)).toEqual([
      `${[
        'add table ip twill-cni',
        'add set ip twill-cni masq-pods { type ipv4_addr; comment "pods whose CNI config has ipMasq"; }',
        'add element ip twill-cni masq-pods { 10.244.3.5 }',
        'delete element ip twill-cni masq-pods { 10.244.3.5 }',
        'add table ip6 twill-cni',
        'add set ip6 twill-cni masq-pods { type ipv6_addr; comment "pods whose CNI config has ipMasq"; }',
        'add element ip6 twill-cni masq-pods { fd00:10:244:3::5 }',
        'delete element ip6 twill-cni masq-pods { fd00:10:244:3::5 }',
      ].join('\n')}\n`,
      `${[
        'add table ip6 twill-cni',
        'add set ip6 twill-cni masq-pods { type ipv6_addr; comment "pods whose CNI config has ipMasq"; }',
        'add element ip6 twill-cni masq-pods { fd00:10:244:3::7 }',
        'delete element ip6 twill-cni masq-pods { fd00:10:244:3::7 }',
      ].join('\n')}\n`,
    ]);
  });

  it('list() reads both families\' sets, IPv4 first; a missing table is an empty family', async () => {
    const set = (family: string, elem: unknown[]): string => JSON.stringify({ nftables: [{ metainfo: {} }, { set: { family, name: 'masq-pods', table: 'twill-cni', elem } }] });
    const nft = fakeNft((args) => (args[3] === 'ip'
      ? ok(set('ip', ['10.244.3.9', { elem: { val: '10.244.3.5', comment: OWNER } }]))
      : ok(set('ip6', [{ elem: { val: 'fd00:10:244:3::5', comment: OWNER } }, 'fd00:10:244:3::9']))));
    const m = new PodMasquerade({ runner: nft.runner });
    expect(await m.list()).toEqual([
      { address: '10.244.3.9', owner: undefined },
      { address: '10.244.3.5', owner: OWNER },
      { address: 'fd00:10:244:3::5', owner: OWNER },
      { address: 'fd00:10:244:3::9', owner: undefined },
    ]);
    expect(nft.calls.map((c) => c.args)).toEqual([
      ['-j', 'list', 'set', 'ip', 'twill-cni', 'masq-pods'],
      ['-j', 'list', 'set', 'ip6', 'twill-cni', 'masq-pods'],
    ]);

    const v4only = fakeNft((args) => (args[3] === 'ip'
      ? ok(set('ip', ['10.244.3.9']))
      : { code: 1, stdout: '', stderr: 'Error: No such file or directory\nlist set ip6 twill-cni masq-pods\n' }));
    expect(await new PodMasquerade({ runner: v4only.runner }).list()).toEqual([{ address: '10.244.3.9', owner: undefined }]);
  });

  it('list() fails with an NftError on any other nft failure', async () => {
    const nft = fakeNft((args) => (args[3] === 'ip' ? ok('{"nftables":[]}') : { code: 1, stdout: '', stderr: 'Error: Operation not permitted\n' }));
    await expect(new PodMasquerade({ runner: nft.runner }).list()).rejects.toThrow(/^nft -j list set ip6 twill-cni masq-pods: exited with code 1: Error: Operation not permitted/);
  });
});
