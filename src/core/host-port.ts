import { isIPv6 } from 'node:net';
import { InvalidArgumentError } from './errors.js';

// "host:port" as flags take it ("[v6]:port" for IPv6), shared by twilld and twillctl.

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parses "127.0.0.1:9101", "localhost:9101" or "[::1]:9101". `what` names the value in the error. */
export function parseHostPort(text: string, what = 'listen address'): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (m === null) throw new InvalidArgumentError(what, text, 'expected host:port, e.g. 127.0.0.1:9101 or [::1]:9101');
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (m[1] !== undefined && !isIPv6(m[1])) throw new InvalidArgumentError(what, text, 'the part in [] is not an IPv6 address');
  if (host === '') throw new InvalidArgumentError(what, text, 'the host is missing (write 0.0.0.0:PORT to listen on every address)');
  if (m[2] !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
    throw new InvalidArgumentError(what, text, 'the host is neither an IP address nor a host name');
  }
  if (port > 65535) throw new InvalidArgumentError(what, text, 'the port must be 0..65535');
  return { host, port };
}

export function formatHostPort({ host, port }: HostPort): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}
