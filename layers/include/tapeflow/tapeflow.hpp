#pragma once
/// All of tapeflow: tensors, the tape, optimizers, layers, losses, metrics, callbacks, models and
/// text preprocessing.
#include "tapeflow/attention.hpp"
#include "tapeflow/autodiff.hpp"
#include "tapeflow/callbacks.hpp"
#include "tapeflow/data.hpp"
#include "tapeflow/dataset.hpp"
#include "tapeflow/functional.hpp"
#include "tapeflow/image.hpp"
#include "tapeflow/layers.hpp"
#include "tapeflow/losses.hpp"
#include "tapeflow/metrics.hpp"
#include "tapeflow/model.hpp"
#include "tapeflow/optimizers.hpp"
#include "tapeflow/safetensors.hpp"
#include "tapeflow/text.hpp"
