// Self-test of the CUDA emulator's primitives (emu_selftest.cpp).
#pragma once

#include <map>
#include <string>

/// Runs kernels using warp shuffles, votes, grid.sync() and faulty barriers; returns what
/// each produced (numbers, or the CUDA error text) for the test to check.
std::map<std::string, std::string> emu_selftest();
