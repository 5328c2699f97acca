# syntax=docker/dockerfile:1
# Twill's agent image: twilld as the entrypoint, with twillctl and the twill CNI plugin beside it.
#   docker build -t twill .
# The agent programs the node's network, so it runs as root with CAP_NET_ADMIN in the host's
# network namespace (hostNetwork). For reproducible releases, pin NODE_IMAGE by digest
# (node:20-bookworm-slim@sha256:...), as flannel does for its base image.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS builder
# The native npm parts (koffi, netlink) ship prebuilt binaries for linux-x64/arm64; the C compiler
# is for the CNI shim (src/cni/shim/twill-cni.c), which `npm run build` compiles (postbuild).
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
# The shim has its fallback (bin/node + dist/cni/twill-plugin.cjs) compiled in as absolute paths, so
# the build runs where the code lives at run time: /opt/twill/current, which is the release
# directory on a node (scripts/install-cni.sh) and a symlink to /opt/twill in the image (below).
WORKDIR /opt/twill/current
# Dependencies first, so this layer is reused while only the sources change.
COPY package.json package-lock.json ./
RUN npm ci
# .dockerignore lets only tsconfig.json, src/, scripts/ and proto/ through besides the two files above.
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
COPY --from=builder /opt/twill/current/package.json ./package.json
COPY --from=builder /opt/twill/current/node_modules ./node_modules
COPY --from=builder /opt/twill/current/dist ./dist
COPY --from=builder /opt/twill/current/proto ./proto
# The CNI plugin that deploy/kubernetes/twill.yaml installs on each node as /opt/cni/bin/twill
# (scripts/install-cni.sh, kept here as /opt/twill/bin/install-cni), with this image's
# package.json, dist/, node_modules/ and bin/ (this node binary included) as a release under
# /opt/twill/current on the node. It is the C shim (dist/cni/twill): it hands each call to twilld
# over /run/twill/cni.sock and, when the agent is not reachable, runs
# `/opt/twill/current/bin/node /opt/twill/current/dist/cni/twill-plugin.cjs` (the bundled
# plugin, scripts/bundle-plugin.mjs; koffi, netlink and pino stay in node_modules/), so the node
# needs no Node.js of its own (only a glibc as recent as this image's Debian). The `current`
# symlink makes the same compiled-in paths valid inside this image.
COPY --from=builder /opt/twill/current/scripts/install-cni.sh ./bin/install-cni
RUN ln -s . /opt/twill/current \
 && test -f /opt/twill/current/dist/cni/twill-plugin.cjs \
 && test -f /opt/twill/current/dist/cni/twill-plugin.bundle.cjs \
 && test -f /opt/twill/current/dist/src/core/code-cache-file.cjs \
 && mkdir -p /opt/twill/bin \
 && cp "$(command -v node)" /opt/twill/bin/node \
 && test -x /opt/twill/current/bin/node \
 && cp /opt/twill/dist/cni/twill /opt/twill/bin/twill-cni \
 && chmod 0755 /opt/twill/bin/twill-cni /opt/twill/bin/install-cni \
 && ln -s /opt/twill/dist/src/ctl/main.js /usr/local/bin/twillctl \
 && ln -s /opt/twill/bin/twill-cni /usr/local/bin/twill
ENTRYPOINT ["node", "/opt/twill/dist/src/agent/main.js"]
