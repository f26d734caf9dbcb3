# libspill - one non-recursive GNU make file; everything it builds lands in build/.
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
CC      ?= cc
CXX     ?= c++
CFLAGS  ?= -O2 -g
VERSION := 0.1.0

SPILL_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -fPIC -fvisibility=hidden \
	-DSPILL_VERSION='"$(VERSION)"'
B = build

SHIM_SRC  := $(wildcard shim/*.c)
SHIM_OBJ  := $(SHIM_SRC:shim/%.c=$(B)/obj/%.o)
# Unit tests link the core without interpose.o, so Check's own mallocs go to glibc.
# SAN=address,undefined (or thread) builds a separate sanitized copy in build/san-<name>/.
comma := ,
SAN ?=
ifeq ($(SAN),)
TB        := $(B)
SAN_FLAGS :=
else
TB        := $(B)/san-$(subst $(comma),-,$(SAN))
SAN_FLAGS := -fsanitize=$(SAN) -fno-omit-frame-pointer
endif
CORE_OBJ  := $(filter-out $(TB)/tobj/interpose.o,$(SHIM_SRC:shim/%.c=$(TB)/tobj/%.o))

UNIT_SRC  := $(wildcard tests/unit/check_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(TB)/tests/unit/%)
INTEG_BIN := $(patsubst tests/integration/%.c,$(B)/tests/integration/%,$(wildcard tests/integration/*.c)) \
             $(patsubst tests/integration/%.cpp,$(B)/tests/integration/%,$(wildcard tests/integration/*.cpp))
PROG_BIN  := $(patsubst programs/%.c,$(B)/programs/%,$(wildcard programs/*.c))
BENCH_BIN := $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/*.c))
HELPER_LIBS = -lpthread -lm

CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)
FFI_CFLAGS   := $(shell pkg-config --cflags libffi 2>/dev/null)
FFI_LIBS     := $(shell pkg-config --libs libffi 2>/dev/null || echo -lffi)

all: $(B)/libspill.so $(B)/spill $(B)/libspill/spillmon

$(B)/obj/%.o: shim/%.c shim/*.h
	@mkdir -p $(@D)
	$(CC) $(SPILL_CFLAGS) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(B)/libspill.so: $(SHIM_OBJ) shim/exports.map
	$(CC) -shared $(CFLAGS) $(LDFLAGS) -Wl,--version-script=shim/exports.map -Wl,-z,now \
		-o $@ $(SHIM_OBJ) -ldl -lpthread

# spill top, spill --trace and spill plot run this helper; the wrapper looks for it in
# LIBDIR/libspill/, as installed, and in the build tree.
TOOL_SRC := $(wildcard tools/*.c)
$(B)/libspill/spillmon: $(TOOL_SRC) tools/*.h shim/pub.h
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(TOOL_SRC) -lm

# The wrapper found in the build tree points at the build tree's library.
$(B)/spill: scripts/spill
	@mkdir -p $(@D)
	sed -e 's|@LIBDIR@|$(abspath $(B))|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@
	chmod 0755 $@

$(TB)/tobj/%.o: shim/%.c shim/*.h
	@mkdir -p $(@D)
	$(CC) $(SPILL_CFLAGS) -DSPILL_UNIT_TEST $(CFLAGS) $(SAN_FLAGS) -c $< -o $@

# the tests' shared headers (and check_model.c's model.c): a change to one rebuilds its users
TEST_HDRS := $(wildcard tests/unit/*.h tests/integration/*.h shim/*.h)

$(TB)/tests/unit/%: tests/unit/%.c $(CORE_OBJ) $(TEST_HDRS) tests/integration/model.c
	@mkdir -p $(@D)
	$(CC) $(SPILL_CFLAGS) $(CFLAGS) $(SAN_FLAGS) $(CHECK_CFLAGS) -Ishim -o $@ $< $(CORE_OBJ) \
		$(CHECK_LIBS) -ldl -lpthread

$(B)/tests/integration/conformance: tests/integration/conformance.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra $(CFLAGS) $(FFI_CFLAGS) -o $@ $< $(FFI_LIBS) -ldl

$(B)/tests/integration/%: tests/integration/%.c $(TEST_HDRS)
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra $(CFLAGS) -o $@ $< $(HELPER_LIBS)

$(B)/tests/integration/%: tests/integration/%.cpp $(TEST_HDRS)
	@mkdir -p $(@D)
	$(CXX) -std=c++17 -Wall -Wextra $(CFLAGS) -o $@ $< $(HELPER_LIBS)

$(B)/programs/%: programs/%.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra $(CFLAGS) -o $@ $< $(HELPER_LIBS)

$(B)/bench/%: bench/%.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra $(CFLAGS) -o $@ $< $(HELPER_LIBS)

unit: $(UNIT_BIN)
	SPILL_TEST_BUILD=$(abspath $(TB)) tests/run.sh unit

programs: $(INTEG_BIN) $(PROG_BIN) $(BENCH_BIN)

# check installs what the tests need first (scripts/deps.sh), then re-reads this file so that
# the pkg-config flags of what it installed are known.
check:
	scripts/deps.sh
	$(MAKE) check-run

check-run: all programs $(UNIT_BIN)
	tests/run.sh all

# check-vm: the tests inside qemu VMs booting Debian's 6.1 kernel (tests/vm/check-vm.sh): cgroup v2,
# whole-machine pressure, five file systems. It skips, and stays green, where no VM can run.
check-vm:
	scripts/deps.sh vm || echo "check-vm: the VM's packages could not be installed (see above)"
	$(MAKE) check-vm-run

check-vm-run: all programs $(UNIT_BIN)
	tests/vm/check-vm.sh; rc=$$?; [ $$rc = 77 ] && rc=0; exit $$rc

# The sanitizer runs rebuild the linked-in core with -fsanitize and run only the unit tests.
check-asan:
	scripts/deps.sh
	$(MAKE) unit SAN=address,undefined
check-tsan:
	scripts/deps.sh
	$(MAKE) unit SAN=thread

# Longer runs than check: the model test for 1.5 million operations, the pickle loop for
# 2000 iterations (tests/soak.sh; SOAK_SEEDS, SOAK_OPS). 13 to 35 minutes here.
soak: all programs
	tests/soak.sh

demo: all $(B)/programs/sensor
	scripts/demo.sh

bench: all $(PROG_BIN) $(BENCH_BIN)
	scripts/bench.sh $(if $(QUICK),--quick)

install: all
	install -D -m 0755 $(B)/libspill.so $(DESTDIR)$(LIBDIR)/libspill.so
	install -D -m 0755 $(B)/libspill/spillmon $(DESTDIR)$(LIBDIR)/libspill/spillmon
	sed -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@VERSION@|$(VERSION)|g' scripts/spill > $(B)/spill.install
	install -D -m 0755 $(B)/spill.install $(DESTDIR)$(BINDIR)/spill
	install -D -m 0644 docs/spill.1 $(DESTDIR)$(MANDIR)/man1/spill.1
	install -D -m 0644 docs/libspill.7 $(DESTDIR)$(MANDIR)/man7/libspill.7

# The package is built from a copy of the tree in build/deb/pkg/, so that its clean and build
# steps leave this build/ alone and dpkg-buildpackage's outputs (written next to the copy)
# stay inside build/; they end up in build/deb/.
DEB_PKG := $(B)/deb/pkg
deb:
	rm -rf $(B)/deb
	mkdir -p $(DEB_PKG)/libspill-$(VERSION)
	tar -cf - --exclude=./build --exclude=./.git . | tar -xf - -C $(DEB_PKG)/libspill-$(VERSION)
	cd $(DEB_PKG)/libspill-$(VERSION) && dpkg-buildpackage -b -us -uc
	find $(DEB_PKG) -maxdepth 1 -type f -exec mv -t $(B)/deb {} +
	rm -rf $(DEB_PKG)

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libspill.so $(DESTDIR)$(BINDIR)/spill \
		$(DESTDIR)$(MANDIR)/man1/spill.1 $(DESTDIR)$(MANDIR)/man7/libspill.7 \
		$(DESTDIR)$(LIBDIR)/libspill/spillmon
	-rmdir $(DESTDIR)$(LIBDIR)/libspill 2>/dev/null

clean:
	rm -rf $(B)

# Objects made on the way to a test are kept: deleting them makes every run relink.
.SECONDARY:

.PHONY: all check check-run check-vm check-vm-run unit programs check-asan check-tsan soak demo bench install deb uninstall clean
