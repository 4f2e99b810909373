# srmudp — build, test, install.
#
#   make            libsrmudp-core.so, libsrmudp.so (the preload), srmudp (the CLI)
#   make deps       install Debian packages (idempotent, quiet when present)
#   make test       unit + integration tests; ends with "N passed, N failed"
#   make asan       unit tests under ASan + UBSan
#   make demo       unmodified programs talking through the shim across a NAT lab
#   make bench      benchmarks, writes docs/BENCHMARKS.md
#   make install PREFIX=/usr/local   /   make uninstall
#
# Quiet rules unless V=1.

PREFIX  ?= /usr/local
BUILD   ?= build
CC      ?= gcc
CXX     ?= g++
V       ?= 0
Q       := $(if $(filter 1,$(V)),,@)

PKGS    := libsodium libzstd msgpack libssl libcrypto
DEP_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
DEP_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lsodium -lzstd -lmsgpackc -lssl -lcrypto)

WARN     := -Wall -Wextra -Werror
CFLAGS   ?= -O2 -g
# Hidden by default: only SRM_EXPORT names (the public API) and the hooked
# libc names leave the shared libraries, so no program symbol can capture
# an engine call, or the other way round.
# core/ has three rooms: protocol/ (sans-I/O: bytes and the time in, bytes
# and deadlines out), driver/ (sockets, epoll, the thread, the clock) and
# config/ (configuration, key files, logs: file I/O).  srmudp.h is public.
CORE_INC := -Icore -Icore/protocol -Icore/driver -Icore/config
CFLAGS   += -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN) -MMD -MP $(CORE_INC) $(DEP_CFLAGS)
CXXFLAGS ?= -O1 -g
CXXFLAGS += -std=c++17 -D_GNU_SOURCE $(WARN) -Wno-missing-field-initializers -MMD -MP $(CORE_INC) -Itests/unit $(DEP_CFLAGS)
LDLIBS   := $(DEP_LIBS) -lpthread

CORE_SRC  := $(wildcard core/*/*.c)
SHIM_SRC  := $(wildcard shim/*.c)
TOOL_SRC  := $(wildcard tools/*.c)
UNIT_SRC  := $(wildcard tests/unit/*_test.cc)
UNIT_HELP := $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.cc))
LAB_SRC   := $(wildcard tests/lab/*.c)

CORE_OBJ  := $(CORE_SRC:%.c=$(BUILD)/%.o)
SHIM_OBJ  := $(SHIM_SRC:%.c=$(BUILD)/%.o)
TOOL_OBJ  := $(TOOL_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ  := $(UNIT_SRC:%.cc=$(BUILD)/%.o) $(UNIT_HELP:%.cc=$(BUILD)/%.o)
LAB_BIN   := $(LAB_SRC:tests/lab/%.c=$(BUILD)/lab/%)

CORE_A    := $(BUILD)/libsrmudp-core.a
CORE_SO   := $(BUILD)/libsrmudp-core.so
SHIM_SO   := $(BUILD)/libsrmudp.so
CLI       := $(BUILD)/srmudp
EXAMPLE   := $(BUILD)/srm-echo
UNIT_BIN  := $(BUILD)/unit_tests

all: $(CORE_A) $(CORE_SO) $(SHIM_SO) $(CLI) $(EXAMPLE) $(LAB_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cc
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX     $<")
	$(Q)$(CXX) $(CXXFLAGS) -c $< -o $@

$(CORE_A): $(CORE_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(CORE_SO): $(CORE_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -shared -o $@ $^ $(LDLIBS)

$(SHIM_SO): $(SHIM_OBJ) $(CORE_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-z,nodelete -o $@ $^ $(LDLIBS) -ldl

# hiredis: only the CLI links it (rendezvous --store redis://), never the preload.
$(CLI): LDLIBS += $(shell pkg-config --libs hiredis 2>/dev/null || echo -lhiredis)
$(CLI): $(TOOL_OBJ) $(CORE_A)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(CORE_A) $(LDLIBS)

# The native-API example (docs/API.md), built like a user would.
$(EXAMPLE): tools/example/srm-echo.c $(CORE_A)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(CORE_A) $(LDLIBS)

$(BUILD)/lab/%: tests/lab/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $$(pkg-config --libs libnetfilter_queue 2>/dev/null || echo -lnetfilter_queue) -lpthread

$(UNIT_BIN): $(UNIT_OBJ) $(CORE_A)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(LDFLAGS) -o $@ $(UNIT_OBJ) $(CORE_A) -lgtest -lgtest_main $(LDLIBS)

deps:
	$(Q)tools/install-deps.sh

unit: $(UNIT_BIN)
	$(Q)$(UNIT_BIN) --gtest_brief=1

# make test: dependencies, build, unit tests, integration tests, one summary line.
test: deps
	$(Q)$(MAKE) --no-print-directory -j2 all $(UNIT_BIN)
	$(Q)tests/run-all.sh $(BUILD)

# Sanitizer flags go through the environment, so the Makefile's own
# flags (include paths, warnings) still apply on top of them.
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
asan:
	$(Q)CFLAGS="-O1 -g $(SAN)" CXXFLAGS="-O1 -g $(SAN)" LDFLAGS="$(SAN)" \
	    $(MAKE) --no-print-directory -j2 BUILD=build-asan build-asan/unit_tests
	$(Q)ASAN_OPTIONS=detect_leaks=1 build-asan/unit_tests --gtest_brief=1

demo: deps all
	$(Q)tests/demo.sh $(BUILD)

bench: deps all
	$(Q)tests/bench/run.sh $(BUILD)

# libFuzzer targets (clang), 30 s each; CI runs them 60 s each (test_fuzz.sh).
fuzz:
	$(Q)tests/fuzz/run.sh 30

# The JavaScript package's WebAssembly core (bindings/js/README.md).
js:
	$(Q)bindings/js/build.sh
.PHONY: js

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(SHIM_SO) $(CORE_SO) $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 $(CORE_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 core/srmudp.h $(DESTDIR)$(PREFIX)/include/
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man7 $(DESTDIR)$(PREFIX)/share/srmudp
	install -m 0644 docs/srmudp.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 0644 docs/srmudp.7 $(DESTDIR)$(PREFIX)/share/man/man7/
	install -m 0644 tools/srmudp.lua $(DESTDIR)$(PREFIX)/share/srmudp/
	sed -e 's|@PREFIX@|$(PREFIX)|g' tools/srmudp.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/srmudp.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libsrmudp.so $(DESTDIR)$(PREFIX)/lib/libsrmudp-core.so \
	      $(DESTDIR)$(PREFIX)/lib/libsrmudp-core.a $(DESTDIR)$(PREFIX)/bin/srmudp \
	      $(DESTDIR)$(PREFIX)/include/srmudp.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/srmudp.pc \
	      $(DESTDIR)$(PREFIX)/share/man/man1/srmudp.1 $(DESTDIR)$(PREFIX)/share/man/man7/srmudp.7 \
	      $(DESTDIR)$(PREFIX)/share/srmudp/srmudp.lua
	-rmdir $(DESTDIR)$(PREFIX)/share/srmudp 2>/dev/null

clean:
	rm -rf build build-asan build-fuzz build-san-asan build-san-tsan

.PHONY: all deps unit test asan demo bench fuzz install uninstall clean

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
