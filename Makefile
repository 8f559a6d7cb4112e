# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test bench bench-metrics clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ccrbench run --config configs/shapes_finetune.yaml --out runs/demo --overwrite

# pytest exits 5 when it collects no test: say so and do not fail on that alone.
test: $(STAMP)
	$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no test"; exit 0; fi; exit $$rc

bench-metrics: $(STAMP)
	$(PY) scripts/bench_metrics.py

# Speed and memory figures against their goals, one table (QUICK=1: skip the long ones).
bench: $(STAMP)
	$(PY) scripts/bench.py $(if $(QUICK),--quick)

clean:
	rm -rf runs .pytest_cache
