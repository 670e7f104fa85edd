#!/usr/bin/env bats
# -h, the man pages and the completions must agree: same synopsis, same
# options, same commands.
load helpers

COMMON="--dir --help --quiet --verbose"

help_opts() { "$W" "$1" -h | grep -o -- '--[a-z][a-z-]*' | sort -u; }

# Options in the SYNOPSIS of a man page and defined (as .TP tags) in its
# OPTIONS section.
man_opts() {
	awk '/^\.SH /{sec = $2; next} sec == "SYNOPSIS" && !/^\./ {print} sec == "OPTIONS" && tag {print} {tag = /^\.TP/}' \
		"$ROOT/man/walctl-$1.1" |
		sed 's/\\-/-/g' | grep -o -- '--[a-z][a-z-]*' | sort -u
}

man_synopsis() {
	awk '/^\.SH /{on = ($2 == "SYNOPSIS")} on && !/^\./' "$ROOT/man/walctl-$1.1" | sed 's/\\-/-/g' | tr -s ' \n' ' ' |
		sed 's/^ *//; s/ *$//'
}

bash_opts() { sed -n "s/^\t$1) opts=\"\$common \(.*\)\" ;;/\1/p" "$ROOT/completions/walctl.bash" | tr ' ' '\n'; }
zsh_opts() { awk "/^_walctl_$1\\(\\)/{on=1} on && /^}/{on=0} on" "$ROOT/completions/_walctl" | grep -o -- "'--[a-z][a-z-]*" | tr -d "'"; }
fish_opts() { grep "__fish_seen_subcommand_from $1\"" "$ROOT/completions/walctl.fish" | grep -o -- '-l [a-z][a-z-]*' | sed 's/-l /--/'; }

with_common() { { cat; printf '%s\n' $COMMON; } | sort -u; }

@test "for each command, -h, the man page and the three completions list the same options" {
	for c in bench compact consumers dump recover serve ship truncate verify write; do
		want=$(help_opts "$c")
		[ -n "$want" ]
		diff <(echo "$want") <(man_opts "$c" | with_common) || { echo "man page of $c differs from -h"; false; }
		diff <(echo "$want") <(bash_opts "$c" | with_common) || { echo "bash completion of $c differs"; false; }
		diff <(echo "$want") <(zsh_opts "$c" | with_common) || { echo "zsh completion of $c differs"; false; }
		diff <(echo "$want") <(fish_opts "$c" | with_common) || { echo "fish completion of $c differs"; false; }
	done
}

@test "the synopsis of -h is the man page's SYNOPSIS, word for word" {
	for c in bench compact consumers dump recover serve ship truncate verify write; do
		h=$("$W" "$c" -h | awk '/^$/ {exit} {print}' | tr -s ' \n' ' ' | sed 's/^usage: //; s/ *$//')
		m=$(man_synopsis "$c")
		[ "$h" = "$m" ] || { echo "$c:"; echo " -h:  $h"; echo " man: $m"; false; }
	done
}

@test "help fits 80 columns, descriptions aligned; an unknown option is one line and the usual Try" {
	for c in bench compact consumers dump recover serve ship truncate verify write; do
		"$W" "$c" --help > "$T/help"
		awk -v c="$c" 'length($0) > 80 { print c ": " length($0) ": " $0; bad = 1 } END { exit bad }' "$T/help"
		# every description starts at column 30, common options too
		awk '/^Options:/ {on = 1; next} on && /^  -/ && match(substr($0, 3), /  +[^ ]/) {
			if (2 + RSTART + RLENGTH - 1 != 30) { print "misaligned: " $0; bad = 1 } }
			END { exit bad }' "$T/help"
		run --separate-stderr "$W" "$c" --no-such-option
		[ "$status" -eq 16 ]
		[ "${#stderr_lines[@]}" -eq 2 ]
		[ "${stderr_lines[0]}" = "walctl $c: unrecognized option '--no-such-option'" ]
		[ "${stderr_lines[1]}" = "Try 'walctl help $c' for more information." ]
	done
	run --separate-stderr "$W" dump --from
	[ "$status" -eq 16 ]
	[ "${stderr_lines[0]}" = "walctl dump: option '--from' needs a value" ]
	run --separate-stderr "$W" --no-such-option
	[ "$status" -eq 16 ]
	[ "${#stderr_lines[@]}" -eq 2 ]
	[ "${stderr_lines[1]}" = "Try 'walctl --help' for more information." ]
}

