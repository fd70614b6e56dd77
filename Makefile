# loghaul - top-level build. `make help` lists the targets.
#
# Layout of the output (BUILD defaults to build/, `make asan` uses build/asan/):
#   $(BUILD)/loghaul-{agent,collector,indexer,queryd}, $(BUILD)/loghaul  binaries
#   $(BUILD)/lib/lib*.a       one static library per source directory
#   $(BUILD)/tests/unit_tests the unit-test runner (every tests/unit/*.c)
# Each daemon directory holds main.c plus its modules; everything but main.c
# goes into that directory's library so the unit tests can link it.

BUILD   ?= build
CC      ?= cc
SAN     ?=
V       ?= 0

PKGS    := libuv libcurl openssl yaml-0.1 jansson libzstd rdkafka libpcre2-8 zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# -Wno-format-truncation: messages are cut to their fixed buffers on purpose.
WARN    := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wmissing-prototypes \
           -Wstrict-prototypes -Wno-missing-field-initializers -Wno-format-truncation
CFLAGS  ?= -O2 -g
ifeq ($(SAN),1)
CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
           -fno-sanitize-recover=undefined
LDSAN   := -fsanitize=address,undefined
endif
# SAN=fuzz: clang, instrumented for libFuzzer (`make fuzz` uses build/fuzz/).
ifeq ($(SAN),fuzz)
CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
           -fno-sanitize-recover=undefined
LDSAN   := -fsanitize=fuzzer,address,undefined
WARN    := $(filter-out -Wno-format-truncation,$(WARN))
endif
ALL_CFLAGS  = -std=c11 -D_GNU_SOURCE -pthread $(WARN) $(CFLAGS) \
              -Icommon/include $(PKG_CFLAGS) -MMD -MP
ALL_LDFLAGS = -pthread $(LDSAN) $(LDFLAGS)
LIBS        = $(PKG_LIBS) -lhttp_parser -ldeflate -lisal -lm

ifeq ($(V),0)
Q := @
endif

DAEMONS := agent collector indexer queryd
BINS    := $(addprefix $(BUILD)/loghaul-,$(DAEMONS)) $(BUILD)/loghaul

