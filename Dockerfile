# syntax=docker/dockerfile:1
# Twill's agent image: twilld as the entrypoint, with twillctl and the twill CNI plugin beside it.
#   docker build -t twill .
# The agent programs the node's network, so it runs as root with CAP_NET_ADMIN in the host's
# network namespace (hostNetwork). For reproducible releases, pin NODE_IMAGE by digest
# (node:20-bookworm-slim@sha256:...), as flannel does for its base image.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS builder
WORKDIR /src
# Dependencies first, so this layer is reused while only the sources change. The native parts
# (koffi, netlink) ship prebuilt binaries for linux-x64/arm64: no compiler is needed.
COPY package.json package-lock.json ./
RUN npm ci
# .dockerignore lets only tsconfig.json, src/ and proto/ through besides the two files above.
COPY . .
RUN mkdir -p proto \
 && npm run build \
 && npm prune --omit=dev

FROM ${NODE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 nftables ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /etc/iproute2/rt_protos.d \
 && echo '84 twill' > /etc/iproute2/rt_protos.d/twill.conf
# `ip route show proto twill` then lists the routes Twill installed (RTPROT_TWILL = 84 in
# src/netlink/constants.ts).
ENV NODE_ENV=production
WORKDIR /opt/twill
COPY --from=builder /src/package.json ./package.json
COPY --from=builder /src/node_modules ./node_modules
COPY --from=builder /src/dist ./dist
COPY --from=builder /src/proto ./proto
RUN ln -s /opt/twill/dist/src/ctl/main.js /usr/local/bin/twillctl \
 && ln -s /opt/twill/dist/src/cni/main.js /usr/local/bin/twill
# The CNI plugin launcher that deploy/kubernetes/twill.yaml installs on each node as
# /opt/cni/bin/twill, with this image's package.json, dist/ and node_modules/ under
# /opt/twill/current on the node. The plugin is a Node program for now, so the node needs
# Node.js >= 20 on the container runtime's PATH (a later release makes it a thin client).
RUN mkdir -p /opt/twill/bin \
 && printf '%s\n' \
    '#!/bin/sh' \
    '# twill CNI plugin launcher: on a node the code is in /opt/twill/current, in the image in /opt/twill.' \
    'dir=/opt/twill/current' \
    '[ -d "$dir/dist" ] || dir=/opt/twill' \
    'command -v node >/dev/null 2>&1 || { echo "twill: the CNI plugin needs Node.js >= 20 (node) on the PATH" >&2; exit 1; }' \
    'exec node "$dir/dist/src/cni/main.js" "$@"' \
    > /opt/twill/bin/twill-cni \
 && chmod 0755 /opt/twill/bin/twill-cni
ENTRYPOINT ["node", "/opt/twill/dist/src/agent/main.js"]
