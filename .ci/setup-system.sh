#!/usr/bin/env bash
# Installs the Debian 12 packages Twill's tests use. Run as root on a fresh machine; the first of
# the README's set-up commands. Starts no service: tests start etcd, gobgpd, bird and bgpd
# themselves, inside namespaces of their own.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "setup-system: run as root (apt-get, and the tests need CAP_NET_ADMIN)" >&2
  exit 1
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if (( node_major < 20 )); then
  echo "setup-system: Node.js >= 20 is required (found: $(node --version 2>/dev/null || echo none));" \
    "Debian 12's own nodejs is 18, so install Node 20 first (e.g. from NodeSource)" >&2
  exit 1
fi

packages=(
  # kernel plumbing and inspection
  iproute2 nftables iptables conntrack ethtool procps
  # traffic and capture
  iputils-ping iperf3 tcpdump
  # the store
  etcd-server etcd-client
  # reference CNI plugins (/usr/lib/cni)
  containernetworking-plugins
  # BGP peers for interop tests
  gobgpd bird2 frr
  # certificates for etcd TLS tests
  openssl ca-certificates
  # C compiler and headers: `npm run build` compiles the CNI shim (scripts/build-shim.mjs)
  gcc libc6-dev
  # npm run test:kernel (test/vm): qemu boots Debian's 6.1 kernel (fetched by the runner with
  # apt-get download); busybox and cpio make its initramfs; kmod's depmod indexes its modules
  qemu-system-x86 busybox-static cpio kmod
)

# Package scripts must not start daemons (bird, zebra) in the root network namespace: deny
# service starts for the duration of the install, unless a policy is already in place.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi

apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"