@test "'walctl help CMD' is 'walctl CMD --help'; help goes to stdout with exit 0" {
	for c in bench compact consumers dump recover serve ship truncate verify write; do
		run "$W" help "$c"
		[ "$status" -eq 0 ]
		[ "$output" = "$("$W" "$c" --help)" ]
	done
	run "$W" help nosuch
	[ "$status" -eq 16 ]
}

@test "every command has a man page and completions; no completion names a command that does not exist" {
	cmds=$("$W" --help | awk '/^Commands:/{on=1; next} on && /^  [a-z]/{print $1} on && /^$/{exit}')
	[ "$(echo "$cmds" | tr '\n' ' ')" = "bench compact consumers dump recover serve ship truncate verify write " ]
	for c in $cmds; do
		[ -f "$ROOT/man/walctl-$c.1" ]
		grep -q "__fish_seen_subcommand_from $c\"" "$ROOT/completions/walctl.fish"
		grep -q "^_walctl_$c()" "$ROOT/completions/_walctl"
	done
	[ "$(sed -n 's/.*local commands="\(.*\)"/\1/p' "$ROOT/completions/walctl.bash")" = "bench compact consumers dump help recover serve ship truncate verify write" ]
}

@test "--version names the format version, ISA-L, zlib and libcbor" {
	run "$W" --version
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^walctl\ [0-9.]+\ \(on-disk\ format\ 1\;\ ISA-L\ [0-9.]+,\ zlib\ [0-9.]+,\ libcbor\ [0-9.]+\)$ ]]
	[[ "$output" == *"ISA-L $(pkg-config --modversion libisal)"* ]]
}

@test "man pages are lint-clean (groff -man -ww -z)" {
	for f in "$ROOT"/man/*.1 "$ROOT"/man/*.5; do
		out=$(groff -man -ww -z "$f" 2>&1)
		[ -z "$out" ] || { echo "$f: $out"; false; }
	done
}

@test "make install honours PREFIX and DESTDIR" {
	make -s -C "$ROOT" install DESTDIR="$T/inst" PREFIX=/opt/w > /dev/null
	for f in bin/walctl share/man/man1/walctl.1 share/man/man1/walctl-write.1 share/man/man1/walctl-dump.1 \
		share/man/man1/walctl-verify.1 share/man/man1/walctl-truncate.1 share/man/man1/walctl-recover.1 \
		share/man/man1/walctl-compact.1 share/man/man1/walctl-serve.1 share/man/man1/walctl-bench.1 \
		share/man/man5/walctl-format.5 share/bash-completion/completions/walctl \
		share/zsh/site-functions/_walctl share/fish/vendor_completions.d/walctl.fish \
		share/walctl/schemas/walctl-verify.schema.json share/walctl/schemas/walctl-common.schema.json; do
		[ -f "$T/inst/opt/w/$f" ] || { echo "missing $f"; false; }
	done
	"$T/inst/opt/w/bin/walctl" --version
	# with PREFIX=/usr the zsh completion goes where Debian's zsh looks
	make -s -C "$ROOT" install DESTDIR="$T/usr" PREFIX=/usr > /dev/null
	[ -f "$T/usr/usr/share/zsh/vendor-completions/_walctl" ]
	[ ! -e "$T/usr/usr/share/zsh/site-functions" ]
	make -s -C "$ROOT" uninstall DESTDIR="$T/usr" PREFIX=/usr > /dev/null
	[ ! -e "$T/usr/usr/share/zsh/vendor-completions/_walctl" ]
	[ ! -e "$T/usr/usr/share/walctl" ]
}

@test "plain make installs nothing and prints the apt-get line; make deps installs" {
	# A Debian whose packages are all missing, as root: dpkg-query knows
	# none, apt-get records that it was called.
	mkdir -p "$T/bin"
	printf '#!/bin/sh\nexit 1\n' > "$T/bin/dpkg-query"
	printf '#!/bin/sh\necho "$*" >> "%s/apt-calls"\n' "$T" > "$T/bin/apt-get"
	printf '#!/bin/sh\n[ "$1" = -u ] && echo 0 || exec /usr/bin/id "$@"\n' > "$T/bin/id"
	chmod +x "$T/bin/"*
	run env PATH="$T/bin:$PATH" make -C "$ROOT" all
	[ "$status" -ne 0 ]
	[[ "$output" == *"run: apt-get install -y gcc make pkgconf libisal-dev zlib1g-dev libcbor-dev"* ]]
	[ ! -e "$T/apt-calls" ]
	run env PATH="$T/bin:$PATH" make -s -C "$ROOT" deps
	[ "$status" -eq 0 ]
	grep -q '^install -y -qq --no-install-recommends gcc make .*libcmocka-dev bats' "$T/apt-calls"
}
