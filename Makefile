# PBP: `make run` brings the whole stack up on loopback; `make test` runs every test.
# Both install what is missing first (Debian packages with apt-get, as root).

SHELL := /bin/bash
PORT ?= 8080
# The change source of `make run` (and of the chaos run): notify (LISTEN) or wal (a replication slot).
SOURCE ?= notify
SWIFT_PATH := $(if $(shell command -v swift),,/opt/swift/usr/bin:)
export PATH := $(SWIFT_PATH)$(PATH)

APT_PACKAGES := postgresql libpq-dev libfcgi-dev nginx chromium chromium-driver python3 python3-venv curl nodejs iproute2
VENV := .pbp/venv
PYTHON_PACKAGES := pytest==9.0.3 selenium==4.51.0 openapi-spec-validator==0.9.0 schemathesis==4.32.5 \
  pyjwt==2.15.1 cryptography==50.0.2
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: bench run token test unit-test page-test integration-test build build-debug deps apt-deps python-deps format clean

run: deps build
	python3 tools/pbpstack.py run --port $(PORT) --source $(SOURCE) --bin-dir $$(swift build -c release --show-bin-path)

# `make token SUB=alice`: prints a HS256 token for role pbp_user (ROLE= for
# another, ROLE= empty for none; TTL= seconds, default an hour; AUD= an audience),
# signed with .pbp/jwt.key, which it creates if missing (the secret is the
# file's text less its final newline: tools/mint_token.py, Sources/Identity).
# A standard JWT: any JWT library given that text as the HS256 key works too.
SUB ?=
ROLE ?= pbp_user
TTL ?= 3600
AUD ?=
token: python-deps
	@$(VENV)/bin/python tools/mint_token.py --key .pbp/jwt.key --sub '$(SUB)' --role '$(ROLE)' --ttl '$(TTL)' $(if $(AUD),--aud '$(AUD)')

test: deps build-debug unit-test fuzz integration-test chaos-test test-deploy

unit-test:
	swift test --parallel
	$(MAKE) --no-print-directory page-test

# The page's pure modules (static/: plan, registry, cursors, replica, writes,
# routes) under Node's own test runner, no browser: Tests/page/*.test.mjs.
page-test:
	node --test Tests/page/

integration-test:
	PBP_BIN_DIR=$$(swift build --show-bin-path) $(VENV)/bin/python -m pytest -ra Tests/integration

# --- Convergence harness (issue 7): Tests/chaos -------------------------------
# `make chaos`: 500 simulated browsers, each running the page's own modules
# (static/, under Node: Tests/chaos/browsers.mjs, a few processes driven by
# chaos.py) through nginx while writers (API and SQL) and faults (PostgreSQL restart,
# notifyd and worker kill -9, reloads, dropped clients) strike; then every
# replica is compared with the table: drift must be zero. Loopback only,
# release binaries, bounded (about 4 minutes). CHAOS_SEED=N replays a run;
# CHAOS_ARGS passes more (`.pbp/venv/bin/python Tests/chaos/chaos.py --help`).
# The report lands in test-artifacts/chaos/. `make chaos-test`, part of
# `make test`, is a short run (200 clients, 45 s of writes, about 75 s).
CHAOS_SEED ?=
CHAOS_ARGS ?=
.PHONY: chaos chaos-test

chaos: deps build
	$(VENV)/bin/python Tests/chaos/chaos.py --bin-dir $$(swift build -c release --show-bin-path) \
	  --clients 500 --duration 180 $(if $(CHAOS_SEED),--seed $(CHAOS_SEED)) $(CHAOS_ARGS)

chaos-test:
	PBP_BIN_DIR=$$(swift build --show-bin-path) $(VENV)/bin/python -m pytest -ra Tests/chaos

# `make cluster-chaos` (issue 19): the same clients and writers through a
# round-robin balancer nginx in front of three app hosts (each in a network
# namespace of its own, with its own address and replication slot; as root,
# loopback only: tools/pbpcluster.py), with a host killed and restarted,
# PostgreSQL restarted and a host's notifyd killed. Reports resets by fault
# (target zero), drift (zero) and how many polls changed host; about 3
# minutes. `make chaos-test` runs a short one (Tests/chaos/test_cluster_convergence.py).
CLUSTER_CHAOS_ARGS ?=
.PHONY: cluster-chaos

cluster-chaos: deps build
	$(SUDO) $(VENV)/bin/python Tests/chaos/cluster_chaos.py --bin-dir $$(swift build -c release --show-bin-path) \
	  --clients 300 --duration 120 $(if $(CHAOS_SEED),--seed $(CHAOS_SEED)) $(CLUSTER_CHAOS_ARGS)

