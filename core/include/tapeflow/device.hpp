#pragma once
/// CUDA devices: availability, synchronisation and math modes. Everything here works in every
/// build: without CUDA (TAPEFLOW_CUDA=OFF, or no usable driver or GPU) device_count() is 0.
#include <cstdint>
#include <string>

#include "tapeflow/dtype.hpp"

namespace tapeflow::cuda {

/// Usable CUDA devices; 0 when the build has no CUDA or the runtime reports any error.
int device_count();
/// device_count() > 0.
inline bool is_available() { return device_count() > 0; }
/// One line for logs: the device's name, compute capability, memory, runtime and driver
/// versions, or why there is none ("no CUDA device: CUDA driver version is insufficient ...").
std::string status();
/// Waits for all work queued on `device` (ops on CUDA tensors are asynchronous; reading
/// values on the host already waits). Throws DeviceError.
void synchronize(Device device = Device::cuda(0));
/// How many times this process has waited for a CUDA device (0 without one): reading values on
/// the host (item, to_vector, to(Device::cpu()), an op that checks indices there),
/// synchronize(), copies between devices, and copies from the host over 4 MiB (smaller ones are
/// staged and do not wait). Compare two readings to see what a loop waits for: fit() on a
/// CUDA device waits once per pass for its metrics, not after every batch.
std::uint64_t host_waits();
/// float32 matmul in TF32 tensor-core mode (off by default: exact float32 products, as
/// PyTorch's torch.backends.cuda.matmul.allow_tf32 = False).
void set_allow_tf32(bool allow);
bool allow_tf32();

}  // namespace tapeflow::cuda
