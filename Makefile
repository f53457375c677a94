# The README's two commands: `make run` and `make test`. Both set everything up first.
VENV ?= .venv
BIN := $(VENV)/bin
EXAMPLE ?= examples/lenet_int8.tflite
TARGET ?= NUCLEO-L4R5ZI

.PHONY: setup run test bench clean

setup:
	@scripts/setup.sh

run: setup
	$(BIN)/costmodel analyze $(EXAMPLE) --target $(TARGET)
	@mkdir -p out
	$(BIN)/measure-agent measure $(EXAMPLE) --target $(TARGET) --save out/$(notdir $(basename $(EXAMPLE)))-$(TARGET).measure.json

test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# build products live under the one cache root (measure_agent/firmware_build/cache.py); only its known folders go
CACHE_ROOT := $(or $(MCU_NAS_CACHE),$(HOME)/.cache/mcu-nas)
clean:
	rm -rf build .cache out *.egg-info
	rm -rf $(addprefix $(CACHE_ROOT)/,firmware host-shell host-runtime test-models test-programs)
