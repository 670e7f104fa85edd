# fish completion for walctl.  The option lists match 'walctl COMMAND --help'
# (tests/cli/options.bats).

set -l commands bench compact consumers dump help recover serve ship truncate verify write
complete -c walctl -f
complete -c walctl -n "not __fish_seen_subcommand_from $commands" -a bench -d 'measure the ingest path'
complete -c walctl -n "not __fish_seen_subcommand_from $commands" -a serve -d 'run the ingestion engine'
complete -c walctl -n "not __fish_seen_subcommand_from $commands" -a compact -d 'reclaim checkpointed segments'
complete -c walctl -n "not __fish_seen_subcommand_from $commands" -a recover -d 'repair and replay'
complete -c walctl -n "not __fish_seen_subcommand_from $commands" -a truncate -d 'cut a tail'
complete -c walctl -n "not __fish_seen_subcommand_from $commands" -a ship -d 'hand points onward'
complete -c walctl -n "not __fish_seen_subcommand_from $commands" -a consumers -d 'named consumers and their cursors'
complete -c walctl -n "not __fish_seen_subcommand_from $commands" -a dump -d 'print entries'
complete -c walctl -n "not __fish_seen_subcommand_from $commands" -a help -d 'help on a command'
complete -c walctl -n "not __fish_seen_subcommand_from $commands" -a verify -d 'check a WAL'
complete -c walctl -n "not __fish_seen_subcommand_from $commands" -a write -d 'append points'
complete -c walctl -n "not __fish_seen_subcommand_from $commands" -l version -d 'print versions'
complete -c walctl -n "__fish_seen_subcommand_from help" -a "bench compact consumers dump recover serve ship truncate verify write"

# common options
complete -c walctl -s d -l dir -r -a '(__fish_complete_directories)' -d 'data directory'
complete -c walctl -s q -l quiet -d 'only errors on stderr'
complete -c walctl -s v -l verbose -d 'more detail on stderr'
complete -c walctl -s h -l help -d 'show help'

# write
complete -c walctl -n "__fish_seen_subcommand_from write" -l input -x -a 'lp raw' -d 'what a line is'
complete -c walctl -n "__fish_seen_subcommand_from write" -l db -x -d 'database name'
complete -c walctl -n "__fish_seen_subcommand_from write" -l precision -x -a 'ns us ms s' -d 'timestamp unit'
complete -c walctl -n "__fish_seen_subcommand_from write" -l sync -x -a 'fsync fdatasync async' -d 'durability'
complete -c walctl -n "__fish_seen_subcommand_from write" -l batch -x -d 'points per entry'
complete -c walctl -n "__fish_seen_subcommand_from write" -l max-segment-size -x -d 'rotate at this size'
complete -c walctl -n "__fish_seen_subcommand_from write" -l max-segment-age -x -d 'rotate after this age'
complete -c walctl -n "__fish_seen_subcommand_from write" -l strict -d 'stop at the first bad line'
complete -c walctl -n "__fish_seen_subcommand_from write" -l parse-only -d 'print parsed points, write nothing'
complete -c walctl -n "__fish_seen_subcommand_from write" -l format -x -a 'jsonl' -d 'output of --parse-only'
complete -c walctl -n "__fish_seen_subcommand_from write" -l default-time -x -d 'time of points without one'
complete -c walctl -n "__fish_seen_subcommand_from write" -F

# dump
complete -c walctl -n "__fish_seen_subcommand_from dump" -l from -x -d 'first LSN'
complete -c walctl -n "__fish_seen_subcommand_from dump" -l to -x -d 'last LSN'
complete -c walctl -n "__fish_seen_subcommand_from dump" -l type -x -a 'points raw checkpoint seal close loss storage-loss' -d 'entry type'
complete -c walctl -n "__fish_seen_subcommand_from dump" -l limit -x -d 'at most N entries'
complete -c walctl -n "__fish_seen_subcommand_from dump" -l format -x -a 'text json jsonl lp influx-import raw' -d 'output format'
complete -c walctl -n "__fish_seen_subcommand_from dump" -l db -x -d 'only this database'
complete -c walctl -n "__fish_seen_subcommand_from dump" -l stats -d 'counts instead of entries'
complete -c walctl -n "__fish_seen_subcommand_from dump" -l follow -d 'keep printing new entries'
complete -c walctl -n "__fish_seen_subcommand_from dump" -F

# verify
complete -c walctl -n "__fish_seen_subcommand_from verify" -l deep -d 'decode every point'
complete -c walctl -n "__fish_seen_subcommand_from verify" -l format -x -a 'text json' -d 'report format'
complete -c walctl -n "__fish_seen_subcommand_from verify" -F

# truncate
complete -c walctl -n "__fish_seen_subcommand_from truncate" -l after -x -d 'drop every entry after this LSN'
complete -c walctl -n "__fish_seen_subcommand_from truncate" -l rewind-consumers -d 'rewind the cursors of consumers past the LSN'
complete -c walctl -n "__fish_seen_subcommand_from truncate" -l torn-tail -d 'cut only a torn tail'
complete -c walctl -n "__fish_seen_subcommand_from truncate" -l apply -d 'do it'
complete -c walctl -n "__fish_seen_subcommand_from truncate" -l format -x -a 'text json' -d 'plan format'

