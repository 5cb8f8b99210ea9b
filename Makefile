# husk build. `make` builds huskd and husk-shim into $(BUILD); `make check`
# runs the unit and e2e suites; `make asan` runs both under ASan+UBSan;
# `make fuzz` runs the libFuzzer targets (clang) for FUZZ_SECONDS each.
VERSION ?= 0.1.0
BUILD ?= build
PREFIX ?= /usr/local
CC ?= gcc

PKGS := grpc libprotobuf-c yajl libseccomp libcap libcurl libarchive libcrypto libzstd zlib \
	libsystemd
# CFLAGS/LDFLAGS are the user's (optimisation, sanitizers); the flags husk
# needs live in HUSK_* so that `make CFLAGS=...` cannot drop them. CRI has
# fields named `linux`, which GNU C predefines: hence -std=c11 and -Ulinux.
CFLAGS ?= -O2 -g
HUSK_CPPFLAGS := -D_GNU_SOURCE -Ulinux -DHUSK_VERSION=\"$(VERSION)\" -I. -I$(BUILD)/gen
HUSK_BASE_CFLAGS := -std=c11 -Wall -Wextra -Werror -Wno-missing-field-initializers \
	-fno-strict-aliasing -pthread
HUSK_CFLAGS := $(HUSK_BASE_CFLAGS) $(SANITIZE)
HUSK_LDFLAGS := -pthread $(SANITIZE)
ALL_CFLAGS = $(HUSK_CPPFLAGS) $(CPPFLAGS) $(HUSK_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(HUSK_LDFLAGS) $(LDFLAGS)
LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lgrpc -lgpr -lprotobuf-c -lyajl)

ifeq ($(V),1)
Q :=
say := @true
else
Q := @
say := @printf '  %-6s %s\n'
endif

PROTO := api/cri/v1/api.proto
GEN_C := $(BUILD)/gen/api/cri/v1/api.pb-c.c
GEN_H := $(GEN_C:.c=.h)

