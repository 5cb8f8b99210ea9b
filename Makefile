# husk build. `make` builds huskd and husk-shim into $(BUILD); `make check`
# runs the unit and e2e suites; `make asan` runs both under ASan+UBSan.
VERSION ?= 0.1.0
BUILD ?= build
PREFIX ?= /usr/local
CC ?= gcc

PKGS := grpc libprotobuf-c yajl libseccomp libcap libcurl libarchive libcrypto libzstd zlib
# CFLAGS/LDFLAGS are the user's (optimisation, sanitizers); the flags husk
# needs live in HUSK_* so that `make CFLAGS=...` cannot drop them. CRI has
# fields named `linux`, which GNU C predefines: hence -std=c11 and -Ulinux.
CFLAGS ?= -O2 -g
HUSK_CPPFLAGS := -D_GNU_SOURCE -Ulinux -DHUSK_VERSION=\"$(VERSION)\" -I. -I$(BUILD)/gen
HUSK_CFLAGS := -std=c11 -Wall -Wextra -Werror -Wno-missing-field-initializers \
	-fno-strict-aliasing -pthread $(SANITIZE)
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
LIB_SRCS := $(sort $(wildcard common/*.c runtime/*.c image/*.c network/*.c))
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

.PHONY: all check unit e2e asan fmt fmt-check proto-check install clean deps
all: $(PROGRAMS)

$(GEN_C) $(GEN_H): $(PROTO)
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

# The shim is one process per container and must stay small: linked
# statically (a dynamic glibc alone maps ~1 MiB of RSS here), except under
# the sanitizers, whose runtimes need the dynamic link.
SHIM_LIBS := -static -Wl,--gc-sections -l:libyajl_s.a
$(BUILD)/husk-shim: $(SHIM_OBJS) $(BUILD)/libhusk.a
	$(say) LD $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(if $(SANITIZE),$(LIBS),$(SHIM_LIBS))

# The pod init: libc only, static unless sanitized.
$(BUILD)/husk-pause: $(PAUSE_OBJS)
	$(say) LD $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(if $(SANITIZE),,-static)

# Each tests/unit/test_NAME.c is a CUnit program over the libraries and the
# grpc-free parts of server/.
$(BUILD)/tests/%: tests/unit/%.c $(SERVER_OBJS) $(BUILD)/libhusk.a
	@mkdir -p $(dir $@)
	$(say) LD $@
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ -lcunit $(LIBS)

unit: $(UNIT_BINS) $(PROGRAMS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

e2e: $(PROGRAMS)
	HUSK_BUILD=$(abspath $(BUILD)) /usr/bin/python3 -m pytest -q tests/e2e $(PYTEST_ARGS)

check: deps
	$(MAKE) fmt-check all unit
	$(MAKE) e2e

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

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
