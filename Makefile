# PBP: `make run` brings the whole stack up on loopback; `make test` runs every test.
# Both install what is missing first (Debian packages with apt-get, as root).

SHELL := /bin/bash
PORT ?= 8080
SWIFT_PATH := $(if $(shell command -v swift),,/opt/swift/usr/bin:)
export PATH := $(SWIFT_PATH)$(PATH)

APT_PACKAGES := postgresql libpq-dev libfcgi-dev nginx chromium chromium-driver python3 python3-venv curl
VENV := .pbp/venv
PYTHON_PACKAGES := pytest==9.0.3 selenium==4.51.0 openapi-spec-validator==0.9.0
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: bench run test unit-test integration-test build build-debug deps apt-deps python-deps format clean

run: deps build
	python3 tools/pbpstack.py run --port $(PORT) --bin-dir $$(swift build -c release --show-bin-path)

test: deps build-debug unit-test integration-test

unit-test:
	swift test --parallel

integration-test:
	PBP_BIN_DIR=$$(swift build --show-bin-path) $(VENV)/bin/python -m pytest -ra Tests/integration

# Benchmarks print their figures; they are never part of `make test`.
bench: deps build
	$(VENV)/bin/python bench/notifyd_intake.py --bin-dir $$(swift build -c release --show-bin-path)

build:
	swift build -c release

build-debug:
	swift build --build-tests

deps: apt-deps python-deps

# Installs only the Debian packages that are not installed yet.
apt-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
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
