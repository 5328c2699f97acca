/**
 * The requests FakeNetlink (netlink.ts) answers, named as the real handle labels them
 * ("route.add", "link.set"...), with what each is given: what a test's fault or interception
 * matches on, and what the write log records.
 */
import type { FdbSpec, LinkChanges, LinkRef, NeighbourSpec, NexthopSpec, RouteFilter, RouteSpec } from '../../src/netlink/index.js';
import { describeNexthop } from '../../src/netlink/nexthops.js';

/** Each request the fake answers, by the real handle's operation name, with what it is given. */
export interface FakeOps {
  'link.get': { ref: LinkRef };
  'link.list': Record<string, never>;
  'link.create': { kind: string; name: string };
  'link.set': { ref: LinkRef; changes: LinkChanges };
  'link.delete': { ref: LinkRef };
  'link.watch': Record<string, never>;
  'address.add': { ref: LinkRef; cidr: string };
  'address.replace': { ref: LinkRef; cidr: string };
  'address.delete': { ref: LinkRef; cidr: string };
  'address.list': { ref: LinkRef | undefined };
  'route.add': RouteSpec;
  'route.replace': RouteSpec;
  'route.delete': RouteSpec;
  'route.list': RouteFilter;
  'nexthop.add': NexthopSpec;
  'nexthop.replace': NexthopSpec;
  'nexthop.delete': { id: number };
  'nexthop.list': Record<string, never>;
  'neighbour.replace': NeighbourSpec;
  'neighbour.delete': { index: number; ip: string };
  'neighbour.list': { index: number | undefined };
  'fdb.append': FdbSpec;
  'fdb.replace': FdbSpec;
  'fdb.delete': { index: number; mac: string; dst?: string | undefined };
  'fdb.list': { index: number | undefined };
  'sysctl.read': { key: string };
  'sysctl.write': { key: string; value: string | number };
}
export type FakeOp = keyof FakeOps;

/** The requests that change nothing: they stay out of the write log. */
export const READS: ReadonlySet<FakeOp> = new Set(['link.get', 'link.list', 'link.watch', 'address.list', 'route.list', 'nexthop.list', 'neighbour.list', 'fdb.list', 'sysctl.read']);

export interface WriteRecord {
  readonly op: FakeOp;
  readonly target: string;
  /** The errno name (or error code) when the request failed. */
  readonly failed: string | undefined;
}

/** The request's target as the real handle labels it (channel errors name it the same way). */
export function targetOf(op: FakeOp, arg: unknown): string {
  const a = arg as Record<string, unknown>;
  const text = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');
  switch (op) {
    case 'route.add': case 'route.replace': case 'route.delete': return text(a['dst']);
    case 'nexthop.add': case 'nexthop.replace': return describeNexthop(arg as NexthopSpec);
    case 'nexthop.delete': return `id ${text(a['id'])}`;
    case 'neighbour.replace': case 'neighbour.delete': return text(a['ip']);
    case 'fdb.append': case 'fdb.replace': case 'fdb.delete': return `${text(a['mac'])}${a['dst'] === undefined ? '' : ` dst ${text(a['dst'])}`}`;
    case 'link.create': return `${text(a['kind'])} ${text(a['name'])}`;
    case 'link.set': return `${text(a['ref'])} ${JSON.stringify(a['changes'])}`;
    case 'link.delete': case 'link.get': return text(a['ref']);
    case 'address.add': case 'address.replace': case 'address.delete': return `${text(a['cidr'])} on ${text(a['ref'])}`;
    case 'sysctl.write': return `${text(a['key'])}=${text(a['value'])}`;
    case 'sysctl.read': return text(a['key']);
    default: return '';
  }
}
