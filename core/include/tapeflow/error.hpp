#pragma once
/// Errors: every exception the library throws derives from tapeflow::Error.
#include <stdexcept>
#include <string>

namespace tapeflow {

/// Base of every tapeflow exception.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Shapes that do not fit together (broadcasting, matmul, reshape, ...).
class ShapeError : public Error { using Error::Error; };
/// A dtype an op does not accept.
class DTypeError : public Error { using Error::Error; };
/// Tensors on different devices, or a device that is not available.
class DeviceError : public Error { using Error::Error; };
/// An index out of range.
class IndexError : public Error { using Error::Error; };
/// A bad argument value (negative size, empty list, ...).
class ValueError : public Error { using Error::Error; };
/// A file that cannot be read or written, or whose content is wrong.
class IOError : public Error { using Error::Error; };

}  // namespace tapeflow
