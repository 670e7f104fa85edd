# bash completion for walctl                                 -*- shell-script -*-
# The option lists match 'walctl COMMAND --help' (tests/cli/options.bats).

_walctl()
{
	local cur prev words cword
	_init_completion || return

	local commands="compact dump help recover truncate verify write"
	local common="-d --dir -q --quiet -v --verbose -h --help"
	local cmd="" i
	for ((i = 1; i < cword; i++)); do
		case "${words[i]}" in
		-d | --dir) ((i++)) ;;
		-*) ;;
		*) cmd=${words[i]}; break ;;
		esac
	done

	case "$prev" in
	-d | --dir) _filedir -d; return ;;
	--input) COMPREPLY=($(compgen -W "lp raw" -- "$cur")); return ;;
	--precision) COMPREPLY=($(compgen -W "ns us ms s" -- "$cur")); return ;;
	--sync) COMPREPLY=($(compgen -W "fsync fdatasync async" -- "$cur")); return ;;
	--mode) COMPREPLY=($(compgen -W "tail salvage" -- "$cur")); return ;;
	--emit) COMPREPLY=($(compgen -W "lp" -- "$cur")); return ;;
	--undo) COMPREPLY=($(compgen -W "$(ls "${WALCTL_DIR:-./walctl-data}/quarantine" 2>/dev/null)" -- "$cur")); return ;;
	--type) COMPREPLY=($(compgen -W "points raw checkpoint seal close loss" -- "$cur")); return ;;
	--format)
		case "$cmd" in
		dump) COMPREPLY=($(compgen -W "text json jsonl lp raw" -- "$cur")) ;;
		verify | truncate | recover | compact) COMPREPLY=($(compgen -W "text json" -- "$cur")) ;;
		write) COMPREPLY=($(compgen -W "jsonl" -- "$cur")) ;;
		esac
		return ;;
	--db | --batch | --max-segment-size | --max-segment-age | --default-time | --from | --to | --limit | --after | \
		--keep | --purge-quarantine | --compression-level) return ;;
	esac

	local opts
	case "$cmd" in
	"") opts="$common --version"
	    [[ $cur != -* ]] && { COMPREPLY=($(compgen -W "$commands" -- "$cur")); return; } ;;
	help) COMPREPLY=($(compgen -W "compact dump recover truncate verify write" -- "$cur")); return ;;
	truncate) opts="$common --after --torn-tail --apply --format" ;;
	recover) opts="$common --mode --apply --emit --undo --compression-level --format" ;;
	compact) opts="$common --keep --merge --max-segment-size --purge-quarantine --apply --format" ;;
	write) opts="$common --input --db --precision --sync --batch --max-segment-size --max-segment-age --strict --parse-only --format --default-time" ;;
	dump) opts="$common --from --to --type --limit --format --stats --follow" ;;
	verify) opts="$common --deep --format" ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	else
		_filedir
	fi
} &&
	complete -F _walctl walctl
