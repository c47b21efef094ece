# Cross-compiling for 64-bit ARM Linux (Raspberry Pi 4/5, Jetson, i.MX 8) with Debian's
# g++-aarch64-linux-gnu. Used by `make wheel-arm` / `make test-arm` (scripts/arm.sh), which
# also pass the aarch64 CPython headers (Python_INCLUDE_DIR, Python_SOABI): the host's Python
# describes the wrong machine.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Libraries and headers come from the cross toolchain's own tree, never from the host's /usr;
# programs (cmake helpers, the host Python that pybind11 asks for its version) from the host.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
