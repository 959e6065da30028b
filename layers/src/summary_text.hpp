#pragma once
// What Model::summary() and Functional::summary() share (private to the layers library).
#include <cstdint>
#include <string>
#include <vector>

#include "tapeflow/model.hpp"

namespace tapeflow::detail {

/// 401920 -> "401,920", as Keras writes its parameter counts.
std::string with_commas(std::int64_t n);
/// The lines under summary()'s table: "Total params: 163 (652.00 B)", then the trainable and
/// the non-trainable parameters.
std::vector<std::string> param_totals(const Model& model);

}  // namespace tapeflow::detail
