import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets the heap grow past what is live before its next full collection, as a percentage
 * (V8's --heap-growing-percent). V8 picks a factor between 1.1 and 4 from how fast its last
 * collections ran, tuned for browsers and servers that trade memory for throughput. twilld's live
 * heap is small (38 MiB with 10,000 leases and 10,000 learned routes) but a burst (a BGP table, a
 * lease snapshot) makes a lot of short-lived garbage, so the default left the agent anywhere
 * between 150 and 230 MiB of RSS after the same install; at 50 % it stays at about 150 MiB with
 * no measurable cost in install time (docs/benchmarks.md, bgp-backend). V8 reads the flag each
 * time it sets the next limit, so setting it at start works.
 */
export const HEAP_GROWING_PERCENT = 50;

/**
 * One V8 flag twilld sets at start, and the command-line flags with which an operator has chosen
 * otherwise (Node does not accept V8's heap flags in NODE_OPTIONS, only on its command line).
 */
interface HeapFlag {
  readonly flag: string;
  readonly chosenBy: RegExp;
}

export const HEAP_FLAGS: readonly HeapFlag[] = [
  { flag: `--heap-growing-percent=${HEAP_GROWING_PERCENT}`, chosenBy: /^--heap[-_]growing[-_]percent\b/ },
  // V8's memory reducer shrinks the heap once the agent goes quiet after a burst (a start, a lease
  // snapshot), with up to three full collections half a second apart. On twilld's heap the first
  // one does the work (49 -> 24 MiB after a start with 5,000 leases) and the next two free about
  // 1 MiB between them, yet each costs as much marking: 0.3 % of a core over the minute in which
  // they run, three times what the idle agent uses (docs/benchmarks.md, vxlan idle CPU). V8 reads
  // the flag at each of the reducer's decisions.
  { flag: '--memory-reducer-single-gc', chosenBy: /^--(no[-_])?memory[-_]reducer(?:[-_]single[-_]gc)?(?:=|$)/ },
];

/**
 * Sets each of HEAP_FLAGS that the operator did not choose on Node's command line (`node
 * --heap-growing-percent=N twilld ...`); returns the flags it set.
 */
export function tuneHeap(execArgv: readonly string[] = process.execArgv): string[] {
  const set: string[] = [];
  for (const { flag, chosenBy } of HEAP_FLAGS) {
    if (execArgv.some((a) => chosenBy.test(a))) continue;
    setFlagsFromString(flag);
    set.push(flag);
  }
  return set;
}
