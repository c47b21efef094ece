#!/usr/bin/env bash
# aarch64 without a board: cross-build edge for 64-bit ARM and run its tests under qemu-user.
#
#   scripts/arm.sh wheel                 the aarch64 wheel, into dist-arm/, checked by
#                                        installing and importing it under qemu
#   scripts/arm.sh test [ISA ...]        the wheel, an aarch64 CPython with the test
#                                        dependencies, then the kernel and model tests once per
#                                        ISA ("default" = EDGE_ISA unset)
#
# Everything it downloads is cached under build/arm/, so a second run only rebuilds what changed
# and runs the tests. Timings under emulation say nothing about a real ARM CPU: this is for
# correctness only. Host tools (cross compiler, qemu-user) come from the Makefile's `apt` step.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARM=$ROOT/build/arm
SYSROOT=$ARM/sysroot        # Debian's arm64 CPython and the libraries it loads, unpacked
SITE=$ARM/site              # aarch64 wheels from PyPI + the edge wheel: the emulated site-packages
DIST=$ROOT/dist-arm         # the wheel a user copies to the board
PY=$ROOT/.venv/bin/python   # the host venv of `make install`: scikit-build-core, pybind11, pip
PYVER=3.11                  # Debian bookworm's Python, the one Raspberry Pi OS ships too
TRIPLET=aarch64-linux-gnu

# Debian arm64 packages that make a working CPython 3.11 (bookworm has no arm64 libmpdec3:
# `decimal` falls back to the pure-Python _pydecimal, nothing else is missing), plus
# libpython3.11-dev for the headers the extension is compiled against.
DEBS=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libpython3.11-dev
    libc6 libexpat1 zlib1g libffi8 libssl3 libbz2-1.0 liblzma5 libsqlite3-0 libstdc++6
    libgcc-s1 libuuid1 libncursesw6 libtinfo6 libreadline8 libdb5.3 libgdbm6 libcrypt1 libnsl2
    libtirpc3)

# What the tests import on the board; pip resolves their pure-Python dependencies. The edge
# wheel brings its own runtime dependencies (numpy, onnxruntime, opencv-python-headless, ...).
# scikit-image supplies the real photos of the parity and EfficientNet tests.
TEST_DEPS=(pytest hypothesis scikit-image)

# Every manylinux tag up to glibc 2.36, the sysroot's (pip does not infer the older ones from
# the newest), and plain linux_aarch64 for the cross-built edge wheel, not a manylinux build.
PLATFORMS=(--platform manylinux2014_aarch64 --platform linux_aarch64)
for glibc in $(seq 17 36); do
    PLATFORMS+=(--platform "manylinux_2_${glibc}_aarch64")
done

log() { printf '\n== %s\n' "$*" >&2; }

# ------------------------------------------------------------------------------ sysroot

