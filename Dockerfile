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
ENTRYPOINT ["node", "/opt/twill/dist/src/agent/main.js"]
