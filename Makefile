# make demo: run the sync end to end on the bundled sample exports.
# make test: run the test suite (Postgres from LOYALTY_TEST_DATABASE_URL, else an embedded one).
# Both create .venv and install the pinned requirements first.

PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: venv demo test docs sample lock clean bench-deliver bench-derive bench-load

$(INSTALLED): requirements.txt pyproject.toml
	test -x $(VENV_PYTHON) || $(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(VENV_PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(INSTALLED)

venv: $(INSTALLED)

# PARAMS='{"dry_run": true}' passes a manual run's params (see the README).
demo: venv
	$(VENV_PYTHON) -m loyalty_sync.demo $(if $(PARAMS),--params '$(PARAMS)')

test: venv
	$(VENV_PYTHON) -m pytest

# Regenerate the committed sample exports (deterministic: same seed, same bytes).
sample: venv
	$(VENV_PYTHON) -m loyalty_sync.sample --out include/sample_exports

# Regenerate the docs that are built from code; a test fails when the committed ones differ. The data
# dictionary needs Postgres: DOCS_DATABASE_URL names a server (else LOYALTY_TEST_DATABASE_URL's, else an
# embedded one), where it migrates a scratch database. Each doc is written to a .tmp file first, so a
# failed command leaves the committed doc as it was.
DOCS_DATABASE_URL ?= $(LOYALTY_TEST_DATABASE_URL)
docs: venv
	$(VENV_PYTHON) -m loyalty_sync.webengage.catalog > docs/webengage-catalog.md.tmp \
		&& mv docs/webengage-catalog.md.tmp docs/webengage-catalog.md || (rm -f docs/webengage-catalog.md.tmp; false)
	$(VENV_PYTHON) -m loyalty_sync.contract > docs/nector-export-format.md.tmp \
		&& mv docs/nector-export-format.md.tmp docs/nector-export-format.md || (rm -f docs/nector-export-format.md.tmp; false)
	$(VENV_PYTHON) -m loyalty_sync.settings > docs/settings.md.tmp && mv docs/settings.md.tmp docs/settings.md || (rm -f docs/settings.md.tmp; false)
	$(VENV_PYTHON) -m loyalty_sync.analytics.data_dictionary $(if $(DOCS_DATABASE_URL),--server "$(DOCS_DATABASE_URL)") \
		> docs/data-dictionary.md.tmp && mv docs/data-dictionary.md.tmp docs/data-dictionary.md || (rm -f docs/data-dictionary.md.tmp; false)

# Loader against psql \copy and pandas to_sql on ~1M ledger rows; see docs/benchmarks.md.
bench-load: venv
	$(VENV_PYTHON) benchmarks/bench_load.py

# Time a full derive (shared tables and every segment) against one aggregate scan of the ledger, on 1M
# customers and 10M ledger rows generated in a scratch database on LOYALTY_BENCH_DATABASE_URL's server.
bench-derive: venv
	$(VENV_PYTHON) benchmarks/bench_derive.py

# Time delivery to the WebEngage stand-in: 100k events and 50k users through the outbox sender next to a
# naive one-event-per-request client, without and with a rate limit, in a scratch database on
# LOYALTY_BENCH_DATABASE_URL's server (default the local 127.0.0.1:5432).
bench-deliver: venv
	$(VENV_PYTHON) benchmarks/bench_deliver.py

# Re-pin every package after changing a dependency in pyproject.toml.
lock: venv
	$(VENV_PYTHON) -m pip install --quiet -e '.[dev,s3]'
	{ echo "# Exact versions of every package, so a fresh machine installs the same set. Regenerate with"; \
	  echo "# 'make lock' after changing a dependency in pyproject.toml."; \
	  $(VENV_PYTHON) -m pip freeze --exclude-editable; } > requirements.txt

clean:
	rm -rf $(VENV) .demo
