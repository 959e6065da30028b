#pragma once
/// fmt support: fmt::format("{}", tensor) prints as operator<< does.
#include <fmt/ostream.h>

#include "tapeflow/tensor.hpp"

template <>
struct fmt::formatter<tapeflow::Tensor> : fmt::ostream_formatter {};
