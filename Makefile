# How Networks Remember — build the book and test everything.
#   make book   build the HTML book into _build/html
#   make mutants  mutation testing of sseq's modules; make planted: a set of planted bugs
#                 (both slow; not part of make test)
#   make test   lint, unit tests, every chapter re-run by nbval (twice: as stored, and with
#               the numerical libraries on another CPU's code paths), the Colab-like
#               environment, the dependency resolution, and the book build
# Both create the pinned environment in .venv on first use (Python 3.11.5 to 3.13).

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
COMPAT  := .venv-compat
JOBS    ?= 2
# The chapters are exactly the notebooks listed in _toc.yml.
NOTEBOOKS = $(shell $(BIN)/python tests/toc.py)
NB      ?= $(NOTEBOOKS)
NBVAL    = $(BIN)/python -m pytest -p tests.nbtimes --nbval --nbval-current-env \
	--nbval-cell-timeout=120 --nbval-sanitize-with tests/nbval_sanitize.cfg -n $(JOBS) \
	--dist loadfile

# An environment that no longer holds its pins (a package removed or changed by hand, an
# install cut short) loses its stamp here, so that the rule below repairs it.
ifneq ($(wildcard $(STAMP)),)
ifneq ($(shell $(BIN)/python tests/envcheck.py pins requirements.txt >/dev/null 2>&1 || echo bad),)
$(shell rm -f $(STAMP))
$(info The environment in $(VENV) does not match requirements.txt: reinstalling it.)
endif
endif

.PHONY: book test lint unit notebooks notebooks-other-cpu compat deps execute timings lab \
	clean distclean freeze mutants planted student instructor book-student

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is in _build/html/index.html"

# Every check, arranged to keep two cores busy (tests/make_test.sh): the installs and the
# dependency check alongside the unit tests, then nbval, make compat and the book all at once.
test:
	@MAKE="$(MAKE)" tests/make_test.sh

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

# Work stealing: the chapter-grading tests are long, and a worker left idle takes them over.
unit: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/pytest tests -n $(JOBS) --dist worksteal

# Mutation testing (not part of make test: minutes per module). Plants small bugs in sseq's
# modules, one module at a time, and runs each against the tests mapped to it in
# tests/mutants/targets.toml; writes _build/mutants/REPORT.md (score, survivors). The core
# modules by default, or MODULES="sseq/attention/ sseq/exercises.py"; MUTANT_JOBS mutants at once.
MODULES     ?=
MUTANT_JOBS ?= 1
mutants: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python tests/mutants/run.py --jobs $(MUTANT_JOBS) $(MODULES)

# Planted bugs: each realistic mistake of tests/mutants/planted.toml run alone against the tests
# that cover its module; writes _build/planted/REPORT.md (caught or not, and by which test).
planted: $(STAMP)
	$(BIN)/python tests/mutants/planted.py --jobs $(MUTANT_JOBS)

# Re-run every chapter and compare its text outputs with the stored ones (strict mode);
# the summary prints each notebook's execution time. Two notebooks run at once, one thread
# each: on a 2-core machine, oversubscribed threads make small torch ops 10x slower.
notebooks: $(STAMP)
	OMP_NUM_THREADS=1 $(NBVAL) $(NOTEBOOKS)

# The same comparison with PyTorch, NumPy, OpenBLAS, MKL, oneDNN and numba forced onto other
# code paths (tests/other_cpu.py): stored outputs must match on any machine, not only this one.
notebooks-other-cpu: $(STAMP)
	env $$($(BIN)/python tests/other_cpu.py) OMP_NUM_THREADS=1 $(NBVAL) $(NOTEBOOKS)

# A Colab-like environment (tests/compat-requirements.txt: Colab's Triton and ipywidgets, the
# newest of the rest): the Triton kernels' interpreter tests, then every chapter run by nbval
# as a Colab learner runs it (sseq installed by its setup cell from a clone of HEAD: commit
# first), with the numerical libraries on another CPU's code paths (tests/colab_sim.py).
compat: $(COMPAT)/.installed $(STAMP)
	$(COMPAT)/bin/python -m pip install -q -r tests/compat-requirements.txt  # undo a drift
	TRITON_INTERPRET=1 OMP_NUM_THREADS=1 $(COMPAT)/bin/python -m pytest -q -p no:cacheprovider \
		-n $(JOBS) tests/test_scan_triton.py
	$(BIN)/python tests/colab_sim.py $(COMPAT)/bin/python

# The dependencies resolve, from the public index, for every Python version the README names.
deps: $(STAMP)
	$(BIN)/python tests/check_deps.py

# Execute notebooks in place, top to bottom, refreshing their stored outputs (NB=... for one).
execute: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python tests/execute_notebooks.py $(NB)

# Execute every chapter without saving and print its run time.
timings: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python tests/execute_notebooks.py --dry-run $(NB)

# For instructors (book/instructors.md), from the chapters themselves: the student edition
# (no solutions), the instructor edition with an answer key per chapter, and the HTML book
# without solutions (-W -n). Grade with: $(BIN)/python -m sseq.grade SUBMISSIONS --out grades.csv
student: $(STAMP)
	$(BIN)/python -m sseq.assign student --out _build/student $(NB)

instructor: $(STAMP)
	$(BIN)/python -m sseq.assign instructor --out _build/instructor $(NB)

book-student: $(STAMP)
	$(BIN)/python -m sseq.assign book-student --out _build/html-student

lab: $(STAMP)
	$(BIN)/jupyter lab

clean:
	rm -rf _build .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -not -path './$(COMPAT)/*' -prune \
		-exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(COMPAT)

# Rewrite requirements.txt from the current environment (after a deliberate upgrade).
freeze: $(STAMP)
	$(BIN)/python tests/freeze.py > requirements.txt.new && mv requirements.txt.new requirements.txt

# A venv whose creation was cut short (a python without pip) is built again from scratch.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) tests/envcheck.py python
	$(BIN)/python -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python tests/envcheck.py pins requirements.txt
	touch $(STAMP)

$(COMPAT)/.installed: tests/compat-requirements.txt pyproject.toml
	$(PYTHON) tests/envcheck.py python
	rm -rf $(COMPAT) && $(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install -q --upgrade pip
	$(COMPAT)/bin/python -m pip install -q -r tests/compat-requirements.txt .
	$(COMPAT)/bin/python -m pip uninstall -q -y sseq
	touch $@