# Lower layers: one static library, no grpc or protobuf inside.
LIB_SRCS := $(sort $(wildcard common/*.c runtime/*.c runtime/cgroup/*.c runtime/launcher/*.c \
	runtime/state/*.c image/*.c network/*.c))
# Programs with a main of their own live in a directory of their own file name.
SHIM_SRCS := $(sort $(wildcard runtime/shim/*.c))
PAUSE_SRCS := $(sort $(wildcard runtime/pause/*.c))
SERVER_SRCS := $(sort $(filter-out server/main.c,$(wildcard server/*.c)))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
SERVER_OBJS := $(SERVER_SRCS:%.c=$(BUILD)/%.o) $(GEN_C:.c=.o)
SHIM_OBJS := $(SHIM_SRCS:%.c=$(BUILD)/%.o)
PAUSE_OBJS := $(PAUSE_SRCS:%.c=$(BUILD)/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

PROGRAMS := $(BUILD)/huskd $(BUILD)/husk-shim $(BUILD)/husk-pause

# The suites leave the host as they found it: hack/leftovers snapshots what
# they could leave behind (mounts, cgroups, netns, links, iptables rules,
# processes, /tmp and /run files, IPAM leases) and fails listing what is left.
# HUSK_RUN_TAG marks what this run makes (temporary directories, the test
# daemons' pod cgroup parent), so that other runs on the machine are told
# apart; one tag for every step of a `make check`.
ifndef HUSK_RUN_TAG
HUSK_RUN_TAG := $(shell od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
endif
export HUSK_RUN_TAG
LEFTOVERS_SNAP = $(BUILD)/leftovers-$(HUSK_RUN_TAG)-$@.json

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
FUZZ_FLAGS ?= -timeout=10 -rss_limit_mb=2048
FUZZ_BUILD := $(BUILD)-fuzz
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES := $(FUZZ_SRCS:tests/fuzz/%.c=%)
FUZZ_TARGETS ?= $(FUZZ_NAMES)
# The grpc-free server/ code the targets reach (fuzz_stream_session.c
# includes server/stream.c itself, for its static functions).
FUZZ_SERVER_SRCS := server/config.c server/stream_channel.c server/stream_http.c \
	server/stream_session.c server/stream_spdy.c server/stream_token.c server/stream_ws.c
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
# clang counts a variable held only for its cleanup (a lock guard) as unused.
FUZZ_CFLAGS := $(HUSK_CPPFLAGS) $(HUSK_BASE_CFLAGS) -Wno-unused-variable -O1 -g \
	-fno-omit-frame-pointer $(FUZZ_SAN)
FUZZ_LIBS := $(shell pkg-config --libs $(filter-out grpc libprotobuf-c,$(PKGS)) 2>/dev/null)
FUZZ_OBJS := $(FUZZ_SERVER_SRCS:%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_BUILD)/libhusk.a
FUZZ_REGRESS_BINS := $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/%)

.PHONY: all check unit e2e readme-test asan fmt fmt-check proto-check install clean deps fuzz fuzz-regress
all: $(PROGRAMS)

# One rule makes both files (a grouped target): two rules, or one with two
# plain targets, run protoc-c twice under -j, each writing the same files.
$(GEN_C) $(GEN_H) &: $(PROTO)
	@mkdir -p $(BUILD)/gen
	$(say) PROTOC $(PROTO)
	$(Q)protoc-c --c_out=$(BUILD)/gen $(PROTO)

$(BUILD)/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(say) CC $<
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# protoc-c output is not ours to lint: relax the warnings it trips.
$(GEN_C:.c=.o): $(GEN_C)
	$(say) CC $<
	$(Q)$(CC) $(ALL_CFLAGS) -Wno-unused-parameter -c -o $@ $<

$(BUILD)/libhusk.a: $(LIB_OBJS)
	@rm -f $@
	$(say) AR $@
	$(Q)ar rcs $@ $^

$(BUILD)/huskd: $(BUILD)/server/main.o $(SERVER_OBJS) $(BUILD)/libhusk.a
	$(say) LD $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# The shim is one process per container and the pause one per pod: both
# must stay small, so they are linked statically against musl (a static
# glibc alone maps ~1 MiB of RSS), except under the sanitizers, whose
# runtimes need glibc's dynamic link. The library code the shim uses is
# built a second time with musl-gcc into $(MUSL_BUILD); it sees the kernel's
# and yajl's headers through $(MUSL_INC) and no other glibc header.
MUSL_CC ?= musl-gcc
MUSL_BUILD := $(BUILD)/musl
MUSL_INC := $(MUSL_BUILD)/include
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
YAJL_STATIC := $(shell $(CC) -print-file-name=libyajl_s.a)
# husk-shim links runtime/launcher/ and common/, nothing of the manager; of
# the launcher it leaves out the seccomp profile compiler (libseccomp):
# the shim only installs the filter files huskd compiled. It also runs OCI
# runtimes: their command line and the idmapped bind sources it makes for
# them (runtime/oci_cli.c, runtime/oci_userns.c, shared with huskd).
SHIM_LIB_SRCS := $(sort $(filter-out common/service.c,$(wildcard common/*.c)) \
	$(filter-out runtime/launcher/seccomp.c runtime/launcher/seccomp_spec.c, \
	$(wildcard runtime/launcher/*.c)) runtime/oci_cli.c runtime/oci_userns.c)
MUSL_CFLAGS = $(HUSK_CPPFLAGS) -isystem $(MUSL_INC) $(CPPFLAGS) $(HUSK_BASE_CFLAGS) $(CFLAGS) \
	-ffunction-sections -fdata-sections

$(MUSL_INC)/.stamp:
	@mkdir -p $(MUSL_INC)
	$(Q)ln -sfn /usr/include/linux $(MUSL_INC)/linux
	$(Q)ln -sfn /usr/include/$(MULTIARCH)/asm $(MUSL_INC)/asm
	$(Q)ln -sfn /usr/include/asm-generic $(MUSL_INC)/asm-generic
	$(Q)ln -sfn /usr/include/yajl $(MUSL_INC)/yajl
	@touch $@

$(MUSL_BUILD)/%.o: %.c | $(MUSL_INC)/.stamp
	@mkdir -p $(dir $@)
	$(say) MUSLCC $<
	$(Q)$(MUSL_CC) $(MUSL_CFLAGS) -MMD -MP -c -o $@ $<

$(MUSL_BUILD)/libhusk-shim.a: $(SHIM_LIB_SRCS:%.c=$(MUSL_BUILD)/%.o)
	@rm -f $@
	$(say) AR $@
	$(Q)ar rcs $@ $^

ifeq ($(SANITIZE),)
$(BUILD)/husk-shim: $(SHIM_SRCS:%.c=$(MUSL_BUILD)/%.o) $(MUSL_BUILD)/libhusk-shim.a
	$(say) LD $@
	$(Q)$(MUSL_CC) $(LDFLAGS) -static -Wl,--gc-sections -o $@ $^ $(YAJL_STATIC)

$(BUILD)/husk-pause: $(PAUSE_SRCS:%.c=$(MUSL_BUILD)/%.o)
	$(say) LD $@
	$(Q)$(MUSL_CC) $(LDFLAGS) -static -Wl,--gc-sections -o $@ $^
else
$(BUILD)/husk-shim: $(SHIM_OBJS) $(BUILD)/libhusk.a
	$(say) LD $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/husk-pause: $(PAUSE_OBJS)
	$(say) LD $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^
endif

# Each tests/unit/test_NAME.c is a CUnit program over the libraries and the
# grpc-free parts of server/.
$(BUILD)/tests/%: tests/unit/%.c $(SERVER_OBJS) $(BUILD)/libhusk.a
	@mkdir -p $(dir $@)
	$(say) LD $@
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ -lcunit $(LIBS)

unit: $(UNIT_BINS) $(PROGRAMS) $(FUZZ_REGRESS_BINS)
	@hack/leftovers snapshot $(LEFTOVERS_SNAP)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done
	@set -e; for t in $(FUZZ_NAMES); do \
		echo "== $(BUILD)/tests/fuzz/$$t tests/fuzz/corpus/$$t"; \
		$(BUILD)/tests/fuzz/$$t tests/fuzz/corpus/$$t; done
	@hack/leftovers check $(LEFTOVERS_SNAP)

# What is left is listed also when a test failed (and may be why).
e2e: $(PROGRAMS)
	@hack/leftovers snapshot $(LEFTOVERS_SNAP)
	@rc=0; HUSK_BUILD=$(abspath $(BUILD)) /usr/bin/python3 -m pytest -q tests/e2e $(PYTEST_ARGS) \
		|| rc=$$?; hack/leftovers check $(LEFTOVERS_SNAP) || rc=1; exit $$rc

check: deps
	$(MAKE) fmt-check all unit
	$(MAKE) e2e
	$(MAKE) readme-test

# The README's marked usage blocks, run as written against a huskd of their
# own (crictl from PATH or ../shared/tools/cri-tools; skipped, saying so,
# without it).
readme-test: $(PROGRAMS)
	HUSK_BUILD=$(abspath $(BUILD)) hack/readme-test

deps:
	@bash hack/install-deps

asan:
	$(MAKE) check BUILD=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
		SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined"

proto-check:
	../shared/tools/cri-proto-check $(PROTO)

fmt:
	clang-format -i $$(git ls-files '*.c' '*.h')

fmt-check:
	@clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h') && echo "  FMT    ok"

install: all
	install -D -m 0755 $(BUILD)/huskd $(DESTDIR)$(PREFIX)/bin/huskd
	install -D -m 0755 $(BUILD)/husk-shim $(DESTDIR)$(PREFIX)/bin/husk-shim
	install -D -m 0755 $(BUILD)/husk-pause $(DESTDIR)$(PREFIX)/bin/husk-pause

clean:
	rm -rf build build-asan

# ---- fuzzing ----
# tests/fuzz/fuzz_NAME.c are libFuzzer targets over the parsers that read
# untrusted or user-controlled input, with a seed corpus in
# tests/fuzz/corpus/NAME and a dictionary in tests/fuzz/NAME.dict. `make fuzz`
# builds them with clang, libFuzzer, ASan and UBSan into $(FUZZ_BUILD) and
# runs each for FUZZ_SECONDS (FUZZ_TARGETS picks some; -j2 runs two at once);
# what they find goes to $(FUZZ_BUILD)/artifacts, new inputs to
# $(FUZZ_BUILD)/corpus. `make fuzz-regress` runs each once over its seeds.
# The unit tier runs the seeds through gcc builds of the targets
# (tests/fuzz/driver.c is their main), so CI checks them without clang.

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(say) FUZZCC $<
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

.SECONDARY: $(FUZZ_SERVER_SRCS:%.c=$(FUZZ_BUILD)/%.o)

$(FUZZ_BUILD)/libhusk.a: $(LIB_SRCS:%.c=$(FUZZ_BUILD)/%.o)
	@rm -f $@
	$(say) AR $@
	$(Q)ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OBJS)
	$(say) FUZZLD $@
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -MF $@.d -o $@ $< $(FUZZ_OBJS) \
		$(FUZZ_LIBS)

fuzz: $(FUZZ_TARGETS:%=fuzz-run-%)

# Each run's output goes to $(FUZZ_BUILD)/logs/NAME.log; the terminal gets
# its totals, or the end of the log when it found something.
fuzz-run-%: $(FUZZ_BUILD)/%
	@mkdir -p $(FUZZ_BUILD)/corpus/$* $(FUZZ_BUILD)/artifacts $(FUZZ_BUILD)/logs
	@echo "== $* for $(FUZZ_SECONDS)s"
	$(Q)if $< $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_BUILD)/artifacts/$*- \
		$(addprefix -dict=,$(wildcard tests/fuzz/$*.dict)) \
		$(FUZZ_BUILD)/corpus/$* tests/fuzz/corpus/$* >$(FUZZ_BUILD)/logs/$*.log 2>&1; then \
		sed -n 's/^stat::\(number_of_executed_units\|average_exec_per_sec\|peak_rss_mb\): */\1 /p' \
			$(FUZZ_BUILD)/logs/$*.log | tr '\n' ' ' | sed 's/^/   $*: /; s/ *$$/\n/'; \
	else tail -n 40 $(FUZZ_BUILD)/logs/$*.log; echo "== $* FAILED (log: $(FUZZ_BUILD)/logs/$*.log)"; \
		exit 1; fi

fuzz-regress: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)
	@set -e; for t in $(FUZZ_TARGETS); do echo "== $$t"; \
		out=$$($(FUZZ_BUILD)/$$t -runs=0 tests/fuzz/corpus/$$t 2>&1) || \
			{ echo "$$out"; exit 1; }; echo "$$out" | grep '^Done'; done

# The same targets built with $(CC) like the unit tests, main from driver.c.
$(BUILD)/tests/fuzz/%: tests/fuzz/%.c tests/fuzz/driver.c tests/fuzz/fuzz.h \
		$(FUZZ_SERVER_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/libhusk.a
	@mkdir -p $(dir $@)
	$(say) LD $@
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< tests/fuzz/driver.c \
		$(filter %.o %.a,$^) $(LIBS)

# The session target compiles server/stream.c into itself.
$(FUZZ_BUILD)/fuzz_stream_session $(BUILD)/tests/fuzz/fuzz_stream_session: server/stream.c
# The request target compiles server/codec.c and the generated messages in.
$(FUZZ_BUILD)/fuzz_request $(BUILD)/tests/fuzz/fuzz_request: server/codec.c $(GEN_C)
$(FUZZ_BUILD)/fuzz_request: FUZZ_LIBS += $(shell pkg-config --libs libprotobuf-c 2>/dev/null)

-include $(shell find $(BUILD) $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
