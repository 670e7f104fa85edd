#!/bin/bash
# fresh-debian.sh - the README's Quick start on a fresh, minimal Debian 12,
# as root: debootstrap --variant=minbase into DIR (once), then in a chroot
# of it the README's lines and nothing else: apt-get install -y make git,
# git clone, make demo, make test.
#
#   scripts/fresh-debian.sh DIR [MIRROR]
#
# Needs root, debootstrap and a Debian mirror (default deb.debian.org);
# takes about as long as make test.  Not part of make test.  The clone is
# of this checkout's HEAD; the line-protocol corpus is not beside it, so
# that step of make test is skipped with its notice, as on a user's machine.
set -euo pipefail
root=$(realpath -m "${1:?usage: fresh-debian.sh DIR [MIRROR]}")
mirror=${2:-http://deb.debian.org/debian}
src=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)

[ "$(id -u)" = 0 ] || { echo "fresh-debian.sh: run as root" >&2; exit 1; }
command -v debootstrap > /dev/null || { echo "fresh-debian.sh: run: apt-get install -y debootstrap" >&2; exit 1; }
[ -x "$root/usr/bin/apt-get" ] || debootstrap --variant=minbase bookworm "$root" "$mirror"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mkdir -p "$root/src"

mounts=()
bind() {
	mount --bind "$1" "$root$2"
	mounts=("$root$2" "${mounts[@]}")
}
cleanup() { for m in "${mounts[@]}"; do umount "$m" || umount -l "$m"; done; }
trap cleanup EXIT
mount -t proc proc "$root/proc"
mounts=("$root/proc")
bind /dev /dev
bind /dev/pts /dev/pts
bind /sys /sys
bind "$src" /src

# What a minimal Debian 12 has first is checked: neither make nor git.
chroot "$root" /bin/bash -c '! command -v make && ! command -v git' > /dev/null ||
	echo "fresh-debian.sh: note: $root is not fresh (make or git is installed)"

chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	TERM=dumb /bin/bash -euc '
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y make git
	rm -rf /root/walctl
	git config --global --add safe.directory /src/.git
	git clone -q /src /root/walctl
	cd /root/walctl
	time make demo
	time make test
'
