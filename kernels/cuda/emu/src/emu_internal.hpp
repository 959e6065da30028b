#pragma once
// Private to kernels/cuda/emu: what the CUDA runtime half (runtime.cpp) offers the cuBLAS
// half (cublas.cpp).
#include <cuda_runtime_api.h>

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <string>

namespace tapeflow_emu {

// Writes "tapeflow CUDA emulator: <message>" to stderr.
void report(const std::string& message);
// The calling thread's current device.
int current_device();
// The device whose live allocation holds [p, p + bytes) (bytes 0: p may be its end), or -1.
int device_of(const void* p, std::size_t bytes);
// Queues work on a stream (nullptr: the current device's default stream). `touched` lists
// the device pointers the work uses: their allocations are opened to the host while it runs
// (device memory is closed to the host otherwise). Returns cudaErrorInvalidResourceHandle
// for an unknown stream.
cudaError_t enqueue(cudaStream_t stream, std::function<void()> work, std::initializer_list<const void*> touched);
// Runs queued work; with TAPEFLOW_CUDA_EMU_PROFILE=1 its host time counts for `name` in the
// profile printed at exit (`threads`: CUDA threads, 0 for a library call).
void profiled(const char* name, unsigned long long threads, const std::function<void()>& work);
// Makes a failure found while running queued work sticky, as a fault on a GPU is.
void set_sticky(cudaError_t err);

}  // namespace tapeflow_emu
