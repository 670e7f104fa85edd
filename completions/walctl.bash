# bash completion for walctl                                 -*- shell-script -*-
# The option lists match 'walctl COMMAND --help' (tests/cli/options.bats).

_walctl()
{
	local cur prev words cword
	_init_completion || return

	local commands="dump help verify write"
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
	--type) COMPREPLY=($(compgen -W "points raw checkpoint seal close loss" -- "$cur")); return ;;
	--format)
		case "$cmd" in
		dump) COMPREPLY=($(compgen -W "text json jsonl lp raw" -- "$cur")) ;;
		verify) COMPREPLY=($(compgen -W "text json" -- "$cur")) ;;
		write) COMPREPLY=($(compgen -W "jsonl" -- "$cur")) ;;
		esac
		return ;;
	--db | --batch | --max-segment-size | --max-segment-age | --default-time | --from | --to | --limit) return ;;
	esac

	local opts
	case "$cmd" in
	"") opts="$common --version"
	    [[ $cur != -* ]] && { COMPREPLY=($(compgen -W "$commands" -- "$cur")); return; } ;;
	help) COMPREPLY=($(compgen -W "dump verify write" -- "$cur")); return ;;
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
