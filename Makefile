# How Networks Remember — build the book and test everything.
#   make book   build the HTML book into _build/html
#   make test   lint, unit tests, every chapter re-run by nbval, and the book build
# Both create the pinned environment in .venv on first use.

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
JOBS    ?= 2
# The chapters are exactly the notebooks listed in _toc.yml.
NOTEBOOKS = $(shell $(BIN)/python tests/toc.py)
NB      ?= $(NOTEBOOKS)

.PHONY: book test lint unit notebooks execute timings lab clean distclean freeze

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is in _build/html/index.html"

test: lint unit notebooks book test-html

# The built book in headless Chromium, as readers see it (tests/html; no network needed).
# Needs Debian's chromium (apt-get install chromium; .ci/run installs it) or CHROMIUM=/path.
# Screenshots of each chapter's first screen land in _build/screens/.
.PHONY: test-html linkcheck
test-html: book
	@command -v $${CHROMIUM:-chromium} >/dev/null || { echo "test-html needs Chromium: apt-get install chromium (Debian), or set CHROMIUM=/path/to/chromium"; exit 1; }
	$(BIN)/python -m pytest -p no:cacheprovider tests/html/browser_checkers.py tests/html/browser_book.py

# External links of the book, checked online (not part of make test: CI has no network).
linkcheck: $(STAMP)
	$(BIN)/jupyter-book build . --builder linkcheck

lint: $(STAMP)
	$(BIN)/ruff check .

unit: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/pytest tests -n $(JOBS)

# Re-run every chapter and compare its text outputs with the stored ones (strict mode);
# the summary prints each notebook's execution time. Two notebooks run at once, one thread
# each: on a 2-core machine, oversubscribed threads make small torch ops 10x slower.
notebooks: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -p tests.nbtimes --nbval --nbval-current-env --nbval-cell-timeout=120 \
		--nbval-sanitize-with tests/nbval_sanitize.cfg -n $(JOBS) --dist loadfile $(NOTEBOOKS)

# Execute notebooks in place, top to bottom, refreshing their stored outputs (NB=... for one).
execute: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python tests/execute_notebooks.py $(NB)

# Execute every chapter without saving and print its run time.
timings: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python tests/execute_notebooks.py --dry-run $(NB)

lab: $(STAMP)
	$(BIN)/jupyter lab

clean:
	rm -rf _build .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

# Rewrite requirements.txt from the current environment (after a deliberate upgrade).
freeze: $(STAMP)
	$(BIN)/python tests/freeze.py > requirements.txt.new && mv requirements.txt.new requirements.txt

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $(STAMP)
