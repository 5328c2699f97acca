import { InvalidArgumentError } from './errors.js';
import { FlagValues, nonEmpty, type FlagSpec } from './flag-parser.js';

/** How to reach etcd, as both twilld and twillctl take it on their command lines. */
export interface EtcdFlags {
  readonly etcdEndpoints: readonly string[];
  readonly etcdCaFile: string | undefined;
  readonly etcdCertFile: string | undefined;
  readonly etcdKeyFile: string | undefined;
  readonly etcdUsername: string | undefined;
  readonly etcdPassword: string | undefined;
  readonly etcdPrefix: string;
}

export const ETCD_FLAGS: readonly FlagSpec[] = [
  { name: 'etcd-endpoints', kind: 'list', arg: 'URL[,URL...]', default: 'http://127.0.0.1:2379', help: 'etcd client URLs (http:// or https://), comma-separated and/or repeated.' },
  { name: 'etcd-cafile', kind: 'string', arg: 'FILE', help: 'CA certificates that sign the etcd servers\' certificates (default: the system CAs).' },
  { name: 'etcd-certfile', kind: 'string', arg: 'FILE', help: 'client certificate for etcd; needs --etcd-keyfile.' },
  { name: 'etcd-keyfile', kind: 'string', arg: 'FILE', help: 'private key of the client certificate; needs --etcd-certfile.' },
  { name: 'etcd-username', kind: 'string', arg: 'NAME', help: 'etcd user; needs --etcd-password.' },
  { name: 'etcd-password', kind: 'string', arg: 'PASSWORD', help: 'etcd password; prefer the environment variable, since every user can read command lines.' },
  { name: 'etcd-prefix', kind: 'string', arg: 'PATH', default: '/coreos.com/network', help: 'etcd key prefix of the network, as in flannel: <prefix>/config holds the network config, <prefix>/subnets/ the leases.' },
];

export function parseEtcdFlags(v: FlagValues): EtcdFlags {
  const endpoints = v.list('etcd-endpoints');
  const etcdEndpoints = [...new Set(endpoints.items.map((e) => etcdEndpoint(e, endpoints.what)))];
  const prefix = v.required('etcd-prefix');
  return {
    etcdEndpoints: Object.freeze(etcdEndpoints),
    ...etcdTls(v, etcdEndpoints),
    ...etcdAuth(v),
    etcdPrefix: etcdPrefix(prefix.value, prefix.what),
  };
}

/** The flags as a log line may show them: the password replaced. */
export function hidePassword<T extends EtcdFlags>(flags: T): T {
  return { ...flags, etcdPassword: flags.etcdPassword === undefined ? undefined : '<hidden>' };
}

function etcdEndpoint(value: string, what: string): string {
  if (value === '') throw new InvalidArgumentError(what, value, 'an endpoint is empty (a stray comma?)');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(what, value, 'not a URL; expected e.g. http://127.0.0.1:2379');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(what, value, 'must start with http:// or https://');
  if (url.username !== '' || url.password !== '') {
    throw new InvalidArgumentError(what, value, 'credentials go in --etcd-username and --etcd-password, not in the URL');
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new InvalidArgumentError(what, value, 'must be scheme://host:port only, without a path, query or fragment');
  }
  return url.origin;
}

function etcdTls(v: FlagValues, endpoints: readonly string[]): Pick<EtcdFlags, 'etcdCaFile' | 'etcdCertFile' | 'etcdKeyFile'> {
  const file = (name: string): { what: string; value: string } | undefined => {
    const r = v.lookup(name);
    return r === undefined ? undefined : { what: r.what, value: nonEmpty(r.values[r.values.length - 1]!, r.what) };
  };
  const ca = file('etcd-cafile');
  const cert = file('etcd-certfile');
  const key = file('etcd-keyfile');
  if (cert !== undefined && key === undefined) throw new InvalidArgumentError(cert.what, cert.value, '--etcd-keyfile is missing: a client certificate needs its key');
  if (key !== undefined && cert === undefined) throw new InvalidArgumentError(key.what, key.value, '--etcd-certfile is missing: a client key needs its certificate');
  // TLS files with only http:// endpoints would silently talk plain text: refuse instead.
  const first = ca ?? cert;
  if (first !== undefined && !endpoints.some((e) => e.startsWith('https:'))) {
    throw new InvalidArgumentError(first.what, first.value, 'TLS files are set but every etcd endpoint is http://; use https:// endpoints');
  }
  return { etcdCaFile: ca?.value, etcdCertFile: cert?.value, etcdKeyFile: key?.value };
}

function etcdAuth(v: FlagValues): Pick<EtcdFlags, 'etcdUsername' | 'etcdPassword'> {
  const user = v.lookup('etcd-username');
  const password = v.lookup('etcd-password');
  const username = user === undefined ? undefined : nonEmpty(user.values[user.values.length - 1]!, user.what);
  // The password is never echoed in an error.
  if (password !== undefined && username === undefined) throw new InvalidArgumentError(password.what, '<hidden>', '--etcd-username is missing');
  if (username !== undefined && password === undefined) throw new InvalidArgumentError(user!.what, username, '--etcd-password is missing');
  return { etcdUsername: username, etcdPassword: password?.values[password.values.length - 1] };
}

function etcdPrefix(value: string, what: string): string {
  if (!value.startsWith('/')) throw new InvalidArgumentError(what, value, 'must start with "/"');
  // flannel joins "<prefix>/config" as given, so "/a/" would mean other keys than "/a": no trailing "/".
  if (value.length > 1 && value.endsWith('/')) throw new InvalidArgumentError(what, value, 'must not end with "/" (keys are <prefix>/config and <prefix>/subnets/...)');
  if (value === '/' || /\s/.test(value)) throw new InvalidArgumentError(what, value, 'must be a key path such as /coreos.com/network, without whitespace');
  return value;
}
