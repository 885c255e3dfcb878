# Two commands do all the set-up: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# llama-cpp-python compiles llama.cpp; a portable build runs on any x86-64 CPU (pip caches the wheel).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: demo test bench up codegen clean

$(BIN)/activate:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "λλM needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,bench]' 'tox>=4.20,<5'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/lambdallm demo

up: $(VENV)/.installed
	$(BIN)/lambdallm up

test: $(VENV)/.installed
	$(BIN)/tox run

bench: $(VENV)/.installed
	$(BIN)/lambdallm bench

codegen: $(VENV)/.installed
	$(BIN)/tox run -e codegen

clean:
	rm -rf $(VENV) .tox build *.egg-info
