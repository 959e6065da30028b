#pragma once
/// Everything of the tensor core.
#include "tapeflow/allocator.hpp"
#include "tapeflow/data.hpp"
#include "tapeflow/dtype.hpp"
#include "tapeflow/error.hpp"
#include "tapeflow/format.hpp"
#include "tapeflow/generator.hpp"
#include "tapeflow/io.hpp"
#include "tapeflow/observer.hpp"
#include "tapeflow/ops.hpp"
#include "tapeflow/safetensors.hpp"
#include "tapeflow/shape.hpp"
#include "tapeflow/tensor.hpp"