sysroot() {
    if [[ -x $SYSROOT/usr/bin/python$PYVER && -f $SYSROOT/.complete ]]; then
        return
    fi
    # apt-get download needs the arm64 package lists; adding the architecture changes nothing
    # that is installed on the host.
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        log "adding the arm64 architecture to apt (for its package lists only)"
        dpkg --add-architecture arm64
        apt-get update -qq
    fi
    log "downloading Debian's arm64 CPython $PYVER into build/arm/debs"
    mkdir -p "$ARM/debs"
    # (As root, apt would warn that its unprivileged _apt user cannot write here.)
    (cd "$ARM/debs" && apt-get download -qq -o APT::Sandbox::User=root "${DEBS[@]/%/:arm64}")
    # dpkg -x unpacks without installing: one tree that qemu-aarch64 -L uses as the target's /.
    rm -rf "$SYSROOT"
    mkdir -p "$SYSROOT"
    for deb in "$ARM"/debs/*_arm64.deb; do
        dpkg -x "$deb" "$SYSROOT"
    done
    touch "$SYSROOT/.complete"
}

# qemu-user 7.2 passes the host's /proc/cpuinfo through: the emulated programs would read an
# x86 CPU with avx2. onnxruntime 1.28 and newer crash at import on it (NULL dereference after
# parsing it), and edge's tests would expect the avx2 variant. qemu -L serves a file from the
# sysroot when it exists there, so the sysroot gets the /proc/cpuinfo of a 2-core Cortex-A76
# (Raspberry Pi 5). Its features are a subset of `-cpu max`'s; the code picks variants from
# getauxval(AT_HWCAP), which qemu answers for the emulated CPU.
cpuinfo() {
    mkdir -p "$SYSROOT/proc"
    local cpu
    for cpu in 0 1; do
        cat <<EOF
processor	: $cpu
BogoMIPS	: 108.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x4
CPU part	: 0xd0b
CPU revision	: 1

EOF
    done >"$SYSROOT/proc/cpuinfo"
}

# The emulated interpreter as a host program. Tests start subprocesses with sys.executable, and
# the host kernel cannot exec an aarch64 ELF (no binfmt_misc here), so sys.executable must be
# this wrapper: qemu's -0 sets the guest's argv[0], from which Python takes sys.executable.
# PYTHONHOME pins the standard library to the sysroot's whatever argv[0] says.
PYARM=$ARM/bin/python
wrapper() {
    mkdir -p "$ARM/bin"
    cat >"$PYARM" <<EOF
#!/bin/sh
# aarch64 CPython $PYVER under qemu-user (written by scripts/arm.sh).
export PYTHONHOME="$SYSROOT/usr" PYTHONPATH="$SITE"
exec qemu-aarch64 -cpu max -L "$SYSROOT" -0 "\$0" "$SYSROOT/usr/bin/python$PYVER" "\$@"
EOF
    chmod +x "$PYARM"
}

# ------------------------------------------------------------------------------ wheel

wheel() {
    sysroot
    log "cross-compiling the aarch64 wheel with $TRIPLET-g++"
    rm -rf "$DIST"
    # The venv's scikit-build-core and pybind11 (no isolated build: nothing to download), the
    # toolchain file for the compiler, and the aarch64 CPython's headers and extension suffix
    # instead of the host's (python-hints off: they describe the host interpreter; pybind11's
    # cross-compiling mode: it must not ask the host interpreter for the extension suffix).
    # _PYTHON_HOST_PLATFORM tags the wheel linux_aarch64; SETUPTOOLS_EXT_SUFFIX names the
    # module _core.cpython-311-aarch64-linux-gnu.so. Debian's pyconfig.h only includes
    # <aarch64-linux-gnu/python3.11/pyconfig.h>, hence the sysroot's usr/include (which holds
    # nothing but Python's headers: no -dev package but libpython's is unpacked).
    _PYTHON_HOST_PLATFORM=linux-aarch64 \
        SETUPTOOLS_EXT_SUFFIX=.cpython-${PYVER/./}-$TRIPLET.so \
        "$PY" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$DIST" \
        -Cbuild-dir="$ARM/wheel-build" \
        -Ccmake.python-hints=false \
        -Ccmake.define.PYBIND11_USE_CROSSCOMPILING=ON \
        -Ccmake.define.CMAKE_TOOLCHAIN_FILE="$ROOT/cmake/$TRIPLET.cmake" \
        -Ccmake.define.Python_INCLUDE_DIR="$SYSROOT/usr/include/python$PYVER" \
        -Ccmake.define.Python_SOABI="cpython-${PYVER/./}-$TRIPLET" \
        -Ccmake.define.CMAKE_CXX_FLAGS="-isystem $SYSROOT/usr/include" \
        "$ROOT"
    local whl
    whl=$(ls "$DIST"/edge-*.whl)
    # The check a user would do: the extension inside is an aarch64 ELF.
    unzip -l "$whl" | grep '_core'
    unzip -o -q -d "$ARM/wheel-check" "$whl" 'edge/_core*.so'
    file "$ARM"/wheel-check/edge/_core*.so | tee /dev/stderr | grep -q 'ARM aarch64' \
        || { echo "the wheel's extension is not an aarch64 ELF" >&2; exit 1; }
    echo "$whl"
}

# ------------------------------------------------------------------------------ site

# The edge wheel and the test dependencies, as aarch64 wheels, into SITE. pip resolves for the
# target (--platform/--python-version, binary wheels only) and installs without running any of
# it. SITE is the cache: the dependencies are downloaded again only when what decides them
# changes (the stamp: the list here and pyproject.toml); the edge wheel is installed every time.
site() {
    local whl=$1 want stamp=$SITE/.installed
    want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1) ${TEST_DEPS[*]} ${PLATFORMS[*]}"
    local pip=("$PY" -m pip install --quiet --upgrade --target "$SITE" "${PLATFORMS[@]}"
        --python-version "$PYVER" --implementation cp --only-binary=:all:)
    if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
        "${pip[@]}" --no-deps "$whl"
        return
    fi
    log "installing aarch64 wheels into build/arm/site"
    # From empty: pip --target --upgrade leaves the metadata of replaced versions behind.
    rm -rf "$SITE"
    "${pip[@]}" "$whl" "${TEST_DEPS[@]}"
    echo "$want" >"$stamp"
}

# ------------------------------------------------------------------------------ test

# The C++ kernels against their OpenCV/NumPy references, their error paths, the score kernels,
# and both bundled models end to end on ONNX Runtime (TFLite: see the README).
# ARM_TESTS (space-separated) picks fewer, for a quick look at the kernels alone.
read -r -a TESTS <<<"${ARM_TESTS:-tests/test_preprocess.py tests/test_preprocess_errors.py \
tests/test_scores.py tests/test_kernel_variants.py tests/test_core_limits.py tests/test_models.py}"
MODEL_FILTER=onnx

run_tests() {
    local isa=$1 env=()
    [[ $isa != default ]] && env=(EDGE_ISA="$isa")
    log "tests under qemu-aarch64 -cpu max, EDGE_ISA=${isa/default/(unset)}"
    # From a directory outside the tree, as `make wheel-check` does, so that the tree's edge/
    # (which has no aarch64 core) cannot shadow the installed wheel.
    local here
    here=$(mktemp -d)
    (
        cd "$here"
        env "${env[@]}" "$PYARM" -c 'import platform, edge
print(f"platform.machine()={platform.machine()} edge.active_isa()={edge.active_isa()}")'
        env "${env[@]}" EDGE_TEST_INSTALLED=1 "$PYARM" -m pytest -q -p no:cacheprovider \
            -c "$ROOT/pyproject.toml" --rootdir "$ROOT" \
            "${TESTS[@]/#/$ROOT/}" -k "not test_models or $MODEL_FILTER"
    )
}

# The wheel installed in the emulated site-packages, with the emulated CPU set up.
emulated() {
    local whl
    whl=$(wheel | tail -n1)
    site "$whl"
    cpuinfo
    wrapper
}

# `make wheel-arm`: the wheel, and the check that it installs and imports on aarch64.
wheel_checked() {
    emulated
    (cd "$(mktemp -d)" && "$PYARM" -c 'import platform, edge
print(f"{edge.__file__} imports on {platform.machine()}, active_isa()={edge.active_isa()}")')
    log "the wheel for the board: $(ls "$DIST"/edge-*.whl)"
}

# The C++ kernel tests (cpp/tests/), cross-built and run under qemu: every variant the emulated
# CPU can run (-cpu max has dotprod) against the scalar reference. doctest is header-only, so
# the host's copy serves the cross build too.
cxx_tests() {
    log "C++ kernel tests under qemu-aarch64 -cpu max"
    local build=$ARM/ctest cmake=$ROOT/.venv/bin/cmake
    "$cmake" -S "$ROOT" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/$TRIPLET.cmake" \
        -DEDGE_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=Release -DDOCTEST_INCLUDE_DIR=/usr/include \
        "-DCMAKE_CROSSCOMPILING_EMULATOR=qemu-aarch64;-cpu;max;-L;/usr/$TRIPLET" >/dev/null
    "$cmake" --build "$build" --target kernel_tests -j2
    (cd "$build" && "$ROOT/.venv/bin/ctest" --output-on-failure)
}

test_all() {
    local isas=("$@") status=0 failed=()
    [[ ${#isas[@]} -gt 0 ]] || isas=(default)
    cxx_tests || { status=1; failed+=("C++ tests"); }
    emulated
    for isa in "${isas[@]}"; do
        # Every ISA runs even if one fails: the summary names the ones that failed.
        run_tests "$isa" || { status=1; failed+=("$isa"); }
    done
    if ((status)); then
        log "FAILED under qemu for EDGE_ISA: ${failed[*]}"
    else
        log "passed under qemu for EDGE_ISA: ${isas[*]}"
    fi
    return $status
}

case ${1:-} in
wheel) wheel_checked ;;
test) shift && test_all "$@" ;;
*)
    echo "usage: $0 wheel | test [ISA ...]" >&2
    exit 2
    ;;
esac