# recover
complete -c walctl -n "__fish_seen_subcommand_from recover" -l mode -x -a 'tail salvage' -d 'what to repair'
complete -c walctl -n "__fish_seen_subcommand_from recover" -l apply -d 'do it'
complete -c walctl -n "__fish_seen_subcommand_from recover" -l emit -x -a 'lp' -d 'write points to stdout'
complete -c walctl -n "__fish_seen_subcommand_from recover" -l undo -x -d 'put back a repair'
complete -c walctl -n "__fish_seen_subcommand_from recover" -l rewind-consumers -d 'rewind the cursors of consumers past what it takes out'
complete -c walctl -n "__fish_seen_subcommand_from recover" -l compression-level -x -a '1 2 3 4 5 6 7 8 9' -d 'zlib level'
complete -c walctl -n "__fish_seen_subcommand_from recover" -l format -x -a 'text json' -d 'plan format'

# compact
complete -c walctl -n "__fish_seen_subcommand_from compact" -l keep -x -d 'newest segments kept'
complete -c walctl -n "__fish_seen_subcommand_from compact" -l merge -d 'merge small sealed segments'
complete -c walctl -n "__fish_seen_subcommand_from compact" -l max-consumer-lag -x -d 'WAL after a cursor before the consumer is lost'
complete -c walctl -n "__fish_seen_subcommand_from compact" -l max-segment-size -x -d 'largest merged segment'
complete -c walctl -n "__fish_seen_subcommand_from compact" -l purge-quarantine -x -d 'delete quarantine older than'
complete -c walctl -n "__fish_seen_subcommand_from compact" -l apply -d 'do it'
complete -c walctl -n "__fish_seen_subcommand_from compact" -l format -x -a 'text json' -d 'plan format'

# serve
complete -c walctl -n "__fish_seen_subcommand_from serve" -l db -x -d 'database name'
complete -c walctl -n "__fish_seen_subcommand_from serve" -l precision -x -a 'ns us ms s' -d 'timestamp unit'
complete -c walctl -n "__fish_seen_subcommand_from serve" -l sync -x -a 'fsync fdatasync async' -d 'durability'
complete -c walctl -n "__fish_seen_subcommand_from serve" -l sync-interval -x -d 'sync at most once per'
complete -c walctl -n "__fish_seen_subcommand_from serve" -l buffer-points -x -d 'points buffered before a flush'
complete -c walctl -n "__fish_seen_subcommand_from serve" -l flush-interval -x -d 'flush at least this often'
complete -c walctl -n "__fish_seen_subcommand_from serve" -l max-segment-size -x -d 'rotate at this size'
complete -c walctl -n "__fish_seen_subcommand_from serve" -l max-segment-age -x -d 'rotate after this age'
complete -c walctl -n "__fish_seen_subcommand_from serve" -l keep-segments -x -d 'checkpointed segments kept'
complete -c walctl -n "__fish_seen_subcommand_from serve" -l max-consumer-lag -x -d 'WAL after a cursor before the consumer is lost'
complete -c walctl -n "__fish_seen_subcommand_from serve" -l compression-level -x -a '1 2 3 4 5 6 7 8 9' -d 'zlib level'
complete -c walctl -n "__fish_seen_subcommand_from serve" -l metrics-file -r -d 'Prometheus metrics file'
complete -c walctl -n "__fish_seen_subcommand_from serve" -l metrics-label -x -d 'Label on every metric (NAME=VALUE)'
complete -c walctl -n "__fish_seen_subcommand_from serve" -l ack -d 'print ack LSN POINTS after every sync'
complete -c walctl -n "__fish_seen_subcommand_from serve" -l strict -d 'stop at the first bad line'

# bench
complete -c walctl -n "__fish_seen_subcommand_from bench" -l sync -x -a 'all fsync fdatasync async' -d 'sync modes'
complete -c walctl -n "__fish_seen_subcommand_from bench" -l points -x -d 'generated points'
complete -c walctl -n "__fish_seen_subcommand_from bench" -l input -r -d 'line protocol file'
complete -c walctl -n "__fish_seen_subcommand_from bench" -l latency -x -d 'points sent one at a time'
complete -c walctl -n "__fish_seen_subcommand_from bench" -l format -x -a 'text json' -d 'report format'
complete -c walctl -n "__fish_seen_subcommand_from bench" -l emit -x -d 'print generated points'

# consumers
complete -c walctl -n "__fish_seen_subcommand_from consumers; and not __fish_seen_subcommand_from list add drop" -a "list add drop"
complete -c walctl -n "__fish_seen_subcommand_from consumers" -l from -x -d 'add: deliver from this LSN on'
complete -c walctl -n "__fish_seen_subcommand_from consumers" -l from-start -d 'add: deliver everything, storage too'
complete -c walctl -n "__fish_seen_subcommand_from consumers" -l from-end -d 'add: deliver only what comes next'
complete -c walctl -n "__fish_seen_subcommand_from consumers" -l format -x -a 'text json' -d 'list format'

# ship
complete -c walctl -n "__fish_seen_subcommand_from ship" -l consumer -x -d 'whose cursor says where to start'
complete -c walctl -n "__fish_seen_subcommand_from ship" -l exec -x -a '(__fish_complete_command)' -d 'command run once per batch'
complete -c walctl -n "__fish_seen_subcommand_from ship" -l format -x -a 'lp influx-import jsonl' -d 'format of a batch'
complete -c walctl -n "__fish_seen_subcommand_from ship" -l batch-points -x -d 'points per batch at most'
complete -c walctl -n "__fish_seen_subcommand_from ship" -l batch-interval -x -d 'hand a batch on at most this long after its first point'
complete -c walctl -n "__fish_seen_subcommand_from ship" -l once -d 'deliver what is there, then exit'
complete -c walctl -n "__fish_seen_subcommand_from ship" -l metrics-file -r -F -d 'Prometheus text metrics'
complete -c walctl -n "__fish_seen_subcommand_from ship" -l metrics-label -x -d 'a label on every metric'