common_SRC := $(wildcard common/*.c)
cli_SRC    := $(wildcard common/cli/*.c)
$(foreach d,$(DAEMONS),$(eval $(d)_SRC := $(filter-out $(d)/main.c,$(wildcard $(d)/*.c))))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

# Libraries in link order: daemon code first, the common library last.
DAEMON_LIBS := $(foreach d,$(DAEMONS),$(if $($(d)_SRC),$(BUILD)/lib/lib$(d).a))
COMMON_LIB  := $(BUILD)/lib/libloghaul.a

UNIT_SRC := tests/unit/runner.c $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(BUILD)/tests/unit_tests
ITEST_SRC := $(wildcard tests/integration/*.c)
ITEST_BIN := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(ITEST_SRC))

.PHONY: all deps asan tests test test-long test-unit test-integration run help clean fmt-check \
        bench bench-quick fuzz fuzz-build fuzz-regress fuzz-targets
.DEFAULT_GOAL := all

all: $(BINS)

help:
	@echo "make deps              install the Debian packages (idempotent)"
	@echo "make                   build the four daemons and the CLI into $(BUILD)/"
	@echo "make asan              the same with AddressSanitizer + UBSan into build/asan/"
	@echo "make run               deps + build + run the embedded default in the foreground"
	@echo "make test              deps + unit tests under ASan/UBSan + fuzz targets + integration tests"
	@echo "make test-long         make test plus the long end-to-end and fault variants"
	@echo "make test-unit         unit tests only (ASan/UBSan build), fuzz corpus once"
	@echo "make test-integration  integration tests against real Kafka, OpenSearch, S3"
	@echo "make fuzz              libFuzzer targets (clang) for FUZZ_SECONDS each [60]"
	@echo "make fuzz-regress      each fuzz target once over its checked-in corpus"
	@echo "make bench             deps + every benchmark -> bench/results/latest.{json,md}"
	@echo "make bench-quick       the same, smaller (under 5 minutes)"
	@echo "make clean             remove build/"

deps:
	$(Q)deploy/deps.sh all

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan SAN=1 all tests

tests: $(UNIT_BIN) $(ITEST_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(filter 0,$(V)),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(COMMON_LIB): $(call obj,$(common_SRC))
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

define daemon_rules
$(BUILD)/lib/lib$(1).a: $(call obj,$($(1)_SRC))
	@mkdir -p $$(dir $$@)
	$(Q)rm -f $$@ && ar rcs $$@ $$^

$(BUILD)/loghaul-$(1): $(call obj,$(1)/main.c) $(if $($(1)_SRC),$(BUILD)/lib/lib$(1).a) $(COMMON_LIB)
	@$(if $(filter 0,$(V)),echo "  LD      $$@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $$@ $$^ $(LIBS)
endef
$(foreach d,$(DAEMONS),$(eval $(call daemon_rules,$(d))))

$(BUILD)/loghaul: $(call obj,$(cli_SRC)) $(DAEMON_LIBS) $(COMMON_LIB)
	@$(if $(filter 0,$(V)),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# The runner links every library whole, so tests can reach any module.
$(UNIT_BIN): $(call obj,$(UNIT_SRC)) $(DAEMON_LIBS) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	@$(if $(filter 0,$(V)),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(call obj,$(UNIT_SRC)) \
	    -Wl,--whole-archive $(DAEMON_LIBS) $(COMMON_LIB) -Wl,--no-whole-archive $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/integration/%.o $(DAEMON_LIBS) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	@$(if $(filter 0,$(V)),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# The whole suite, as CI runs it: unit tests under ASan/UBSan, then the
# release build against real Kafka, OpenSearch and S3 (tests/services/).
test: deps
	$(Q)$(MAKE) --no-print-directory asan
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)tests/run

# The same suite with the long variants of the end-to-end and fault tests.
test-long: deps
	$(Q)$(MAKE) --no-print-directory asan
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)LOGHAUL_LONG=1 tests/run

test-unit: asan
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    build/asan/tests/unit_tests
	$(Q)tests/fuzz/run --regress

test-integration: all tests
	$(Q)tests/integration/run

# Fuzzing (tests/fuzz/): every tests/fuzz/fuzz_<name>.c is a libFuzzer target
# build/fuzz/fuzz_<name>, linked with the product libraries built by clang
# with SAN=fuzz into build/fuzz/{obj,lib}. `make fuzz` runs each target for
# FUZZ_SECONDS on a copy of tests/fuzz/corpus/<name>; `make fuzz-regress`
# runs each once over its corpus.
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     := $(patsubst tests/fuzz/%.c,$(BUILD)/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 60

fuzz-build:
	$(Q)$(MAKE) --no-print-directory BUILD=build/fuzz SAN=fuzz CC=clang fuzz-targets

fuzz-targets: $(FUZZ_BIN)
.PRECIOUS: $(BUILD)/obj/tests/fuzz/%.o

$(BUILD)/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(DAEMON_LIBS) $(COMMON_LIB)
	@$(if $(filter 0,$(V)),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< \
	    -Wl,--start-group $(DAEMON_LIBS) $(COMMON_LIB) -Wl,--end-group $(LIBS)

fuzz: fuzz-build
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run

fuzz-regress: fuzz-build
	$(Q)tests/fuzz/run --regress

# Benchmarks: bench/run builds what it needs, starts the services it needs
# and writes bench/results/ and docs/capacity.md.
bench:
	$(Q)deploy/deps.sh all
	$(Q)bench/run

bench-quick:
	$(Q)deploy/deps.sh all
	$(Q)bench/run --quick

run: deps all
	$(Q)deploy/local/loghaul-local run

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
