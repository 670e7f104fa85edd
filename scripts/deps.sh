#!/bin/sh
# deps.sh - make sure the Debian packages a make target needs are installed.
#
#   scripts/deps.sh [--install] build|test|fuzz|bench|influx|metrics
#
# Without --install (plain `make`) nothing is installed: the exact apt-get
# line is printed and the script fails.  With --install (`make deps`, `make
# test`, `make demo`) and as root, missing packages are installed.
set -eu

install=0
if [ "${1:-}" = --install ]; then
	install=1
	shift
fi

want="gcc make pkgconf libisal-dev zlib1g-dev libcbor-dev"
case "${1:-build}" in
build) ;;
test) want="$want libcmocka-dev bats perl python3 python3-jsonschema groff-base strace jq" ;;
fuzz) want="$want clang libclang-rt-14-dev" ;;
bench) want="$want libsqlite3-dev time python3" ;;
# the real InfluxDB 1.x of tests/cli/influxdb.bats (.ci/run installs it;
# elsewhere those tests skip with a notice)
influx) want="$want influxdb influxdb-client curl" ;;
# promtool and node_exporter of the metrics test in tests/cli/serve.bats
metrics) want="$want prometheus prometheus-node-exporter curl python3" ;;
*) echo "deps.sh: unknown target '$1'" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
	# Not Debian: trust pkg-config and say what is needed.
	for lib in libisal zlib libcbor; do
		pkg-config --exists "$lib" 2>/dev/null || {
			echo "deps.sh: '$lib' not found by pkg-config; install ISA-L (2.30), zlib and libcbor (0.8) development files" >&2
			exit 1
		}
	done
	exit 0
fi

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$install" = 1 ] && [ "$(id -u)" = 0 ]; then
	echo "deps.sh: installing:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >&2
else
	echo "deps.sh: missing Debian packages:$missing" >&2
	if [ "$(id -u)" = 0 ]; then
		echo "deps.sh: run: apt-get install -y$missing   (or: make deps)" >&2
	else
		echo "deps.sh: run: sudo apt-get install -y$missing" >&2
	fi
	exit 1
fi
