# Two commands do everything on a fresh machine: `make demo` (the main job, offline) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.nlsup-installed
# The shared read-only data beside the project is the default data directory when present.
ifeq ($(origin NLSUP_DATA), undefined)
  ifneq ($(wildcard ../shared/data),)
    export NLSUP_DATA := $(abspath ../shared/data)
  endif
endif

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,plots,notebooks]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/nlsup demo --out build

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf build
