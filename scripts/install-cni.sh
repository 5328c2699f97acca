#!/bin/sh
# Installs the twill CNI plugin on a node; deploy/kubernetes/twill.yaml runs it as the init
# container (the image holds it as /opt/twill/bin/install-cni).
#
# The plugin is the C shim (/opt/cni/bin/twill). It hands each call to twilld and, while twilld is
# down, runs the Node plugin in-process: /opt/twill/current/dist/cni/twill-plugin.cjs (the
# bundled plugin's loader, scripts/bundle-plugin.mjs), run by /opt/twill/current/bin/node, paths
# compiled into the shim (scripts/build-shim.mjs). A node usually has no Node.js of its own, so
# the release carries everything that fallback needs: the node binary, dist/ and the production
# node_modules/ (the bundle leaves koffi, netlink and pino there: native parts, built for the
# image's platform, and a logger loaded only to log). Then ADD and DEL work on a node without
# Node.js while twilld is down. The plugin writes its code cache into the release's dist/cni/.
#
# Atomic for a runtime calling the plugin at any moment: the release goes into a fresh directory
# under /opt/twill/releases and /opt/twill/current is switched to it by renaming a symlink, so a
# call runs the old code or the new, never a mix; the shim and the conflist are replaced by rename
# too. The two most recent releases are kept; older ones are removed.
#
# Environment (the defaults are the init container's):
#   TWILL_SOURCE  the release to install: package.json, dist/, node_modules/, bin/node and
#                 bin/twill-cni (default /opt/twill, the image's own)
#   HOST_ROOT     where the node's root file system is mounted (default /host)
#   CNI_CONF      the network configuration list to install as 10-twill.conflist
#                 (default /etc/twill/cni-conf.json, the ConfigMap's; "" installs none)
set -eu

src=${TWILL_SOURCE:-/opt/twill}
host=${HOST_ROOT:-/host}
conf=${CNI_CONF-/etc/twill/cni-conf.json}
base=$host/opt/twill
cni_bin=$host/opt/cni/bin
cni_conf_dir=$host/etc/cni/net.d

for part in package.json dist/cni/twill-plugin.cjs dist/cni/twill-plugin.bundle.cjs dist/src/core/code-cache-file.cjs node_modules bin/node bin/twill-cni; do
  if [ ! -e "$src/$part" ]; then
    echo "install-cni: $src/$part is missing: $src is not a complete twill release" >&2
    exit 1
  fi
done

id="$(date -u +%Y%m%dT%H%M%SZ)-$$"
mkdir -p "$base/releases" "$cni_bin"
tmp="$base/releases/.tmp-$id"
rm -rf "$tmp"
mkdir "$tmp"
cp -a "$src/package.json" "$src/dist" "$src/node_modules" "$src/bin" "$tmp/"
mv "$tmp" "$base/releases/$id"

previous="$(readlink "$base/current" || true)"
ln -sfn "releases/$id" "$base/.current.tmp"
mv -T "$base/.current.tmp" "$base/current"
for dir in "$base"/releases/* "$base"/releases/.tmp-*; do
  [ -e "$dir" ] || continue
  case "$dir" in "$base/releases/$id" | "$base/$previous") ;; *) rm -rf "$dir" ;; esac
done

cp "$src/bin/twill-cni" "$cni_bin/.twill.tmp"
chmod 0755 "$cni_bin/.twill.tmp"
mv -f "$cni_bin/.twill.tmp" "$cni_bin/twill"

if [ -n "$conf" ]; then
  mkdir -p "$cni_conf_dir"
  cp "$conf" "$cni_conf_dir/.10-twill.conflist.tmp"
  mv -f "$cni_conf_dir/.10-twill.conflist.tmp" "$cni_conf_dir/10-twill.conflist"
fi

# twilld's socket directory: root's alone (src/cni/socket-directory.ts refuses one others may write).
if [ -d "$host/run/twill" ]; then chmod 0700 "$host/run/twill"; fi

echo "install-cni: installed $cni_bin/twill; its in-process fallback runs $base/current (releases/$id) with the node in it"
