# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# hangtrace build.  `make` builds ./hangtrace, `make test` runs every test,
# `make deps` installs the Debian packages needed to build and test.

OUTPUT ?= .output
CLANG ?= clang
BPFTOOL ?= bpftool
PYTHON ?= /usr/bin/python3
PREFIX ?= /usr/local
# A failed integration test runs once more: a few timing tests can lose to a
# loaded machine (README, Known issues).
# Reruns are listed in the summary (R); RERUNS= turns them off.
RERUNS ?= --reruns 1
DESTDIR ?=
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')

ifeq ($(V),1)
	Q =
	msg =
else
	Q = @
	msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# SAN=1 builds the userspace with AddressSanitizer + UndefinedBehaviorSanitizer.
ifeq ($(SAN),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

WARNINGS := -Wall -Wextra -Werror=undef -Wshadow -Wmissing-prototypes -Wstrict-prototypes
CFLAGS ?= -g -O2
USER_CFLAGS := $(CFLAGS) $(WARNINGS) $(SAN_FLAGS) -std=gnu11 -D_GNU_SOURCE -MMD -MP \
	-Ibpf -Iuser -I$(OUTPUT) $(shell pkg-config --cflags libbpf libelf json-c libmicrohttpd libcurl)
USER_LDFLAGS := $(LDFLAGS) $(SAN_FLAGS)
# libmicrohttpd and libcurl: headers only.  The agent dlopen()s them when it
# starts its metrics endpoint or Pyroscope pusher (user/dynlib.c), so no other
# command maps them and their 30-odd dependencies.  dlopen is in glibc >= 2.34.
USER_LIBS := $(shell pkg-config --libs libbpf libelf json-c) -lz -lpthread

CLANG_BPF_SYS_INCLUDES ?= $(shell $(CLANG) -v -E - </dev/null 2>&1 \
	| sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')
BPF_CFLAGS := -g -O2 -Wall -target bpf -D__TARGET_ARCH_$(ARCH) -Ivmlinux/$(ARCH) -Ibpf \
	$(CLANG_BPF_SYS_INCLUDES) -MMD -MP

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS))
USER_SRCS := $(wildcard user/*.c)
USER_OBJS := $(patsubst user/%.c,$(OUTPUT)/user/%.o,$(USER_SRCS))
LIB_OBJS := $(filter-out $(OUTPUT)/user/main.o,$(USER_OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_TESTS := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(UNIT_SRCS))

.PHONY: all clean test unit-test integration-test san-test install deps bench demo pythons \
	fuzz fuzz-build fuzz-smoke
.DELETE_ON_ERROR:
.SECONDARY:

all: hangtrace

hangtrace: $(USER_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(USER_LDFLAGS) $^ $(USER_LIBS) -o $@

$(OUTPUT) $(OUTPUT)/user $(OUTPUT)/tests:
	$(Q)mkdir -p $@

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -MF $(@:.o=.d) -MT $@ -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp
	$(Q)rm -f $@.tmp

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# Every user object may include a skeleton: build them first.
$(USER_OBJS): | $(SKELS) $(OUTPUT)/syscalls.inc

# Syscall names, from the system's kernel headers.
$(OUTPUT)/syscalls.inc: | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)echo '#include <sys/syscall.h>' | $(CC) -E -dM - \
		| sed -n 's/^#define __NR_\([a-z0-9_]*\) \([0-9][0-9]*\)$$/[\2] = "\1",/p' > $@

# The flame graph's script and style, inside the binary (user/flame.c).
FLAME_ASSETS := user/flame/flame.css user/flame/flame.js
$(OUTPUT)/flame_assets.h: $(FLAME_ASSETS) tools/embed.sh | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)tools/embed.sh $(FLAME_ASSETS) > $@

$(OUTPUT)/user/flame.o: $(OUTPUT)/flame_assets.h

$(OUTPUT)/user/%.o: user/%.c | $(OUTPUT)/user
	$(call msg,CC,$@)
	$(Q)$(CC) $(USER_CFLAGS) -c $< -o $@

$(OUTPUT)/tests/%: tests/unit/%.c $(LIB_OBJS) | $(OUTPUT)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(USER_CFLAGS) -Itests/unit $< $(LIB_OBJS) $(USER_LDFLAGS) $(USER_LIBS) -o $@

unit-test: $(UNIT_TESTS)
	$(Q)set -e; for t in $(UNIT_TESTS); do echo "== $$t"; $$t; done

integration-test: hangtrace
	$(Q)$(PYTHON) -m pytest -q -rsR $(RERUNS) tests/integration

# The userspace again under ASan+UBSan, with the same unit and integration tests;
# LeakSanitizer reports leaks at exit.  conftest.py fails any test whose
# hangtrace wrote a sanitizer report.
san-test:
	$(Q)$(MAKE) --no-print-directory SAN=1 OUTPUT=.output-san HANGTRACE_BIN=hangtrace-san \
		hangtrace-san unit-test
	$(Q)HANGTRACE=$(CURDIR)/hangtrace-san ASAN_OPTIONS=detect_leaks=1 \
		$(PYTHON) -m pytest -q -rsR $(RERUNS) tests/integration -m 'not slow'

hangtrace-san: $(USER_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(USER_LDFLAGS) $^ $(USER_LIBS) -o $@

# libFuzzer targets for every decoder of target-controlled data (docs/hardening.md),
# built with clang, ASan and UBSan over their own copy of the decoders.
FUZZ_OUTPUT ?= .output-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 3
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -g -O1 $(FUZZ_SAN) $(WARNINGS) -std=gnu11 -D_GNU_SOURCE -MMD -MP \
	-Ibpf -Iuser -Itests/fuzz $(shell pkg-config --cflags libelf)
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(addprefix $(FUZZ_OUTPUT)/fuzz_,$(FUZZ_TARGETS))
FUZZ_LIB_OBJS := $(addprefix $(FUZZ_OUTPUT)/user/,procmem.o elfsym.o procmaps.o pyoffsets.o \
	pyoffsets_table.o pystr.o pysym.o linetable.o pywalk_user.o log.o utf8.o)
# Each run's flags: no input may take a second, or a GiB.
FUZZ_RUN_FLAGS := -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=0

$(FUZZ_OUTPUT)/user $(FUZZ_OUTPUT)/artifacts:
	$(Q)mkdir -p $@

$(FUZZ_OUTPUT)/user/%.o: user/%.c | $(FUZZ_OUTPUT)/user
	$(call msg,CC-FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_OUTPUT)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJS) | $(FUZZ_OUTPUT)/user
	$(call msg,FUZZER,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MF $@.d $< $(FUZZ_LIB_OBJS) \
		$(shell pkg-config --libs libelf) -lz -o $@

# tests/fuzz/snapshot: writes seed inputs from live interpreters (tests/fuzz/gen-corpus.sh).
$(FUZZ_OUTPUT)/snapshot: tests/fuzz/snapshot.c $(LIB_OBJS) | $(FUZZ_OUTPUT)/user
	$(call msg,CC,$@)
	$(Q)$(CC) $(USER_CFLAGS) -Itests/fuzz -MF $@.d $< $(LIB_OBJS) $(USER_LDFLAGS) $(USER_LIBS) -o $@

fuzz-build: $(FUZZ_BINS)

# Every regression input once, then each target for FUZZ_SMOKE_SECONDS from its
# committed corpus (new inputs go to a scratch directory, not the corpus).
fuzz-smoke: fuzz-build | $(FUZZ_OUTPUT)/artifacts
	$(Q)set -e; for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $$t: regressions, then $(FUZZ_SMOKE_SECONDS)s"; \
		if ls tests/fuzz/regress/$$t/* >/dev/null 2>&1; then \
			$(FUZZ_OUTPUT)/fuzz_$$t $(FUZZ_RUN_FLAGS) tests/fuzz/regress/$$t/* \
				>$(FUZZ_OUTPUT)/regress-$$t.log 2>&1 \
				|| { tail -n 60 $(FUZZ_OUTPUT)/regress-$$t.log; exit 1; }; \
			echo "   $$(ls tests/fuzz/regress/$$t | wc -l) regression inputs pass"; \
		fi; \
		rm -rf $(FUZZ_OUTPUT)/smoke/$$t; mkdir -p $(FUZZ_OUTPUT)/smoke/$$t; \
		$(FUZZ_OUTPUT)/fuzz_$$t $(FUZZ_RUN_FLAGS) -max_total_time=$(FUZZ_SMOKE_SECONDS) \
			-artifact_prefix=$(FUZZ_OUTPUT)/artifacts/$$t- \
			$(FUZZ_OUTPUT)/smoke/$$t tests/fuzz/corpus/$$t 2>$(FUZZ_OUTPUT)/smoke/$$t.log \
			|| { tail -n 60 $(FUZZ_OUTPUT)/smoke/$$t.log; exit 1; }; \
		grep -E 'cov:' $(FUZZ_OUTPUT)/smoke/$$t.log | tail -n 1 | cut -c1-60; grep -E '^Done' $(FUZZ_OUTPUT)/smoke/$$t.log; \
	done

# Each target for FUZZ_SECONDS; what it learns is kept in $(FUZZ_OUTPUT)/corpus.
fuzz: fuzz-build | $(FUZZ_OUTPUT)/artifacts
	$(Q)set -e; for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $$t: $(FUZZ_SECONDS)s"; \
		mkdir -p $(FUZZ_OUTPUT)/corpus/$$t; \
		$(FUZZ_OUTPUT)/fuzz_$$t $(FUZZ_RUN_FLAGS) -max_total_time=$(FUZZ_SECONDS) \
			-artifact_prefix=$(FUZZ_OUTPUT)/artifacts/$$t- \
			$(FUZZ_OUTPUT)/corpus/$$t tests/fuzz/corpus/$$t 2>$(FUZZ_OUTPUT)/$$t.log \
			|| { tail -n 60 $(FUZZ_OUTPUT)/$$t.log; exit 1; }; \
		grep -E '^Done' $(FUZZ_OUTPUT)/$$t.log | tail -n 1; \
	done

# The README's two commands.  Each installs what it needs first, so both work
# on a fresh Debian machine; the build itself runs in a sub-make, after the
# packages (and their pkg-config files) are there.
test: deps
	$(Q)$(MAKE) --no-print-directory hangtrace unit-test
	$(Q)$(MAKE) --no-print-directory pythons
	$(Q)$(MAKE) --no-print-directory integration-test
	$(Q)$(MAKE) --no-print-directory fuzz-smoke
	$(Q)$(MAKE) --no-print-directory san-test

demo: deps
	$(Q)$(MAKE) --no-print-directory hangtrace
	$(Q)tests/demo/run.sh

deps:
	$(Q)tools/install-deps.sh

# Overhead against the untraced run and peers (docs/performance.md); not a test.
bench: hangtrace
	$(Q)$(MAKE) --no-print-directory -C bench run

# Debian unstable's CPython 3.13/3.14/3.15, run through their own loader (cached).
pythons:
	$(Q)tests/fetch-pythons.sh || echo "warning: could not fetch Debian unstable's Pythons; their tests will be skipped" >&2

install: hangtrace
	install -D -m 0755 hangtrace $(DESTDIR)$(PREFIX)/sbin/hangtrace

clean:
	$(call msg,CLEAN)
	$(Q)rm -rf .output .output-san hangtrace hangtrace-san

-include $(wildcard $(OUTPUT)/*.d $(OUTPUT)/user/*.d $(OUTPUT)/tests/*.d)
-include $(wildcard $(FUZZ_OUTPUT)/*.d $(FUZZ_OUTPUT)/user/*.d)
