#pragma once
/// Everything of the tensor core and the tape.
#include "tapeflow/core.hpp"
#include "tapeflow/gradcheck.hpp"
#include "tapeflow/gradient_tape.hpp"
#include "tapeflow/variable.hpp"
