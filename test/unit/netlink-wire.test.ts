import { describe, expect, it } from 'vitest';
import { errnoName } from '../../src/netlink/errno.js';
import { NetlinkError } from '../../src/netlink/errors.js';
import { AttrWriter, attrStr, attrU16be, attrU32, attrU8, parseAttrs } from '../../src/netlink/wire.js';

describe('netlink attribute encoding', () => {
  it('round-trips scalar, string and nested attributes with 4-byte alignment', () => {
    const header = Buffer.from([1, 2, 3, 4, 5, 6]); // not a multiple of 4: attributes start at 8
    const w = new AttrWriter(header, 8); // small capacity forces the buffer to grow
    w.u32(1, 0xdeadbeef).str(3, 'twill.1').u8(7, 0).u16be(15, 8472).flag(23);
    w.nested(18, (li) => li.str(1, 'vxlan').nested(2, (d) => d.u32(1, 42)));
    const buf = w.finish();
    expect(buf.length % 4).toBe(0);
    expect(buf.subarray(0, 6)).toEqual(header);
    const attrs = parseAttrs(buf, 6);
    expect(attrU32(attrs, 1)).toBe(0xdeadbeef);
    expect(attrStr(attrs, 3)).toBe('twill.1');
    expect(attrU8(attrs, 7)).toBe(0);
    expect(attrU16be(attrs, 15)).toBe(8472);
    expect(attrs.get(23)?.length).toBe(0);
    // The nested flag (0x8000) is masked off when reading the type.
    const info = parseAttrs(attrs.get(18)!);
    expect(attrStr(info, 1)).toBe('vxlan');
    expect(attrU32(parseAttrs(info.get(2)!), 1)).toBe(42);
  });

  it('stops at a truncated or malformed attribute instead of reading past the buffer', () => {
    const buf = new AttrWriter(Buffer.alloc(0)).u32(1, 7).u32(2, 8).finish();
    expect([...parseAttrs(buf.subarray(0, 10)).keys()]).toEqual([1]);
    const bogus = Buffer.from(buf);
    bogus.writeUInt16LE(200, 8); // second attribute claims 200 bytes
    expect([...parseAttrs(bogus).keys()]).toEqual([1]);
    bogus.writeUInt16LE(2, 8); // shorter than its own header
    expect([...parseAttrs(bogus).keys()]).toEqual([1]);
  });
});

describe('netlink errors', () => {
  it('names errno values as Linux prints them', () => {
    expect(errnoName(17)).toBe('EEXIST');
    expect(errnoName(-19)).toBe('ENODEV');
    expect(errnoName(95)).toBe('EOPNOTSUPP');
    expect(errnoName(11)).toBe('EAGAIN');
    expect(errnoName(4000)).toBe('E4000');
  });

  it('carries code, op, target and the kernel message', () => {
    const e = new NetlinkError({ op: 'route.replace', errno: 101, extack: 'Nexthop has invalid gateway', target: '10.244.5.0/24' });
    expect(e).toMatchObject({ name: 'NetlinkError', code: 'ENETUNREACH', errno: 101, op: 'route.replace', target: '10.244.5.0/24' });
    expect(e.message).toBe('route.replace 10.244.5.0/24 failed: ENETUNREACH (kernel: Nexthop has invalid gateway)');
  });
});

describe('Fifo', () => {
  it('keeps order across compaction', async () => {
    const { Fifo } = await import('../../src/netlink/fifo.js');
    const q = new Fifo<number>();
    for (let i = 0; i < 5000; i++) q.push(i);
    const out: number[] = [];
    for (let i = 0; i < 3000; i++) out.push(q.shift()!);
    for (let i = 5000; i < 6000; i++) q.push(i);
    expect(q.length).toBe(3000);
    expect(q.peek()).toBe(3000);
    while (q.length > 0) out.push(q.shift()!);
    expect(out).toEqual(Array.from({ length: 6000 }, (_, i) => i));
    expect(q.shift()).toBeUndefined();
  });
});
