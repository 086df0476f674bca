# Two commands on a fresh machine with Python 3.11+ and make: `make run`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

.PHONY: run test serve lint format clean compilemessages messages

# Translations (README "Languages"): locale/<lang>/LC_MESSAGES/django.po, compiled to
# the django.mo next to it. Both are committed, so a machine without gettext still runs.
LOCALE_MO := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/django.po))
# What makemessages reads: our apps and templates, not the venv, the X sandbox (it
# plays X, not this site), the benchmarks or the tests.
MESSAGES_IGNORE := --ignore=.venv --ignore=x_sandbox --ignore=bench --ignore=tests \
	--ignore=staticfiles --ignore=exports

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; set PYTHON=python3.x")'
	$(PYTHON) -m venv $(VENV)

# Stamp files: pip runs again only when a requirements file changed.
$(VENV)/.installed-runtime: requirements.txt | $(PY)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@ $(VENV)/.installed-runtime

# A .po newer than its .mo is compiled with gettext's msgfmt when it is installed;
# without msgfmt the committed .mo is used as it is.
locale/%/LC_MESSAGES/django.mo: locale/%/LC_MESSAGES/django.po
	@if command -v msgfmt >/dev/null; then msgfmt --check-format -o $@ $<; \
	else echo "msgfmt not found (apt-get install gettext): using the committed $@"; fi

compilemessages: $(LOCALE_MO)

# After changing text: extract every string into the catalogues, translate the new or
# changed (fuzzy) entries, then `make compilemessages`. Needs gettext.
messages: $(VENV)/.installed-runtime
	$(PY) manage.py makemessages --all $(MESSAGES_IGNORE) --add-location=file
	$(PY) manage.py compilemessages $(MESSAGES_IGNORE)

run: $(VENV)/.installed-runtime compilemessages
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_demo_staff
	$(PY) -m project.devserver

# Production: static files, migrations, then gunicorn, which also runs and
# supervises DB_WORKERS job workers (see project/gunicorn.conf.py and README "Deploying").
serve: $(VENV)/.installed-runtime compilemessages
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py migrate --noinput
	exec $(BIN)/gunicorn --config project/gunicorn.conf.py

test: $(VENV)/.installed-dev compilemessages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
