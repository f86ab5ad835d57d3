# jenkins-gearman-agent: build, test and demo.
#
#   make              build build/jenkins-gearman-agent and build/jenkins-gearman
#   make deps         install the missing Debian packages (apt-get)
#   make check        deps + build + every unit and integration test
#   make check SANITIZE=1   the same, built with ASan + UBSan
#   make demo         run the whole system on an embedded demo fixture
#                     (DEMO_ARGS=--hold=SECONDS: keep it up after the builds)
#   make install      install the programs, man pages and example configurations
#                     (PREFIX=/usr/local, DESTDIR=)
#   make deb          build/deb/jenkins-gearman-agent_VERSION_ARCH.deb (packaging/)
#   make deb-check    make deb, then lintian and systemd-analyze verify on it

VERSION   := 0.1.0
CC        := gcc
BUILD     := build
PYTHON    := /usr/bin/python3

CPPFLAGS  := -Icommon -Iagent -D_GNU_SOURCE -DJGA_VERSION='"$(VERSION)"'
CFLAGS    := -std=c11 -O2 -g -Wall -Wextra -Werror -pthread
# No libgearman: gwconn and gclient speak the protocol (libgearman-dev stays for bench/).
LDLIBS    := -lcurl -ljansson -linih -lssl -lcrypto -lpthread
ifeq ($(SANITIZE),1)
CFLAGS    += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS   += -fsanitize=address,undefined
endif

# Debian packages the build and the tests need.
DEB_PKGS  := gcc make pkg-config libgearman-dev libcurl4-openssl-dev libinih-dev \
             libmicrohttpd-dev chromium chromium-driver python3-selenium \
             libcmocka-dev libjansson-dev gearman-job-server gearman-tools python3 \
             python3-jenkins python3-pytest python3-prometheus-client libgearman-client-perl libssl-dev stunnel4 openssl \
             python3-cryptography \
             php-cli php-gearman \
             build-essential debhelper dpkg-dev lintian systemd man-db adduser procps
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# make install [DESTDIR=...] [PREFIX=...]: the programs, their manual pages and
# the example configurations, under PREFIX (make deb uses PREFIX=/usr).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/jenkins-gearman-agent
EXAMPLEDIR ?= $(DOCDIR)/examples
INSTALL    ?= install

