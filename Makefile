# walctl - build, test, install.
#
#   make                      ./walctl and lib libwalctl.a (installs nothing)
#   make deps                 install the Debian packages building and testing need (as root)
#   make test                 every test; ends with prove's summary
#   make DEVELOPER=1          warnings are errors
#   make SANITIZE=address,undefined test
#   make fuzz                 run the libFuzzer targets (FUZZ_TIME seconds each)
#   make drill                500 kill drills, 5,000 power cuts of serve, 1,000 of serve + ship; 200 kills of ship
#   make mutate               break the code on purpose; every test must notice (MUTATE=regex)
#   make bench                benchmarks against a SQLite baseline (not a test)
#   make demo                 the main job end to end
#   make install PREFIX=/usr/local DESTDIR=
#   make lint-man analyze format-check

PREFIX ?= /usr/local
# Debian's zsh looks in vendor-completions for what the system installs,
# in site-functions for what is installed locally
ZSHDIR = $(PREFIX)/share/zsh/$(if $(filter /usr,$(PREFIX)),vendor-completions,site-functions)
DESTDIR ?=
CC ?= cc
OPT ?= -O2 -g
FUZZ_TIME ?= 60

# Warnings live apart from CFLAGS so a user's CFLAGS cannot drop them.
WARNINGS = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
	   -Wvla -Wimplicit-fallthrough -Wpointer-arith -Wcast-qual -Wundef -Wno-format-nonliteral
ifeq ($(DEVELOPER),1)
WARNINGS += -Werror
endif

comma := ,
ifneq ($(SANITIZE),)
BUILD := build/san-$(subst $(comma),-,$(SANITIZE))
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD := build/default
SANFLAGS :=
endif

PKGS = libisal zlib libcbor
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lisal -lz -lcbor)
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(OPT) $(WARNINGS) $(SANFLAGS) $(PKG_CFLAGS) -include lib/banned.h $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)
LIBS = $(PKG_LIBS) -lpthread -lm

LIB_SRC = lib/error.c lib/format.c lib/logfmt.c lib/fsutil.c lib/lp.c lib/points.c lib/scan.c lib/wal.c lib/gen.c lib/sha256.c lib/storage.c lib/view.c lib/quarantine.c lib/repair.c lib/apply.c lib/undo.c lib/engine.c lib/consumers.c lib/hwm.c
CMD_SRC = cmd/walctl.c cmd/common.c cmd/lpout.c cmd/bench.c cmd/compact.c cmd/consumers.c cmd/dump.c cmd/recover.c cmd/serve.c cmd/ship.c cmd/truncate.c cmd/verify.c cmd/write.c
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/%.o)
CMD_OBJ = $(CMD_SRC:%.c=$(BUILD)/%.o)
HEADERS = lib/walctl.h lib/internal.h lib/plan.h lib/banned.h cmd/cmd.h

UNIT = frame codec segment lp points scan damage salvage view quarantine engine consumers
UNIT_BIN = $(UNIT:%=$(BUILD)/tests/unit/test_%)
FUZZ = frame points lp
REPLAY_BIN = $(FUZZ:%=$(BUILD)/tests/fuzz/replay_%)
TOOLS = $(BUILD)/tests/tools/walfix $(BUILD)/tests/tools/gen $(BUILD)/tests/tools/advance $(BUILD)/tests/tools/crashsim.so
WALCTL = $(BUILD)/walctl

.PHONY: all check-deps deps test test-programs cli-programs unit cli drill mutate fuzz bench demo install uninstall clean lint-man analyze format-check

# Plain make installs nothing: a missing package stops it with the apt-get
# line to run.  make deps installs what building and testing need (as root).
all: check-deps walctl

check-deps:
	@scripts/deps.sh build

deps:
	@scripts/deps.sh --install test

walctl: $(WALCTL)
	@if [ "$(BUILD)" = build/default ]; then cp $(WALCTL) walctl; fi

$(BUILD)/libwalctl.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

$(WALCTL): $(CMD_OBJ) $(BUILD)/libwalctl.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(CMD_OBJ) $(BUILD)/libwalctl.a $(LIBS)

$(BUILD)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/unit/test_%: tests/unit/test_%.c tests/unit/util.h $(BUILD)/libwalctl.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -o $@ $< $(BUILD)/libwalctl.a $(ALL_LDFLAGS) $(LDWRAP) $(LIBS) -lcmocka

# The points test counts the library's allocations.
$(BUILD)/tests/unit/test_points: LDWRAP = -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc

$(BUILD)/tests/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(BUILD)/libwalctl.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -o $@ tests/fuzz/fuzz_$*.c tests/fuzz/replay.c $(BUILD)/libwalctl.a $(ALL_LDFLAGS) $(LIBS)

# The power-cut simulator is preloaded into walctl: no sanitizer of its own,
# no banned.h (it defines the functions banned.h is about).
$(BUILD)/tests/tools/crashsim.so: tests/tools/crashsim.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -fPIC -shared $(WARNINGS) -o $@ $< -ldl -lpthread

$(BUILD)/tests/tools/%: tests/tools/%.c $(BUILD)/libwalctl.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -o $@ $< $(BUILD)/libwalctl.a $(ALL_LDFLAGS) $(LIBS)

# prove, with skipped tests counted in its summary line (tests/lib).
PROVE = PERL5LIB=$(CURDIR)/tests/lib$${PERL5LIB:+:$$PERL5LIB} prove --formatter TAP::Formatter::Walctl -e tests/tap-run