# --- Fuzzing (issue 7): Fuzz/ ------------------------------------------------
# `make fuzz`, part of `make test`: each parser that takes outside input (JSON,
# form bodies and query strings, cursors, polls, write bodies, NOTIFY payloads,
# the notifyd wire protocol) runs under libFuzzer and ASan for FUZZ_SECONDS,
# FUZZ_JOBS (default: the cores) at a time, seeded from Fuzz/Corpus, which it
# leaves alone. A crash, hang or runaway allocation fails the make; the input
# lands in test-artifacts/fuzz/TARGET/ and `Fuzz/fuzz.sh replay FILE` reruns
# it. `make fuzz-long` runs FUZZ_LONG_SECONDS per target and merges what was
# new into Fuzz/Corpus, minimised, to commit. FUZZ_TARGETS picks targets
# (`Fuzz/fuzz.sh list`). Built in .build-fuzz/ (see Fuzz/fuzz.sh for why).
FUZZ_SECONDS ?= 15
FUZZ_LONG_SECONDS ?= 600
FUZZ_TARGETS ?=
.PHONY: fuzz fuzz-long

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) Fuzz/fuzz.sh run $(FUZZ_TARGETS)

fuzz-long:
	FUZZ_SECONDS=$(FUZZ_LONG_SECONDS) Fuzz/fuzz.sh merge $(FUZZ_TARGETS)

# --- Benchmarks (issue 8): `make bench`, never part of `make test` -----------
# Loopback only and bounded in time: starts a stack of its own with release
# binaries, runs bench/run_bench.py (latency, fanout, nchan, crud, intake;
# then the other change source on a second stack, side by side: issue 16),
# prints the figures against the targets and adds a section at the top of
# bench/RESULTS.md. `make bench BENCH=fanout,nchan` runs a part; BENCH_ARGS
# passes more options (`.pbp/venv/bin/python bench/run_bench.py --help`).
# The load generator is C (bench/loadgen/*.c), built into .build-bench/.
BENCH ?=
BENCH_ARGS ?=
BENCH_BUILD := .build-bench
# Nchan is the fan-out reference; perf and valgrind are for profiling.
BENCH_APT_PACKAGES := libnginx-mod-nchan linux-perf valgrind
BENCH_COMMAND := make bench$(if $(BENCH), BENCH=$(BENCH))$(if $(BENCH_ARGS), BENCH_ARGS='$(BENCH_ARGS)')

.PHONY: bench-deps bench-loadgen

bench: deps bench-deps build bench-loadgen
	$(VENV)/bin/python bench/run_bench.py --bin-dir $$(swift build -c release --show-bin-path) \
	  --command "$(BENCH_COMMAND)" $(if $(BENCH),--only $(BENCH)) $(BENCH_ARGS)

bench-loadgen: $(BENCH_BUILD)/loadgen

