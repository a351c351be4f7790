#!/usr/bin/env bash
# Builds a stand-in for the Dockerfile's base image, node:20-bookworm-slim, where Docker Hub
# cannot be reached (as on the machines that test the image, test/container/image.test.ts):
# a Debian bookworm root made by debootstrap from Debian's own packages, plus the Node.js that
# runs this script (its binary, npm and corepack under /usr/local, where the official image
# keeps them), a `node` user (uid 1000) and the official image's PATH and CMD. Committed with
# buildah and tagged with every NAME given (default: docker.io/library/node:20-bookworm-slim
# and localhost/node:20-bookworm-slim), so `FROM node:20-bookworm-slim` finds it with
# `buildah build --pull=never`.
#
#   scripts/container-base.sh [NAME]...
#
# Runs as root (debootstrap, buildah mount). Which storage buildah uses is its own business:
# set CONTAINERS_STORAGE_CONF to keep the stand-in out of the machine's image store (the test
# does). DEBIAN_MIRROR overrides http://deb.debian.org/debian; NODE overrides the node binary.
set -euo pipefail

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(docker.io/library/node:20-bookworm-slim localhost/node:20-bookworm-slim)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

[ "$(id -u)" = 0 ] || { echo "container-base.sh: run as root (debootstrap and buildah mount need it)" >&2; exit 1; }
for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || { echo "container-base.sh: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
node=$(realpath "${NODE:-$(command -v node)}")
prefix=$(dirname "$(dirname "$node")")                 # /usr for Debian's and NodeSource's packages
version=$("$node" --version)
case "$version" in v20.*) ;; *) echo "container-base.sh: node:20 wanted, $node is $version" >&2; exit 1 ;; esac
[ -f "$prefix/lib/node_modules/npm/bin/npm-cli.js" ] || { echo "container-base.sh: no npm in $prefix/lib/node_modules" >&2; exit 1; }
# The binary must need nothing the Debian root lacks (the official build links only glibc and libstdc++).
if ldd "$node" | grep -q 'not found\|libnode'; then echo "container-base.sh: $node links libraries the image would lack:" >&2; ldd "$node" >&2; exit 1; fi

ctr=$(buildah from scratch)
cleanup() { buildah umount "$ctr" >/dev/null 2>&1 || true; buildah rm "$ctr" >/dev/null 2>&1 || true; }
trap cleanup EXIT
root=$(buildah mount "$ctr")

echo "container-base.sh: debootstrap bookworm (minbase) from $mirror" >&2
debootstrap --variant=minbase bookworm "$root" "$mirror" >&2

# As Debian's own images: deb822 sources with updates and security, no documentation from later
# installs (dpkg path excludes, as in debian:bookworm-slim), and no package cache left behind.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
find "$root/usr/share/doc" -mindepth 2 -not -name copyright -not -type d -delete 2>/dev/null || true
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log

# Node.js where the official image has it.
install -D -m 0755 "$node" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules"
cp -a "$prefix/lib/node_modules/npm" "$root/usr/local/lib/node_modules/"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
if [ -d "$prefix/lib/node_modules/corepack" ]; then
  cp -a "$prefix/lib/node_modules/corepack" "$root/usr/local/lib/node_modules/"
  ln -s ../lib/node_modules/corepack/dist/corepack.js "$root/usr/local/bin/corepack"
fi
chroot "$root" groupadd --gid 1000 node
chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
chroot "$root" node --version >/dev/null

buildah config \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env NODE_VERSION="${version#v}" \
  --cmd node \
  --label org.opencontainers.image.description="stand-in for node:20-bookworm-slim: debootstrap bookworm + node $version (scripts/container-base.sh)" \
  "$ctr"
buildah umount "$ctr" >/dev/null
buildah commit --quiet --format docker --rm "$ctr" "${names[0]}" >/dev/null
trap - EXIT
for name in "${names[@]:1}"; do buildah tag "${names[0]}" "$name"; done
echo "container-base.sh: ${names[*]} (node $version)" >&2