# Every test, through prove: C unit tests (cmocka, TAP), command-line tests
# (bats), the fuzz corpora replayed, and the line-protocol conformance run.
# TEST_JOBS files at a time (default: one per core); the longest files
# start first, so that none of them is left running alone at the end.
TEST_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# (The conformance run starts a walctl per case: long under the sanitizers.)
SLOW_TESTS = tests/cli/powercut.bats tests/cli/powercut-repairs.bats tests/conformance.sh tests/cli/demo.bats tests/cli/crash.bats \
	tests/cli/serve.bats tests/cli/repair.bats tests/cli/consumers.bats tests/cli/reads.bats
test:
	@scripts/deps.sh --install test
	@$(MAKE) --no-print-directory test-programs
	WALCTL=$(CURDIR)/$(WALCTL) BUILD=$(CURDIR)/$(BUILD) $(PROVE) -j$(TEST_JOBS) $(SLOW_TESTS) \
		$(filter-out $(SLOW_TESTS),$(wildcard tests/cli/*.bats)) $(UNIT_BIN) $(REPLAY_BIN:%=%)

# Everything the tests run; cli-programs: what the command-line tests run.
test-programs: walctl $(UNIT_BIN) $(REPLAY_BIN) $(TOOLS)
cli-programs: walctl $(TOOLS)

# The mutation check: each deliberate breakage in tests/mutations.txt must
# make one of the tests named beside it fail.
mutate:
	@scripts/deps.sh --install test
	scripts/mutate.py $(MUTATE_FLAGS) $(if $(MUTATE),--only '$(MUTATE)')

# The long drills: 500 trials of serve --ack killed after a random ack,
# 5,000 power-cut states of serve and 1,000 of serve + ship + sink
# (tests/cli/powercut.bats).
drill: walctl $(TOOLS)
	@scripts/deps.sh --install test
	DRILL_TRIALS=$${DRILL_TRIALS:-500} WALCTL=$(CURDIR)/$(WALCTL) BUILD=$(CURDIR)/$(BUILD) \
		bats --tap --filter 'kill drill' tests/cli/serve.bats
	CRASH_STATES=$${CRASH_STATES:-5000} PIPE_STATES=$${PIPE_STATES:-1000} WALCTL=$(CURDIR)/$(WALCTL) \
		BUILD=$(CURDIR)/$(BUILD) bats --tap tests/cli/powercut.bats tests/cli/powercut-repairs.bats
	SHIP_CYCLES=$${SHIP_CYCLES:-200} WALCTL=$(CURDIR)/$(WALCTL) BUILD=$(CURDIR)/$(BUILD) \
		bats --tap --filter 'ship follows serve|ship into InfluxDB' tests/cli/ship.bats tests/cli/influxdb.bats

unit: $(UNIT_BIN)
	$(PROVE) $(UNIT_BIN)

cli: walctl $(TOOLS)
	WALCTL=$(CURDIR)/$(WALCTL) BUILD=$(CURDIR)/$(BUILD) $(PROVE) tests/cli/*.bats

FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS)
fuzz:
	@scripts/deps.sh --install fuzz
	@mkdir -p build/fuzz
	@for t in $(FUZZ); do \
		clang $(FUZZ_CFLAGS) -o build/fuzz/fuzz_$$t tests/fuzz/fuzz_$$t.c $(LIB_SRC) $(PKG_LIBS) -lpthread -lm || exit 1; \
		mkdir -p build/fuzz/corpus_$$t; \
		echo "fuzz_$$t: $(FUZZ_TIME)s (new inputs in build/fuzz/corpus_$$t; copy the useful ones to tests/fuzz/corpus/$$t)"; \
		build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_TIME) -max_len=65536 build/fuzz/corpus_$$t tests/fuzz/corpus/$$t || exit 1; \
	done

bench: walctl $(BUILD)/tests/tools/gen
	@scripts/deps.sh --install bench
	@$(MAKE) --no-print-directory $(BUILD)/bench/sqlite_baseline
	WALCTL=$(CURDIR)/$(WALCTL) BUILD=$(CURDIR)/$(BUILD) bench/run.sh

$(BUILD)/bench/sqlite_baseline: bench/sqlite_baseline.c $(BUILD)/libwalctl.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -o $@ $< $(BUILD)/libwalctl.a $(ALL_LDFLAGS) $(LIBS) -lsqlite3

demo:
	@scripts/deps.sh --install test
	@$(MAKE) --no-print-directory all $(TOOLS)
	BUILD=$(CURDIR)/$(BUILD) WALCTL=$(CURDIR)/walctl scripts/demo.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(ZSHDIR) \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d $(DESTDIR)$(PREFIX)/share/walctl/schemas
	install -m 755 walctl $(DESTDIR)$(PREFIX)/bin/walctl
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/*.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 644 completions/walctl.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/walctl
	install -m 644 completions/_walctl $(DESTDIR)$(ZSHDIR)/_walctl
	install -m 644 completions/walctl.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/walctl.fish
	install -m 644 schemas/*.schema.json $(DESTDIR)$(PREFIX)/share/walctl/schemas/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/walctl $(DESTDIR)$(PREFIX)/share/man/man1/walctl*.1 \
		$(DESTDIR)$(PREFIX)/share/man/man5/walctl-format.5 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/walctl \
		$(DESTDIR)$(ZSHDIR)/_walctl \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/walctl.fish
	rm -rf $(DESTDIR)$(PREFIX)/share/walctl/schemas
	-rmdir $(DESTDIR)$(PREFIX)/share/walctl 2> /dev/null

lint-man:
	@out=$$(for f in man/*.1 man/*.5; do groff -man -ww -z $$f 2>&1 | sed "s|^|$$f: |"; done); \
	if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; echo "man pages: lint-clean"

analyze:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --std=c11 \
		--suppress=missingIncludeSystem -D__GNUC__ lib cmd

format-check:
	clang-format --dry-run --Werror lib/*.c lib/*.h cmd/*.c cmd/*.h

clean:
	rm -rf build walctl
