# Makefile - builds libcommon (lib/) and every daemon (services/*) into
# build/, and runs the project's checks. `make SAN=1` builds with ASan+UBSan
# into build-san/. Adding a .c file needs no change here: sources, tests and
# services are found by wildcard.

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD ?= build
SANFLAGS :=
endif

CC ?= cc
PKGS := libmicrohttpd jansson sqlite3 libcurl openssl raft libuv
# Recursive (=) on purpose: pkg-config runs after `deps` has installed the
# packages, not when make reads this file on a fresh machine.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))
CHECK_LIBS = $(shell pkg-config --libs check)
# lib/tests holds uc_check.h, the test runner every Check test shares.
CFLAGS := -std=c11 -Wall -Wextra -Werror -O2 -g -D_GNU_SOURCE -Ilib/include -Ilib/tests $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := $(SANFLAGS) -pthread -Wl,--as-needed
DEPFLAGS = -MMD -MP

LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
LIB_A := $(BUILD)/lib/libcommon.a
LIB_TESTS := $(patsubst lib/tests/%.c,$(BUILD)/tests/lib/%,$(wildcard lib/tests/test_*.c))

# A service folder with C files gets lib<svc>.a and its tests; a daemon only
# once it has a main.c (so a service's core can land before its daemon).
SERVICES := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard services/*/*.c)))))
BINS := $(addprefix $(BUILD)/bin/,$(notdir $(patsubst %/main.c,%,$(wildcard services/*/main.c))))

all: $(LIB_A) $(BINS) unit-tests

# The daemons alone: what quickstart needs, so a broken test cannot stop it.
bins: $(LIB_A) $(BINS)

$(BUILD)/.deps-ok: scripts/deps.sh
	@scripts/deps.sh ensure
	@mkdir -p $(@D) && touch $@

$(BUILD)/obj/%.o: %.c | $(BUILD)/.deps-ok
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(LIB_A): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/lib/%: $(BUILD)/obj/lib/tests/%.o $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(LIB_A) $(PKG_LIBS) $(CHECK_LIBS) -o $@

# Per service: objects other than main.o form lib<svc>.a, which the daemon
# and its unit tests link.
define service_rules
$(1)_SRCS := $$(filter-out services/$(1)/main.c,$$(wildcard services/$(1)/*.c))
$(1)_OBJS := $$(patsubst %.c,$(BUILD)/obj/%.o,$$($(1)_SRCS))
$(1)_A := $(BUILD)/lib/lib$(1).a
$(1)_TESTS := $$(patsubst services/$(1)/tests/%.c,$(BUILD)/tests/$(1)/%,$$(wildcard services/$(1)/tests/test_*.c))
$$($(1)_A): $$($(1)_OBJS)
	@mkdir -p $$(@D)
	rm -f $$@ && ar rcs $$@ $$^
$(BUILD)/bin/$(1): $(BUILD)/obj/services/$(1)/main.o $$($(1)_A) $(LIB_A)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) $$^ $$(PKG_LIBS) -o $$@
$(BUILD)/tests/$(1)/%: $(BUILD)/obj/services/$(1)/tests/%.o $$($(1)_A) $(LIB_A)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) $$^ $$(PKG_LIBS) $$(CHECK_LIBS) -o $$@
SERVICE_TESTS += $$($(1)_TESTS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_rules,$(s))))

unit-tests: $(LIB_TESTS) $(SERVICE_TESTS)

# --- checks -----------------------------------------------------------------

.PHONY: all deps deps-bench unit integration test check cppcheck format format-check \
        quickstart bench clean unit-tests install bins

deps:
	@scripts/deps.sh install

deps-bench:
	@scripts/deps.sh install bench

unit: all
	@scripts/run-unit.sh $(BUILD)

integration: all
	@scripts/run-integration.sh $(BUILD)

cppcheck:
	@scripts/cppcheck.sh

format:
	clang-format -i $$(git ls-files --cached --others --exclude-standard '*.c' '*.h')

format-check:
	@scripts/format-check.sh

# The README's test command: unit, integration, the same under ASan+UBSan,
# then static checks; one summary at the end.
test:
	@scripts/test.sh

# The six-node harness's fault lanes (test-cluster/README.md); `make test`
# runs only fresh-smoke. Every lane runs even when an earlier one failed.
# LANES=consistency (for example) runs some; they need root for partitions.
CLUSTER_LANES ?= durability-proof chainfire-live-membership-proof consistency
.PHONY: test-cluster
test-cluster:
	@scripts/deps.sh ensure
	@$(MAKE) --no-print-directory bins
	@rc=0; for l in $(or $(LANES),$(CLUSTER_LANES)); do \
		/usr/bin/python3 test-cluster/cluster lane $$l || rc=1; \
	done; exit $$rc

quickstart:
	@scripts/deps.sh ensure
	@$(MAKE) --no-print-directory bins
	@scripts/quickstart.sh $(if $(filter 1,$(SMOKE)),--smoke)

bench:
	@scripts/deps.sh ensure bench
	@$(MAKE) --no-print-directory all
	@bench/run.sh

# Install the daemons and their systemd units (packaging/systemd) for a host
# without Nix. The units name /usr/local/bin; another PREFIX is written in.
PREFIX ?= /usr/local
UNITDIR ?= $(PREFIX)/lib/systemd/system
install: $(BINS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR)
	$(if $(BINS),install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/)
	for u in packaging/systemd/*.service; do \
		sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' $$u >$(DESTDIR)$(UNITDIR)/$$(basename $$u) && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u) || exit 1; \
	done

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