LOADGEN_SOURCES := $(wildcard bench/loadgen/*.c)

$(BENCH_BUILD)/loadgen: $(LOADGEN_SOURCES) $(wildcard bench/loadgen/*.h)
	@mkdir -p $(BENCH_BUILD)
	cc -O2 -Wall -Wextra -I$$(pg_config --includedir) -o $@ $(LOADGEN_SOURCES) -lpq -lm

bench-deps:
	$(call apt-install-missing,$(BENCH_APT_PACKAGES))

build:
	swift build -c release

build-debug:
	swift build --build-tests

deps: apt-deps python-deps

# $(call apt-install-missing,PACKAGES): installs only those not installed yet.
define apt-install-missing
@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
if [ -n "$$missing" ]; then \
  echo "installing: $$missing"; \
  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
fi
endef

apt-deps:
	$(call apt-install-missing,$(APT_PACKAGES))
	@command -v swift >/dev/null || { echo "Swift 6 is required (expected at /opt/swift)"; exit 1; }

python-deps: $(VENV)/.installed

$(VENV)/.installed: Makefile
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check $(PYTHON_PACKAGES)
	touch $@

format:
	swift format --in-place --recursive Sources Tests Package.swift

clean:
	rm -rf .build

# --- Deployment: `make install` and its test under a real systemd ------------
# `make install` builds the release binaries with the Swift runtime linked in
# (so that the target needs only libpq5 and libfcgi0ldbl) and puts binaries,
# systemd units, sysusers/tmpfiles entries, the nginx site, SQL, static files
# and configuration in place; docs/deploy.md is the first-deploy sequence.
# DESTDIR stages everything under another root; PREFIX must be /usr/local or
# /usr for systemd, systemd-sysusers and systemd-tmpfiles to find the files.

PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
BINDIR ?= $(PREFIX)/bin
# pbp-setup-db, an administrator's command.
SBINDIR ?= $(PREFIX)/sbin
PBP_DATADIR ?= $(PREFIX)/share/pbp
DOCDIR ?= $(PREFIX)/share/doc/pbp
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
NGINXDIR ?= $(SYSCONFDIR)/nginx
# The site's listen directive.
NGINX_LISTEN ?= 80
# The host names the site answers (others get 421), separated by spaces.
NGINX_SERVER_NAME ?= localhost 127.0.0.1
# The operators' listener: /api/_status and /api/_metrics, served nowhere else.
NGINX_STATUS_LISTEN ?= 127.0.0.1:8081
DEPLOY_SCRATCH := .build-deploy
DEPLOY_APT_PACKAGES := systemd-container debootstrap zstd curl
DEPLOY_SWIFT_FLAGS := -c release --static-swift-stdlib --scratch-path $(DEPLOY_SCRATCH)
# The version `pbp-setup-db --version` and the package say (tools/pbp-version.sh:
# `git describe`, made a valid Debian version).
PBP_GIT_VERSION := $(shell tools/pbp-version.sh)
PBP_VERSION ?= $(or $(PBP_GIT_VERSION),0.0)

.PHONY: install deploy-build test-deploy deploy-apt-deps

# The release binaries with the Swift runtime linked in.
deploy-build:
	swift build $(DEPLOY_SWIFT_FLAGS)

install: deploy-build
	@set -eu; \
	bin=$$(swift build $(DEPLOY_SWIFT_FLAGS) --show-bin-path); \
	d="$(DESTDIR)"; \
	paths='s|/usr/local/bin/|$(BINDIR)/|g; s|/usr/local/share/doc/pbp/|$(DOCDIR)/|g; s|/etc/pbp/|$(SYSCONFDIR)/pbp/|g'; \
	install -d "$$d$(BINDIR)" "$$d$(SBINDIR)" "$$d$(PBP_DATADIR)/sql" "$$d$(PBP_DATADIR)/static" "$$d$(DOCDIR)" \
	  "$$d$(UNITDIR)/nginx.service.d" "$$d$(SYSUSERSDIR)" "$$d$(TMPFILESDIR)" "$$d$(SYSCONFDIR)/pbp" \
	  "$$d$(NGINXDIR)/sites-available" "$$d$(NGINXDIR)/pbp-site.d"; \
	install -m 0755 "$$bin/pbp-notifyd" "$$bin/pbp-fcgi" "$$d$(BINDIR)/"; \
	sed -e 's|@SQLDIR@|$(PBP_DATADIR)/sql|g' -e 's|@VERSION@|$(PBP_VERSION)|g' deploy/pbp-setup-db.in > "$$d$(SBINDIR)/pbp-setup-db"; \
	chmod 0755 "$$d$(SBINDIR)/pbp-setup-db"; \
	install -m 0644 sql/*.sql "$$d$(PBP_DATADIR)/sql/"; \
	install -m 0755 sql/*.sh "$$d$(PBP_DATADIR)/sql/"; \
	cp -R static/. "$$d$(PBP_DATADIR)/static/"; \
	chmod -R u=rwX,go=rX "$$d$(PBP_DATADIR)/static"; \
	install -m 0644 docs/deploy.md "$$d$(DOCDIR)/"; \
	for unit in pbp-notifyd.service pbp-fcgi.service pbp-fcgi.socket; do \
	  sed "$$paths" "systemd/$$unit" > "$$d$(UNITDIR)/$$unit"; chmod 0644 "$$d$(UNITDIR)/$$unit"; \
	done; \
	install -m 0644 systemd/nginx.service.d/pbp.conf "$$d$(UNITDIR)/nginx.service.d/pbp.conf"; \
	install -m 0644 systemd/pbp.sysusers "$$d$(SYSUSERSDIR)/pbp.conf"; \
	install -m 0644 systemd/pbp.tmpfiles "$$d$(TMPFILESDIR)/pbp.conf"; \
	sed -e 's|@LISTEN@|$(NGINX_LISTEN)|g' -e 's|@STATIC_ROOT@|$(PBP_DATADIR)/static|g' \
	  -e 's|@SERVER_NAME@|$(strip $(NGINX_SERVER_NAME))|g' \
	  -e 's|@SERVER_NAME_MAP@|$(foreach name,$(NGINX_SERVER_NAME),$(name) 1;)|g' \
	  -e 's|@STATUS_LISTEN@|$(NGINX_STATUS_LISTEN)|g' \
	  -e 's|@FCGI_SOCKET@|/run/pbp/fcgi.sock|g' -e 's|@FCGI_POLL_SOCKET@|/run/pbp/fcgi-poll.sock|g' conf/nginx/pbp-site.conf.in > "$$d$(NGINXDIR)/sites-available/pbp"; \
	chmod 0644 "$$d$(NGINXDIR)/sites-available/pbp"; \
	install -m 0644 conf/nginx/pbp-limits.conf "$$d$(NGINXDIR)/pbp-site.d/limits.conf"; \
	for conf in pbp-notifyd.conf pbp-fcgi.conf; do \
	  if [ -e "$$d$(SYSCONFDIR)/pbp/$$conf" ]; then \
	    echo "kept $$d$(SYSCONFDIR)/pbp/$$conf (the new default is deploy/$$conf)"; \
	  else \
	    install -m 0644 "deploy/$$conf" "$$d$(SYSCONFDIR)/pbp/$$conf"; \
	  fi; \
	done; \
	echo "installed PBP under $${d:-/}; next: docs/deploy.md"

# Boots systemd in a Debian 12 container (systemd-nspawn), deploys PBP into it
# from its package (`make deb`) with docs/deploy.md's blocks, checks it through
# nginx, upgrades it to a newer build under load, removes and purges it; and
# checks what `make install` stages. As root; about 4 minutes once the Swift
# release build (.build-deploy) exists.
test-deploy: deps deploy-apt-deps
	$(SUDO) $(VENV)/bin/python -m pytest -ra Tests/deploy

deploy-apt-deps:
	$(call apt-install-missing,$(DEPLOY_APT_PACKAGES))

# --- The Debian package (issue 18): `make deb` --------------------------------
# Builds $(DEB_DIR)/pbp_$(DEB_VERSION)_$(DEB_ARCH).deb with debhelper
# (dpkg-buildpackage -b: debian/rules calls `make install` with Debian's
# paths), then checks it with lintian, which fails the make on an error (each
# warning is fixed or overridden, with its reason, in
# debian/pbp.lintian-overrides). debian/changelog is written first from
# DEB_VERSION, so a release needs no edit in the tree. `make deb
# DEB_VERSION=1.2.3-1` names another version. Everything the build leaves
# is under ignored paths: debian/ (see .gitignore), $(DEB_DIR)/ and the Swift
# build in $(DEPLOY_SCRATCH)/.
DEB_REVISION ?= 1
DEB_VERSION ?= $(PBP_VERSION)-$(DEB_REVISION)
DEB_DIR := .build-deb
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
DEB_FILE = $(DEB_DIR)/pbp_$(DEB_VERSION)_$(DEB_ARCH).deb
DEB_APT_PACKAGES := debhelper dpkg-dev fakeroot lintian help2man libpq-dev libfcgi-dev
DEB_MAINTAINER := PBP maintainers <maintainers@users.noreply.r-seed-c89f4e1e.example>

.PHONY: deb deb-version deb-apt-deps

deb: deb-apt-deps
	@command -v swift >/dev/null || { echo "Swift 6 is required (expected at /opt/swift)"; exit 1; }
	@mkdir -p $(DEB_DIR)
	@{ printf 'pbp (%s) unstable; urgency=medium\n\n' '$(DEB_VERSION)'; \
	  printf '  * Built from git %s.\n\n' "$$(git describe --tags --always --dirty 2>/dev/null || echo unknown)"; \
	  printf ' -- %s  %s\n' '$(DEB_MAINTAINER)' "$$(git log -1 --format=%aD 2>/dev/null || date -R)"; } > debian/changelog
	dpkg-buildpackage -b --no-sign \
	  --buildinfo-file=$(DEB_DIR)/pbp_$(DEB_VERSION)_$(DEB_ARCH).buildinfo --buildinfo-option=-u$(DEB_DIR) \
	  --changes-file=$(DEB_DIR)/pbp_$(DEB_VERSION)_$(DEB_ARCH).changes --changes-option=-u$(DEB_DIR)
	lintian --fail-on error $(DEB_FILE)
	@echo "built $(DEB_FILE)"

# The version `make deb` builds, for scripts (Tests/deploy).
deb-version:
	@echo $(DEB_VERSION)

deb-apt-deps:
	$(call apt-install-missing,$(DEB_APT_PACKAGES))
