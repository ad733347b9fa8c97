#!/usr/bin/env bash
# Debian 12 root file systems for the deploy and packaging tests, built locally with
# mmdebstrap from the apt sources this machine is configured with (no image registry is
# reachable) and cached, so that only the first run pays for them.
#
#   debian-base.sh tarball NAME [PACKAGE...]   build (or reuse) NAME.tar; prints its path
#   debian-base.sh podman-image                 import the minbase tree as a podman image;
#                                               prints the image name (localhost/debian:12)
#   debian-base.sh nspawn-tree DIR [PACKAGE...] unpack a tree that boots systemd into DIR
#   debian-base.sh containers-conf              write a containers.conf podman works with here;
#                                               prints its path (use as CONTAINERS_CONF)
#
# The cache lives in $MAILCONFD_TEST_CACHE (default /var/cache/mailconfd-tests); a tarball is
# rebuilt when its package list or this script changes (the key is in its file name).
set -euo pipefail

cache=${MAILCONFD_TEST_CACHE:-/var/cache/mailconfd-tests}
mkdir -p "$cache"
self_hash=$(sha256sum "$0" | cut -c1-12)

# The apt sources of this machine, as mmdebstrap wants them ("deb URI SUITE COMPONENTS" lines).
sources() {
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    awk '
      /^Types:/ {types=$2} /^URIs:/ {uri=$2} /^Suites:/ {$1=""; suites=$0}
      /^Components:/ {$1=""; comps=$0}
      /^$/ {flush()} END {flush()}
      function flush(  n, s, i) {
        if (types == "deb" && uri != "") {
          n = split(suites, s, " "); for (i = 1; i <= n; i++) print "deb " uri " " s[i] comps
        }
        types = ""; uri = ""; suites = ""; comps = ""
      }' /etc/apt/sources.list.d/debian.sources
  fi
  if [ -f /etc/apt/sources.list ]; then grep -E '^deb ' /etc/apt/sources.list || true; fi
}

tarball() {
  local name=$1
  shift
  local packages
  packages=$(printf '%s\n' "$@" | sort -u | tr '\n' ',' | sed 's/,$//')
  local key
  key=$(printf '%s|%s' "$self_hash" "$packages" | sha256sum | cut -c1-12)
  local out="$cache/$name-$key.tar"
  if [ ! -s "$out" ]; then
    local list
    list=$(mktemp)
    sources >"$list"
    [ -s "$list" ] || { echo "debian-base.sh: no apt sources found" >&2; exit 1; }
    local include=()
    [ -n "$packages" ] && include=(--include="$packages")
    echo "debian-base.sh: building $out (mmdebstrap, a few minutes the first time)" >&2
    mmdebstrap --quiet --variant=minbase "${include[@]}" --format=tar bookworm "$out.tmp" "$list" >&2
    rm -f "$list"
    mv "$out.tmp" "$out"
    # Older builds of the same name are stale.
    find "$cache" -maxdepth 1 -name "$name-*.tar" ! -name "$name-$key.tar" -delete
  fi
  echo "$out"
}

case "${1:-}" in
  tarball)
    shift
    [ $# -ge 1 ] || { echo "usage: $0 tarball NAME [PACKAGE...]" >&2; exit 2; }
    tarball "$@"
    ;;
  podman-image)
    image=localhost/debian:12
    tar=$(tarball minbase)
    id=$(basename "$tar" .tar)
    # The image carries the tarball's key as a label, so a rebuilt tarball is re-imported.
    if [ "$(podman image inspect --format '{{index .Labels "mailconfd.base"}}' "$image" 2>/dev/null)" != "$id" ]; then
      podman import --quiet --change "LABEL mailconfd.base=$id" --change 'CMD ["/bin/bash"]' \
        "$tar" "$image" >&2
    fi
    echo "$image"
    ;;
  nspawn-tree)
    shift
    [ $# -ge 1 ] || { echo "usage: $0 nspawn-tree DIR [PACKAGE...]" >&2; exit 2; }
    dir=$1
    shift
    tar=$(tarball systemd systemd systemd-sysv dbus "$@")
    mkdir -p "$dir"
    tar -C "$dir" -xf "$tar"
    ;;
  containers-conf)
    # On this kind of host crun refuses cgroup v1/v2 hybrid mode, and the container's init may
    # not raise RLIMIT_NOFILE above the caller's hard limit nor set RLIMIT_NPROC near it: runc
    # with limits below the caller's works.
    conf="$cache/containers.conf"
    nofile=$(ulimit -Hn)
    [ "$nofile" = unlimited ] && nofile=65536
    [ "$nofile" -gt 65536 ] && nofile=65536
    cat >"$conf.tmp" <<EOF2
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
[engine]
runtime = "runc"
EOF2
    mv "$conf.tmp" "$conf"
    echo "$conf"
    ;;
  *)
    echo "usage: $0 tarball NAME [PACKAGE...] | podman-image | nspawn-tree DIR [PACKAGE...] | containers-conf" >&2
    exit 2
    ;;
esac
