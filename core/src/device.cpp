// tapeflow::cuda: the public face of kernels/cuda's device queries.
#include "tapeflow/device.hpp"

#include "internal.hpp"

namespace tapeflow::cuda {

#if defined(TAPEFLOW_HAVE_CUDA)
int device_count() { return kernels::cuda::device_count(); }
std::string status() { return kernels::cuda::device_status(); }
void synchronize(Device device) {
  detail::use_device(device, "synchronize");
  try {
    kernels::cuda::synchronize();
  } catch (const kernels::cuda::CudaError&) {
    detail::rethrow_device_error("synchronize");
  }
}
std::uint64_t host_waits() { return kernels::cuda::host_waits(); }
void set_allow_tf32(bool allow) { kernels::cuda::set_allow_tf32(allow); }
bool allow_tf32() { return kernels::cuda::allow_tf32(); }
#else
int device_count() { return 0; }
std::string status() { return "no CUDA device: this build has no CUDA, TAPEFLOW_CUDA=OFF"; }
void synchronize(Device device) { detail::use_device(device, "synchronize"); }
std::uint64_t host_waits() { return 0; }
void set_allow_tf32(bool) {}
bool allow_tf32() { return false; }
#endif

}  // namespace tapeflow::cuda
