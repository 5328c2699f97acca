#!/bin/sh
# Runs inside the test VM, chrooted into the host's root file system (test/vm/init.sh starts it
# with an empty environment and the vitest arguments): takes on the host run's environment, brings
# loopback up and runs vitest from the checkout. Its exit status is vitest's, which init.sh hands
# out to scripts/test-kernel.mjs.
. /run/twill-vm/env.sh
cd "$(dirname "$0")/../.." || exit 1
ip link set lo up || exit 1
if [ "$1" = --vm-bench ]; then
  # A benchmark instead of tests (scripts/test-kernel.mjs --vm-bench): its figures on stdout.
  shift
  echo "vm: Linux $(uname -r) up after $(cut -d' ' -f1 /proc/uptime) s; bench $*" >&2
  exec node dist/bench/run.js "$@"
fi
echo "vm: Linux $(uname -r) up after $(cut -d' ' -f1 /proc/uptime) s; vitest run $*"

# vitest, not npx vitest: the same binary without npm's start-up, which costs seconds under TCG.
if [ "${TWILL_VM_TTY:-1}" = 1 ]; then
  exec node_modules/.bin/vitest run "$@"
fi
# The host's output is no terminal (a CI log): give vitest none either, so it reports the same way.
status=/run/twill-vm/vitest-status
{ node_modules/.bin/vitest run "$@"; echo $? > "$status"; } 2>&1 | cat
exit "$(cat "$status" 2>/dev/null || echo 1)"
