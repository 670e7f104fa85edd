# bash completion for walctl                                 -*- shell-script -*-
# The option lists match 'walctl COMMAND --help' (tests/cli/options.bats).

_walctl()
{
	local cur prev words cword
	_init_completion || return

	local commands="bench compact consumers dump help recover serve ship truncate verify write"
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
	--input)
		if [ "$cmd" = bench ]; then _filedir; else COMPREPLY=($(compgen -W "lp raw" -- "$cur")); fi
		return ;;
	--precision) COMPREPLY=($(compgen -W "ns us ms s" -- "$cur")); return ;;
	--sync)
		if [ "$cmd" = bench ]; then COMPREPLY=($(compgen -W "all fsync fdatasync async" -- "$cur"));
		else COMPREPLY=($(compgen -W "fsync fdatasync async" -- "$cur")); fi
		return ;;
	--metrics-file) _filedir; return ;;
	--consumer) COMPREPLY=($(compgen -W "$(ls "${WALCTL_DIR:-./walctl-data}/consumers" 2>/dev/null)" -- "$cur")); return ;;
	--exec) COMPREPLY=($(compgen -c -- "$cur")); return ;;
	--mode) COMPREPLY=($(compgen -W "tail salvage" -- "$cur")); return ;;
	--emit) COMPREPLY=($(compgen -W "lp" -- "$cur")); return ;;
	--undo) COMPREPLY=($(compgen -W "$(ls "${WALCTL_DIR:-./walctl-data}/quarantine" 2>/dev/null)" -- "$cur")); return ;;
	--type) COMPREPLY=($(compgen -W "points raw checkpoint seal close loss storage-loss" -- "$cur")); return ;;
	--format)
		case "$cmd" in
		dump) COMPREPLY=($(compgen -W "text json jsonl lp influx-import raw" -- "$cur")) ;;
		verify | truncate | recover | compact | bench | consumers) COMPREPLY=($(compgen -W "text json" -- "$cur")) ;;
		write) COMPREPLY=($(compgen -W "jsonl" -- "$cur")) ;;
		ship) COMPREPLY=($(compgen -W "lp influx-import jsonl" -- "$cur")) ;;
		esac
		return ;;
	--db | --batch | --max-segment-size | --max-segment-age | --default-time | --from | --to | --limit | --after | \
		--keep | --purge-quarantine | --compression-level | --sync-interval | --buffer-points | --flush-interval | \
		--keep-segments | --points | --latency | --emit | --max-consumer-lag | --batch-points | --batch-interval | \
		--metrics-label) return ;;
	esac

	local opts
	case "$cmd" in
	"") opts="$common --version"
	    [[ $cur != -* ]] && { COMPREPLY=($(compgen -W "$commands" -- "$cur")); return; } ;;
	help) COMPREPLY=($(compgen -W "bench compact consumers dump recover serve ship truncate verify write" -- "$cur")); return ;;
	serve) opts="$common --db --precision --sync --sync-interval --buffer-points --flush-interval --max-segment-size --max-segment-age --keep-segments --max-consumer-lag --compression-level --metrics-file --metrics-label --ack --strict" ;;
	bench) opts="$common --sync --points --input --latency --format --emit" ;;
	truncate) opts="$common --after --rewind-consumers --torn-tail --apply --format" ;;
	recover) opts="$common --mode --apply --emit --undo --rewind-consumers --compression-level --format" ;;
	compact) opts="$common --keep --merge --max-segment-size --max-consumer-lag --purge-quarantine --apply --format" ;;
	write) opts="$common --input --db --precision --sync --batch --max-segment-size --max-segment-age --strict --parse-only --format --default-time" ;;
	dump) opts="$common --from --to --type --limit --db --format --stats --follow" ;;
	verify) opts="$common --deep --format" ;;
	consumers) opts="$common --from --from-start --from-end --format" ;;
	ship) opts="$common --consumer --exec --format --batch-points --batch-interval --once --metrics-file --metrics-label" ;;
	esac
	# consumers: the action, then a consumer's name
	if [ "$cmd" = consumers ] && [[ $cur != -* ]]; then
		local n=0
		for ((i = i + 1; i < cword; i++)); do [[ ${words[i]} != -* ]] && n=$((n + 1)); done
		if ((n == 0)); then
			COMPREPLY=($(compgen -W "list add drop" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(ls "${WALCTL_DIR:-./walctl-data}/consumers" 2>/dev/null)" -- "$cur"))
		fi
		return
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	else
		_filedir
	fi
} &&
	complete -F _walctl walctl