# make deb: build/deb/jenkins-gearman-agent_$(VERSION)_ARCH.deb (debhelper) and
# the native source package, built from a copy of the tree in build/deb/, with
# packaging/debian as debian/.
DEB_DIR    := $(BUILD)/deb
DEB_SRC    := $(DEB_DIR)/jenkins-gearman-agent-$(VERSION)
DEB_FILE    = $(DEB_DIR)/jenkins-gearman-agent_$(VERSION)_$(shell dpkg-architecture -qDEB_HOST_ARCH).deb
DEB_CHANGES = $(DEB_FILE:.deb=.changes)
DEB_UNITS  := jenkins-gearman-agent jenkins-gearman-agent@ jenkins-gearman-coordinator
# systemd-analyze verifies a template through an instance of it.
DEB_VERIFY := $(patsubst %@,%@node1,$(DEB_UNITS))

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
# One folder per program: the daemon's two roles and their shared plumbing,
# and the client CLI (agent/README draws one build's path through them).
AGENT_SRC  := $(wildcard agent/daemon/*.c agent/node/*.c agent/coordinator/*.c)
AGENT_OBJ  := $(AGENT_SRC:%.c=$(BUILD)/%.o)
CLI_SRC    := $(wildcard agent/cli/*.c)
CLI_OBJ    := $(CLI_SRC:%.c=$(BUILD)/%.o) $(BUILD)/agent/cli/web_page.o
# The status page (jenkins-gearman web), compiled in as web_files[] (web.h).
WEB_FILES  := agent/cli/web/index.html agent/cli/web/app.js agent/cli/web/app.css
# Agent objects without main(), so unit tests can link the agent's logic.
AGENT_LIB_OBJ := $(filter-out $(BUILD)/agent/daemon/main.o,$(AGENT_OBJ))

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# C drivers that integration tests (pytest) run against live services.
IT_SRC     := $(wildcard tests/it/it_*.c)
IT_BIN     := $(IT_SRC:tests/it/%.c=$(BUILD)/tests/%)

BINS := $(BUILD)/jenkins-gearman-agent $(BUILD)/jenkins-gearman

# libFuzzer targets (clang): every parser of hostile input.
FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN    := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_LIBSRC := $(COMMON_SRC) agent/daemon/defaults.c agent/coordinator/projmap.c agent/coordinator/buildref.c agent/node/nodemap.c
FUZZ_SECONDS ?= 600

.PHONY: all deps check unit integration demo clean fuzz fuzz-build valgrind soak
all: $(BINS) $(UNIT_BIN) $(IT_BIN)

# Rebuild everything when the flags change (e.g. SANITIZE=1 after a plain build).
FLAGS_STAMP := $(BUILD)/.flags-$(shell echo '$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS)' | md5sum | cut -c1-8)
$(FLAGS_STAMP):
	@mkdir -p $(BUILD)
	@rm -f $(BUILD)/.flags-*
	@touch $@

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libcommon.a: $(COMMON_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/jenkins-gearman-agent: $(AGENT_OBJ) $(BUILD)/libcommon.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/jenkins-gearman: $(CLI_OBJ) $(BUILD)/libcommon.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lmicrohttpd

$(BUILD)/agent/cli/web_page.c: agent/cli/web/embed.sh $(WEB_FILES)
	@mkdir -p $(dir $@)
	sh agent/cli/web/embed.sh $(WEB_FILES) > $@.tmp && mv $@.tmp $@

$(BUILD)/agent/cli/web_page.o: $(BUILD)/agent/cli/web_page.c $(FLAGS_STAMP)
	$(CC) $(CPPFLAGS) -Iagent/cli $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(AGENT_LIB_OBJ) $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/tests/it_%: $(BUILD)/tests/it/it_%.o $(AGENT_LIB_OBJ) $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps:
	@missing=$$(for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing" $$missing; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# Unit tests need no services; integration tests start their own gearmand and
# Jenkins test server on free loopback ports and stop them by PID.
unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do \
	  echo "== $$t"; $$t || fail=1; \
	done; exit $$fail

integration: $(BINS) $(IT_BIN)
	env -u GEARMAN_SERVERS -u GEARMAN_SERVER JGA_BUILD=$(abspath $(BUILD)) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests

check: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) integration

# 10 agents x 4 executors, 2,000 builds of 0-2 s, faults at random; figures in build/soak.json.
soak: $(BINS)
	env -u GEARMAN_SERVERS -u GEARMAN_SERVER $(PYTHON) tests/soak.py --build $(abspath $(BUILD)) \
	  --agents 10 --executors 4 --builds 2000 --json $(BUILD)/soak.json $(SOAK_ARGS)

# The daemons under valgrind memcheck through real scenarios (plain build).
VALGRIND_TESTS ?= tests/test_node.py tests/test_coordinator.py tests/test_faults.py tests/test_web.py tests/test_status_answer.py \
  tests/test_pipeline.py
valgrind: $(BINS)
	env -u GEARMAN_SERVERS -u GEARMAN_SERVER JGA_BUILD=$(abspath $(BUILD)) JGA_VALGRIND=1 \
	  $(PYTHON) -m pytest -q -p no:cacheprovider $(VALGRIND_TESTS)

demo: deps
	$(MAKE) $(BINS)
	env -u GEARMAN_SERVERS -u GEARMAN_SERVER $(PYTHON) tests/demo.py --build $(abspath $(BUILD)) $(DEMO_ARGS)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIBSRC) $(wildcard common/*.h agent/*/*.h)
	@mkdir -p $(dir $@)
	clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined $(CPPFLAGS) -o $@ $< $(FUZZ_LIBSRC) $(LDLIBS)

fuzz-build: $(FUZZ_BIN)

# Each target runs FUZZ_SECONDS on its corpus in tests/fuzz/corpus/NAME, which
# keeps what it finds (minimised afterwards). A crash stops make.
fuzz: fuzz-build
	@command -v clang >/dev/null || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@for f in $(FUZZ_BIN); do \
	  n=$$(basename $$f); c=tests/fuzz/corpus/$$n; mkdir -p $$c; \
	  echo "== $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	      -artifact_prefix=$(BUILD)/fuzz/$$n- $$c > $(BUILD)/fuzz/$$n.log 2>&1 || \
	      { tail -30 $(BUILD)/fuzz/$$n.log; exit 1; }; \
	  grep -E "^stat::number_of_executed_units|^Done" $(BUILD)/fuzz/$$n.log; \
	  rm -rf $$c.min && mkdir $$c.min && $$f -merge=1 $$c.min $$c >/dev/null 2>&1 && rm -rf $$c && mv $$c.min $$c; \
	done

