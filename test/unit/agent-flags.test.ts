import { describe, expect, it } from 'vitest';
import { agentHelpText, envName, flagsForLog, parseAgentFlags, type AgentFlags } from '../../src/agent/flags.js';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { twillVersion } from '../../src/core/version.js';

/** The flags for `argv` and `env`, failing the test if the result is help or version. */
function run(argv: string[], env: NodeJS.ProcessEnv = {}): AgentFlags {
  const result = parseAgentFlags(argv, env);
  if (result.kind !== 'run') throw new Error(`expected run, got ${result.kind}`);
  return result.flags;
}

/** The message of the InvalidArgumentError that parsing throws. */
function failure(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseAgentFlags(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return (err as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(argv)} to be rejected`);
}

const ALL_FLAGS = [
  'etcd-endpoints', 'etcd-cafile', 'etcd-certfile', 'etcd-keyfile', 'etcd-username', 'etcd-password', 'etcd-prefix',
  'iface', 'public-ip', 'subnet-file', 'subnet-lease-ttl', 'ip-masq', 'healthz-addr', 'metrics', 'log-level', 'resync-interval',
];

describe('twilld flags', () => {
  it('has flannel-like defaults and freezes the result', () => {
    const flags = run([]);
    expect(flags).toEqual({
      etcdEndpoints: ['http://127.0.0.1:2379'],
      etcdCaFile: undefined,
      etcdCertFile: undefined,
      etcdKeyFile: undefined,
      etcdUsername: undefined,
      etcdPassword: undefined,
      etcdPrefix: '/coreos.com/network',
      ifaces: [],
      publicIp: undefined,
      subnetFile: '/run/twill/subnet.env',
      subnetLeaseTtlMs: 86_400_000,
      ipMasq: false,
      healthzAddr: '127.0.0.1:9101',
      metrics: true,
      logLevel: 'info',
      resyncIntervalMs: 300_000, // issue 18: drift repair is event-driven; the full resync is the rare safety net
      cniSocket: '/run/twill/cni.sock',
      cniDataDir: '/run/twill/ipam',
      cniWorkers: 8,
      cniTimeoutMs: 60_000,
      cniSocketGroup: undefined,
      cniConfDir: '/etc/cni/net.d',
      bgp: { asn: undefined, routerId: undefined, peers: [], listen: undefined, speaker: undefined, gobgpApi: undefined },
    });
    expect(Object.isFrozen(flags)).toBe(true);
    expect(Object.isFrozen(flags.etcdEndpoints)).toBe(true);
    expect(Object.isFrozen(flags.ifaces)).toBe(true);
  });

  it('reads every flag', () => {
    const flags = run([
      '--etcd-endpoints=https://10.0.0.1:2379', '--etcd-cafile', '/etc/twill/ca.pem', '--etcd-certfile', '/etc/twill/c.pem',
      '--etcd-keyfile', '/etc/twill/k.pem', '--etcd-username', 'twill', '--etcd-password', 's3cret', '--etcd-prefix', '/twill/net',
      '--iface', 'eth1', '--public-ip', '198.18.0.7', '--subnet-file', '/tmp/x/subnet.env', '--subnet-lease-ttl', '1h',
      '--ip-masq', '--healthz-addr', '[::1]:0', '--no-metrics', '--log-level', 'debug', '--resync-interval', '500ms',
      '--cni-socket', 'off', '--cni-data-dir', '/var/lib/twill/ipam', '--cni-workers', '3',
      '--cni-timeout', '90s', '--cni-socket-group', '4242', '--cni-conf-dir', 'off',
      '--bgp-asn', '65001', '--bgp-router-id', '198.18.0.9', '--bgp-peer', '198.18.0.254,asn=65000,password=tor-key,multihop=2',
      '--bgp-peer', '198.18.0.253,asn=65000,port=1179', '--bgp-listen', '198.18.0.7:1179', '--bgp-speaker', 'gobgp', '--gobgp-api', '127.0.0.1:50051',
    ]);
    expect(flags).toEqual({
      etcdEndpoints: ['https://10.0.0.1:2379'],
      etcdCaFile: '/etc/twill/ca.pem',
      etcdCertFile: '/etc/twill/c.pem',
      etcdKeyFile: '/etc/twill/k.pem',
      etcdUsername: 'twill',
      etcdPassword: 's3cret',
      etcdPrefix: '/twill/net',
      ifaces: ['eth1'],
      publicIp: '198.18.0.7',
      subnetFile: '/tmp/x/subnet.env',
      subnetLeaseTtlMs: 3_600_000,
      ipMasq: true,
      healthzAddr: '[::1]:0',
      metrics: false,
      logLevel: 'debug',
      resyncIntervalMs: 500,
      cniSocket: undefined,
      cniDataDir: '/var/lib/twill/ipam',
      cniWorkers: 3,
      cniTimeoutMs: 90_000,
      cniSocketGroup: 4242,
      cniConfDir: undefined,
      bgp: {
        asn: 65001, routerId: '198.18.0.9', listen: { address: '198.18.0.7', port: 1179 }, speaker: 'gobgp', gobgpApi: '127.0.0.1:50051',
        peers: [
          { address: '198.18.0.254', asn: 65000, password: 'tor-key', port: 179, multihop: 2 },
          { address: '198.18.0.253', asn: 65000, password: undefined, port: 1179, multihop: undefined },
        ],
      },
    });
    expect(flagsForLog(flags).etcdPassword).toBe('<hidden>');
    expect(JSON.stringify(flagsForLog(flags))).not.toContain('tor-key');
  });

  it('bgp flags: several peers in one environment variable; bad values name the flag and never echo a password', () => {
    expect(run([], { TWILLD_BGP_PEER: '198.18.0.254,asn=65000;198.18.0.253,asn=65000' }).bgp.peers.map((p) => p.address)).toEqual(['198.18.0.254', '198.18.0.253']);
    expect(() => run(['--bgp-asn', '23456'])).toThrow(/--bgp-asn.*AS_TRANS/);
    expect(() => run(['--bgp-asn', 'x'])).toThrow(/--bgp-asn/);
    expect(() => run(['--bgp-router-id', '::1'])).toThrow(/--bgp-router-id/);
    expect(() => run(['--bgp-listen', '198.18.0.1'])).toThrow(/--bgp-listen/);
    expect(() => run(['--bgp-speaker', 'bird'])).toThrow(/--bgp-speaker/);
    expect(() => run(['--bgp-peer', '198.18.0.254,asn=65000,passwd=secret1'])).toThrow(/--bgp-peer/);
    let message = '';
    try { run(['--bgp-peer', '198.18.0.254,asn=65000,password=abc,secret2']); } catch (err) { message = (err as Error).message; }
    expect(message).toMatch(/--bgp-peer/);
    expect(message).not.toContain('secret2');
  });

  it('takes IPv6 addresses for --iface and --public-ipv6, in canonical form', () => {
    expect(run(['--iface', 'FD00:0:0:0::1,eth0', '--public-ipv6', '2001:DB8:0:0::7'])).toMatchObject({ ifaces: ['fd00::1', 'eth0'], publicIpv6: '2001:db8::7' });
    expect(run([], { TWILLD_PUBLIC_IPV6: 'fd00::9' }).publicIpv6).toBe('fd00::9');
    expect(run([]).publicIpv6).toBeUndefined();
  });

  it('takes etcd endpoints and interfaces comma-separated and repeated, in order, without duplicates', () => {
    const flags = run(['--etcd-endpoints', 'http://a:2379, http://b:2379', '--etcd-endpoints', 'http://c:2379/', '--etcd-endpoints=http://a:2379', '--iface', 'eth0,10.0.0.5', '--iface', 'bond0']);
    expect(flags.etcdEndpoints).toEqual(['http://a:2379', 'http://b:2379', 'http://c:2379']);
    expect(flags.ifaces).toEqual(['eth0', '10.0.0.5', 'bond0']);
    expect(run([], { TWILLD_ETCD_ENDPOINTS: 'http://a:2379,http://[fd00::1]:2379', TWILLD_IFACE: 'eth0,eth1' })).toMatchObject({
      etcdEndpoints: ['http://a:2379', 'http://[fd00::1]:2379'],
      ifaces: ['eth0', 'eth1'],
    });
  });

  it('reads TWILLD_* variables; a flag wins over its variable; an empty variable is unset', () => {
    const env = {
      TWILLD_ETCD_PREFIX: '/env/prefix',
      TWILLD_LOG_LEVEL: 'warn',
      TWILLD_IP_MASQ: '1',
      TWILLD_METRICS: 'FALSE',
      TWILLD_SUBNET_LEASE_TTL: '600',
      TWILLD_PUBLIC_IP: '',
      TWILLD_ETCD_ENDPOINTS: 'http://env:2379',
      TWILLD_HEALTHZ_ADDR: 'off',
      PATH: '/usr/bin',
    };
    expect(run([], env)).toMatchObject({
      etcdPrefix: '/env/prefix', logLevel: 'warn', ipMasq: true, metrics: false, subnetLeaseTtlMs: 600_000,
      publicIp: undefined, etcdEndpoints: ['http://env:2379'], healthzAddr: undefined,
    });
    expect(run(['--etcd-prefix=/flag', '--log-level', 'error', '--no-ip-masq', '--metrics', '--etcd-endpoints', 'http://flag:2379', '--healthz-addr', '0.0.0.0:9102'], env)).toMatchObject({
      etcdPrefix: '/flag', logLevel: 'error', ipMasq: false, metrics: true, etcdEndpoints: ['http://flag:2379'], healthzAddr: '0.0.0.0:9102',
    });
  });

  it('takes booleans as --flag, --flag=true|false (Go style), --no-flag; the last one wins', () => {
    expect(run(['--ip-masq=false']).ipMasq).toBe(false);
    expect(run(['--ip-masq=true']).ipMasq).toBe(true);
    expect(run(['--metrics=0']).metrics).toBe(false);
    expect(run(['--no-ip-masq', '--ip-masq']).ipMasq).toBe(true);
    expect(run(['--ip-masq', '--no-ip-masq']).ipMasq).toBe(false);
  });

  it('disables the health listener with "" or off, keeps port 0', () => {
    expect(run(['--healthz-addr=']).healthzAddr).toBeUndefined();
    expect(run(['--healthz-addr', 'off']).healthzAddr).toBeUndefined();
    expect(run(['--healthz-addr', '127.0.0.1:0']).healthzAddr).toBe('127.0.0.1:0');
    expect(run(['--healthz-addr', 'localhost:9101']).healthzAddr).toBe('localhost:9101');
  });

  it('answers --help and --version before checking anything else', () => {
    expect(parseAgentFlags(['--help'], {})).toEqual({ kind: 'help', text: agentHelpText() });
    expect(parseAgentFlags(['-h', '--etcd-endpoints', 'nonsense'], { TWILLD_TYPO: 'x' }).kind).toBe('help');
    expect(parseAgentFlags(['--version'], {})).toEqual({ kind: 'version', text: `twilld ${twillVersion()}\n` });
  });

  it('rejects every bad value with a message naming the flag and the value', () => {
    const cases: [string[], string][] = [
      [['--etcd-endpoints', 'foo'], 'invalid --etcd-endpoints "foo": not a URL'],
      [['--etcd-endpoints', '127.0.0.1:2379'], 'invalid --etcd-endpoints "127.0.0.1:2379"'],
      [['--etcd-endpoints', 'grpc://a:2379'], 'invalid --etcd-endpoints "grpc://a:2379": must start with http:// or https://'],
      [['--etcd-endpoints', 'http://a:2379,'], 'invalid --etcd-endpoints "": an endpoint is empty'],
      [['--etcd-endpoints', 'http://u:p@a:2379'], 'invalid --etcd-endpoints "http://u:p@a:2379": credentials go in'],
      [['--etcd-endpoints', 'http://a:2379/v3'], 'invalid --etcd-endpoints "http://a:2379/v3": must be scheme://host:port only'],
      [['--etcd-endpoints', 'https://a:2379', '--etcd-certfile', '/c.pem'], 'invalid --etcd-certfile "/c.pem": --etcd-keyfile is missing'],
      [['--etcd-endpoints', 'https://a:2379', '--etcd-keyfile', '/k.pem'], 'invalid --etcd-keyfile "/k.pem": --etcd-certfile is missing'],
      [['--etcd-cafile', '/ca.pem'], 'invalid --etcd-cafile "/ca.pem": TLS files are set but every etcd endpoint is http://'],
      [['--etcd-endpoints', 'https://a:2379', '--etcd-cafile='], 'invalid --etcd-cafile "": must not be empty'],
      [['--etcd-username', 'twill'], 'invalid --etcd-username "twill": --etcd-password is missing'],
      [['--etcd-password', 'secret'], 'invalid --etcd-password "<hidden>": --etcd-username is missing'],
      [['--etcd-prefix', 'coreos.com/network'], 'invalid --etcd-prefix "coreos.com/network": must start with "/"'],
      [['--etcd-prefix', '/coreos.com/network/'], 'invalid --etcd-prefix "/coreos.com/network/": must not end with "/"'],
      [['--etcd-prefix', '/'], 'invalid --etcd-prefix "/"'],
      [['--iface', 'this-name-is-too-long'], 'invalid --iface "this-name-is-too-long": neither an IP address nor an interface name'],
      [['--iface', 'fe80::1%eth0'], 'invalid --iface "fe80::1%eth0": neither an IP address nor an interface name'],
      [['--iface', 'eth0,,eth1'], 'invalid --iface ""'],
      [['--public-ip', '10.0.0.256'], 'invalid --public-ip "10.0.0.256": not an IPv4 address'],
      [['--public-ip', 'fd00::1'], 'invalid --public-ip "fd00::1": not an IPv4 address'],
      [['--public-ipv6', '198.18.0.7'], 'invalid --public-ipv6 "198.18.0.7": not an IPv6 address'],
      [['--public-ipv6', 'fd00::1%eth0'], 'invalid --public-ipv6 "fd00::1%eth0": not an IPv6 address'],
      [['--public-ipv6', 'fe80::1'], 'invalid --public-ipv6 "fe80::1": is in the link-local range fe80::/10'],
      [['--public-ipv6', 'ff02::1'], 'invalid --public-ipv6 "ff02::1": is in the multicast range ff00::/8'],
      [['--public-ipv6', '::1'], 'invalid --public-ipv6 "::1": is in the range ::/96'],
      [['--public-ipv6', '::ffff:198.18.0.7'], 'invalid --public-ipv6 "::ffff:198.18.0.7": is in the IPv4-mapped range'],
      [['--subnet-file', 'subnet.env'], 'invalid --subnet-file "subnet.env": must be an absolute path'],
      [['--subnet-file', '/run/twill/'], 'invalid --subnet-file "/run/twill/"'],
      [['--subnet-lease-ttl', '1d'], 'invalid --subnet-lease-ttl "1d": cannot read "1d"'],
      [['--subnet-lease-ttl', '1s'], 'invalid --subnet-lease-ttl "1s": must be at least 2s'],
      [['--subnet-lease-ttl', '2500ms'], 'invalid --subnet-lease-ttl "2500ms": must be whole seconds'],
      [['--ip-masq=yes'], 'invalid --ip-masq "yes": must be true or false'],
      [['--no-ip-masq=true'], 'invalid --no-ip-masq "true": takes no value'],
      [['--metrics=maybe'], 'invalid --metrics "maybe"'],
      [['--healthz-addr', '127.0.0.1'], 'invalid --healthz-addr "127.0.0.1": expected host:port'],
      [['--healthz-addr', ':9101'], 'invalid --healthz-addr ":9101": the host is missing'],
      [['--healthz-addr', '127.0.0.1:70000'], 'invalid --healthz-addr "127.0.0.1:70000": the port must be 0..65535'],
      [['--healthz-addr', '[nope]:1'], 'invalid --healthz-addr "[nope]:1"'],
      [['--healthz-addr', 'a_b:1'], 'invalid --healthz-addr "a_b:1"'],
      [['--log-level', 'verbose'], 'invalid --log-level "verbose": must be one of fatal, error, warn, info, debug, trace'],
      [['--resync-interval', '10'], ''], // valid: a bare number is seconds (checked below)
      [['--resync-interval', '50ms'], 'invalid --resync-interval "50ms": must be at least 100ms'],
      [['--cni-workers', '0'], 'invalid --cni-workers "0": must be an integer from 1 to 64'],
      [['--cni-workers', '2.5'], 'invalid --cni-workers "2.5"'],
      [['--cni-workers', '65'], 'invalid --cni-workers "65"'],
      [['--cni-timeout', '500ms'], 'invalid --cni-timeout "500ms": must be at least 1s'],
      [['--cni-timeout', '3m'], 'invalid --cni-timeout "3m": must be at most 2m'],
      [['--cni-socket-group', 'docker'], 'invalid --cni-socket-group "docker": must be an integer from 0 to 4294967294'],
      [['--cni-conf-dir', 'net.d'], 'invalid --cni-conf-dir "net.d": must be an absolute path'],
      [['--resync-interval', 'often'], 'invalid --resync-interval "often"'],
      [['--etcd-prefix'], 'invalid --etcd-prefix "": needs a value'],
      [['--etcd-prefix', '--iface', 'eth0'], 'invalid --etcd-prefix "--iface": the value looks like an option; write --etcd-prefix=VALUE'],
      [['--etcd-prefix=-x'], 'invalid --etcd-prefix "-x": must start with "/"'],
      [['--bogus'], 'invalid option "--bogus": unknown option'],
      [['-x'], 'invalid option "-x": unknown option'],
      [['--help=1'], 'invalid --help "1": takes no value'],
      [['eth0'], 'invalid argument "eth0": twilld takes no positional arguments'],
      [['--ip-masq', 'false'], 'invalid argument "false"'],
    ];
    for (const [argv, message] of cases) {
      if (message === '') {
        expect(() => run(argv)).not.toThrow();
        continue;
      }
      expect(failure(argv)).toContain(message);
    }
  });

  it('names the environment variable when the bad value came from there, and refuses unknown TWILLD_ names', () => {
    expect(failure([], { TWILLD_ETCD_ENDPOINTS: 'foo' })).toContain('invalid TWILLD_ETCD_ENDPOINTS "foo": not a URL');
    expect(failure([], { TWILLD_IP_MASQ: 'on' })).toContain('invalid TWILLD_IP_MASQ "on"');
    expect(failure([], { TWILLD_SUBNET_LEASE_TTL: '1' })).toContain('invalid TWILLD_SUBNET_LEASE_TTL "1": must be at least 2s');
    expect(failure([], { TWILLD_IFACES: 'eth0' })).toContain('invalid environment variable "TWILLD_IFACES": is not a twilld setting');
    // The flag wins, so a bad variable under a good flag is never read.
    expect(run(['--log-level', 'debug'], { TWILLD_LOG_LEVEL: 'loud' }).logLevel).toBe('debug');
  });

  it('lists every flag in --help with its environment variable and default', () => {
    const help = agentHelpText();
    for (const name of ALL_FLAGS) {
      expect(help).toContain(`--${name}`);
      expect(help).toContain(envName(name));
    }
    expect(envName('subnet-lease-ttl')).toBe('TWILLD_SUBNET_LEASE_TTL');
    for (const dflt of ['http://127.0.0.1:2379', '/coreos.com/network', '/run/twill/subnet.env', '24h', '127.0.0.1:9101', '5m']) {
      expect(help).toContain(`default ${dflt}`);
    }
    expect(help).toContain('--no-metrics');
    expect(help).toContain('-h, --help');
    expect(help).toContain('--version');
    for (const line of help.split('\n')) expect(line.length).toBeLessThanOrEqual(100);
  });
});
