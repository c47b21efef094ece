// The doctest runner of the kernel tests; the tests themselves are in test_kernels.cpp.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