clean:
	rm -rf $(BUILD)

# make bench: the benchmark table (bench/results.md); see bench/bench.mk.
-include bench/bench.mk

.PHONY: install uninstall deb deb-check
install: $(BINS)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(EXAMPLEDIR)
	$(INSTALL) -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 0644 agent/cli/jenkins-gearman.1 $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 0644 agent/daemon/jenkins-gearman-agent.ini.5 $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 0644 agent/daemon/jenkins-gearman-agent.8 $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 0644 conf/node.ini conf/coordinator.ini $(DESTDIR)$(EXAMPLEDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/jenkins-gearman-agent $(DESTDIR)$(BINDIR)/jenkins-gearman \
	  $(DESTDIR)$(MANDIR)/man1/jenkins-gearman.1 $(DESTDIR)$(MANDIR)/man5/jenkins-gearman-agent.ini.5 \
	  $(DESTDIR)$(MANDIR)/man8/jenkins-gearman-agent.8 \
	  $(DESTDIR)$(EXAMPLEDIR)/node.ini $(DESTDIR)$(EXAMPLEDIR)/coordinator.ini
	-rmdir $(DESTDIR)$(EXAMPLEDIR) $(DESTDIR)$(DOCDIR)

# The package's version is the changelog's: it must be the Makefile's VERSION.
# dpkg-buildpackage runs without our make's flags (no SANITIZE=1 leaks into it).
deb:
	@for t in dpkg-buildpackage dpkg-parsechangelog dpkg-architecture dh; do \
	  command -v $$t >/dev/null || { echo "make deb: $$t is missing; run make deps"; exit 1; }; \
	done
	@v=$$(dpkg-parsechangelog -l packaging/debian/changelog -S Version); \
	[ "$$v" = "$(VERSION)" ] || { echo "make deb: packaging/debian/changelog is at $$v but VERSION is" \
	  "$(VERSION): add a changelog entry for $(VERSION)"; exit 1; }
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_SRC)
	cp -a Makefile LICENSE README.md agent common conf packaging $(DEB_SRC)/
	cp -a packaging/debian $(DEB_SRC)/debian
	cd $(DEB_SRC) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u SANITIZE \
	  dpkg-buildpackage -us -uc
	@echo "make deb: $(DEB_FILE)"

# What can be checked without installing it: lintian on the source and binary
# packages (errors fail, warnings are shown) and systemd-analyze verify on the
# units (the template through an instance), with ExecStart= pointed at the
# packaged binary. tests/test_package.py
# runs this, then installs the package.
deb-check: deb
	@command -v lintian >/dev/null || { echo "make deb-check: lintian is missing; run make deps"; exit 1; }
	@command -v systemd-analyze >/dev/null || { echo "make deb-check: systemd-analyze is missing; run make deps"; exit 1; }
	lintian --fail-on error --display-info --pedantic $(DEB_CHANGES)
	rm -rf $(DEB_DIR)/root $(DEB_DIR)/units && mkdir -p $(DEB_DIR)/units
	dpkg-deb -x $(DEB_FILE) $(DEB_DIR)/root
	@for u in $(DEB_UNITS); do \
	  f=$$(find $(DEB_DIR)/root -path '*/systemd/system/'$$u.service); \
	  [ -n "$$f" ] || { echo "make deb-check: $$u.service is not in the package"; exit 1; }; \
	  sed 's|^ExecStart=/usr/bin/|ExecStart=$(abspath $(DEB_DIR))/root/usr/bin/|' $$f > $(DEB_DIR)/units/$$u.service; \
	done
	@out=$$(cd $(DEB_DIR)/units && systemd-analyze verify --man=no $(DEB_VERIFY:%=./%.service) 2>&1); rc=$$?; \
	if [ $$rc != 0 ] || [ -n "$$out" ]; then echo "$$out"; echo "make deb-check: systemd-analyze verify failed"; exit 1; fi; \
	echo "systemd-analyze verify: $(DEB_VERIFY:%=%.service) OK"

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
