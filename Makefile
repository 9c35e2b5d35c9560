# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# hangtrace build.  `make` builds ./hangtrace, `make test` runs every test,
# `make deps` installs the Debian packages needed to build and test.

OUTPUT ?= .output
CLANG ?= clang
BPFTOOL ?= bpftool
PYTHON ?= /usr/bin/python3
PREFIX ?= /usr/local
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
USER_LIBS := $(shell pkg-config --libs libbpf libelf json-c libmicrohttpd libcurl) -lz -lpthread

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

.PHONY: all clean test unit-test integration-test san-test install deps bench demo pythons
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

$(OUTPUT)/user/%.o: user/%.c | $(OUTPUT)/user
	$(call msg,CC,$@)
	$(Q)$(CC) $(USER_CFLAGS) -c $< -o $@

$(OUTPUT)/tests/%: tests/unit/%.c $(LIB_OBJS) | $(OUTPUT)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(USER_CFLAGS) -Itests/unit $< $(LIB_OBJS) $(USER_LDFLAGS) $(USER_LIBS) -o $@

unit-test: $(UNIT_TESTS)
	$(Q)set -e; for t in $(UNIT_TESTS); do echo "== $$t"; $$t; done

integration-test: hangtrace
	$(Q)$(PYTHON) -m pytest -q -rs tests/integration

# The userspace again under ASan+UBSan, with the same unit and integration tests.
san-test:
	$(Q)$(MAKE) --no-print-directory SAN=1 OUTPUT=.output-san HANGTRACE_BIN=hangtrace-san \
		hangtrace-san unit-test
	$(Q)HANGTRACE=$(CURDIR)/hangtrace-san ASAN_OPTIONS=detect_leaks=1 \
		$(PYTHON) -m pytest -q -rs tests/integration -m 'not slow'

hangtrace-san: $(USER_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(USER_LDFLAGS) $^ $(USER_LIBS) -o $@

# The README's two commands.  Each installs what it needs first, so both work
# on a fresh Debian machine; the build itself runs in a sub-make, after the
# packages (and their pkg-config files) are there.
test: deps
	$(Q)$(MAKE) --no-print-directory hangtrace unit-test
	$(Q)$(MAKE) --no-print-directory pythons
	$(Q)$(MAKE) --no-print-directory integration-test

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
