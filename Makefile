# The README's two commands: `make run` and `make test`. Both set everything up first.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test bench clean

setup:
	@scripts/setup.sh

# The main job: a small architecture search on the offline default (scikit-learn's digits), measured on a
# virtual board through a local agent, pruned and repaired by the learned cost model, and its HTML report.
# The study starts afresh each time; the measurement store is kept, so the cost model knows more next time.
TARGET ?= NUCLEO-L496ZG
SPACE ?= cnn
TRIALS ?= 40
EPOCHS ?= 3
MAX_LATENCY ?= 1.5ms
run: setup
	@mkdir -p out
	@rm -f out/nas-demo.sqlite out/nas-demo.sqlite-wal out/nas-demo.sqlite-shm
	$(BIN)/nas search --study demo --storage sqlite:///out/nas-demo.sqlite --store out/nas-measurements.sqlite \
		--target $(TARGET) --space $(SPACE) --data digits --trials $(TRIALS) --epochs $(EPOCHS) \
		--objectives accuracy,latency --max-latency $(MAX_LATENCY) --report out/nas-report.html

test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# build products live under the one cache root (measure_agent/firmware_build/cache.py); only its known folders go
CACHE_ROOT := $(or $(MCU_NAS_CACHE),$(HOME)/.cache/mcu-nas)
clean:
	rm -rf build .cache out *.egg-info
	rm -rf $(addprefix $(CACHE_ROOT)/,firmware host-shell host-runtime test-models test-programs)
