#pragma once
/// Element types and devices.
#include <cstddef>
#include <cstdint>
#include <string>

namespace tapeflow {

/// Element type. The order is the promotion order: bool < int32 < int64 < float32 < float64.
enum class DType : std::uint8_t { Bool, Int32, Int64, Float32, Float64 };

inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kInt32 = DType::Int32;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kBool = DType::Bool;

/// Size of one element in bytes.
std::size_t itemsize(DType dtype);
/// "float32", "int64", ...
const char* dtype_name(DType dtype);
inline bool is_floating(DType d) { return d == DType::Float32 || d == DType::Float64; }
inline bool is_integral(DType d) { return d == DType::Int32 || d == DType::Int64; }
/// PyTorch's promotion of two tensor dtypes: the wider category wins, then the wider type
/// (int32 or int64 with float32 gives float32; NumPy gives float64).
inline DType promote(DType a, DType b) { return a < b ? b : a; }

/// The C++ type of each dtype, and back.
template <class T> struct dtype_of;
template <> struct dtype_of<bool> { static constexpr DType value = DType::Bool; };
template <> struct dtype_of<std::int32_t> { static constexpr DType value = DType::Int32; };
template <> struct dtype_of<std::int64_t> { static constexpr DType value = DType::Int64; };
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <class T> inline constexpr DType dtype_v = dtype_of<T>::value;

/// Where a tensor's memory lives.
struct Device {
  enum class Kind : std::uint8_t { CPU, CUDA };
  Kind kind = Kind::CPU;
  int index = 0;
  static Device cpu() { return {Kind::CPU, 0}; }
  static Device cuda(int i = 0) { return {Kind::CUDA, i}; }
  bool is_cpu() const { return kind == Kind::CPU; }
  bool is_cuda() const { return kind == Kind::CUDA; }
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  /// "cpu" or "cuda:0".
  std::string str() const;
};

}  // namespace tapeflow
