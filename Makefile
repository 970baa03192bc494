# Two commands for a fresh machine: `make demo` and `make test`.
# Both create .venv, install system packages (Debian, as root) and the project
# with constraints.txt (torch==2.13.0), then do their work.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 poppler-utils fonts-dejavu-core \
  chromium chromium-driver npm
# PostgreSQL: the server the test suite starts for itself (tests/pg.py: initdb in a
# temporary folder, pg_ctl on a free local port, stopped at the end). Optional:
# without it (not root, no apt) the PostgreSQL half of the tests skips, saying why.
PG_PACKAGES := postgresql
# the web viewer (monitor serve): OpenSeadragon from npm, copied into a git-ignored static folder
WEB := monitor/web
OSD_VENDOR := $(WEB)/static/vendor/openseadragon/openseadragon.min.js
DEMO_OUT ?= demo_out
export HF_HUB_OFFLINE := 1

.PHONY: demo serve-demo test install web-assets system-deps pg-deps sample bench bench-speed \
  bench-campaign lint clean

install: $(STAMP) web-assets

web-assets: $(OSD_VENDOR)

$(OSD_VENDOR): $(WEB)/package.json $(WEB)/package-lock.json | system-deps
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(WEB)/static/vendor/openseadragon
	mkdir -p $(WEB)/static/vendor
	cp -r $(WEB)/node_modules/openseadragon/build/openseadragon $(WEB)/static/vendor/openseadragon
	touch $@

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  if [ $$p = npm ] && command -v npm >/dev/null; then continue; fi; \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	    echo "missing system packages:$$missing (install them with apt-get as root)" >&2; exit 1; fi; \
	  echo "installing system packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Installs the PostgreSQL server when it is missing and we may (root + apt); never fails.
pg-deps:
	@missing=""; for p in $(PG_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing PostgreSQL for the test suite:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) \
	      || echo "could not install$$missing: the PostgreSQL tests will skip" >&2; \
	    if command -v pg_lsclusters >/dev/null; then pg_lsclusters -h 2>/dev/null | while read -r ver name _; do \
	      pg_ctlcluster "$$ver" "$$name" stop >/dev/null 2>&1 || true; done; fi; \
	  else \
	    echo "PostgreSQL server not installed (needs root + apt-get):$$missing; the PostgreSQL tests will skip" >&2; \
	  fi; \
	fi

$(STAMP): pyproject.toml constraints.txt | system-deps
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: installing kornia first would pull a multi-GB CUDA build.
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

sample: $(STAMP)
	$(PY) sample_data/generate.py --out sample_data

demo: $(STAMP) sample
	rm -rf $(DEMO_OUT)
	@echo "== 1. stateless comparison of the sample pair"
	$(VENV)/bin/monitor compare sample_data/baseline.png sample_data/current.png \
	  --out $(DEMO_OUT)/compare --light-azimuth 180 --light-elevation 25
	@echo "== 2. the same pair through the artwork history, with a PDF condition report"
	$(VENV)/bin/monitor init --home $(DEMO_OUT)/home
	$(VENV)/bin/monitor artwork add sample-canvas --home $(DEMO_OUT)/home \
	  --title "Sample canvas" --artist "monitor.synth" --medium "oil on canvas (synthetic)" \
	  --width-mm 320 --height-mm 240
	$(VENV)/bin/monitor ingest sample-canvas sample_data/baseline.png --home $(DEMO_OUT)/home \
	  --captured-at 2026-01-15 --px-per-mm 4 --light-azimuth 180 --light-elevation 25
	$(VENV)/bin/monitor ingest sample-canvas sample_data/current.png --home $(DEMO_OUT)/home \
	  --captured-at 2026-07-15 --px-per-mm 4 --light-azimuth 180 --light-elevation 25
	$(VENV)/bin/monitor compare sample-canvas --home $(DEMO_OUT)/home
	$(VENV)/bin/monitor history sample-canvas --home $(DEMO_OUT)/home
	$(VENV)/bin/monitor report sample-canvas --latest --home $(DEMO_OUT)/home \
	  -o $(DEMO_OUT)/condition-report.pdf
	@echo
	@echo "demo outputs:"
	@echo "  $(abspath $(DEMO_OUT))/compare  (regions.json, change.tif, heatmap.png, overlay.png, registration.json)"
	@echo "  $(abspath $(DEMO_OUT))/condition-report.pdf"
	@echo "  $(abspath $(DEMO_OUT))/home     (monitor.db and the stored scans)"

# the read-only web viewer over the demo history (make demo first): http://127.0.0.1:8000
serve-demo: install
	$(PY) -m monitor.web --home $(DEMO_OUT)/home

# Runs the store, migration, history, inbox and campaign tests on SQLite and on a
# throwaway PostgreSQL server; once the server is installed its absence is a failure.
test: $(STAMP) web-assets pg-deps
	@if dpkg -s postgresql >/dev/null 2>&1 || command -v initdb >/dev/null; then export MONITOR_REQUIRE_POSTGRES=1; fi; \
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy monitor

bench: $(STAMP)
	OMP_NUM_THREADS=2 $(PY) bench/benchmark.py --docs docs

bench-speed: $(STAMP)
	OMP_NUM_THREADS=2 $(PY) bench/stages.py --sizes 24MP,100MP --source native --scale auto --docs docs

bench-campaign: $(STAMP) pg-deps
	OMP_NUM_THREADS=1 $(PY) bench/campaign.py --docs docs

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache $(WEB)/node_modules $(WEB)/static/vendor
