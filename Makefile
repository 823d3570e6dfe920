# Two commands do everything on a fresh machine: `make demo` (the main job, offline) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.nlsup-installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,demo]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/nlsup demo --out build

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf build
