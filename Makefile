# Two commands do all the set-up: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# llama-cpp-python compiles llama.cpp; a portable build runs on any x86-64 CPU (pip caches the wheel).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: demo test bench mutation up codegen postman images clean

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

# Mutation testing of the modules that decide answers (slow: not part of `make test`); tests/README.md.
mutation: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[mutation]'
	$(BIN)/python scripts/mutation.py

codegen: $(VENV)/.installed
	$(BIN)/tox run -e codegen

# The Postman collection of specs/openapi.yaml, in build/postman/ (npm installs the converter; docs/postman.md).
postman: $(VENV)/.installed
	$(BIN)/python scripts/postman.py

# The images on a base made by debootstrap (no registry needed); IMAGE_BASE=docker.io/library/python:3.11-slim
# builds on the official one instead. Then the compose stack's test (a real /query through the images).
IMAGE_BASE ?= localhost/debian-python:bookworm
images: export CONTAINERS_CONF := $(CURDIR)/.lambdallm/containers.conf
images: $(VENV)/.installed
	sh scripts/podman-setup.sh $(CONTAINERS_CONF) $(IMAGE_BASE) $(BIN)/python
	for target in rest proxy local-cloud; do \
	    podman build --format docker --network host -v /etc/ssl/certs:/etc/ssl/certs:ro \
	        --build-arg BASE=$(IMAGE_BASE) --target $$target -t localhost/lambdallm-$$target:latest \
	        -f Containerfile . || exit 1; \
	done
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/pytest --images tests/deploy/test_compose.py -v

clean:
	rm -rf $(VENV) .tox build *.egg-info .mutation
