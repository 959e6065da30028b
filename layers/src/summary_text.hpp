#pragma once
// What Model::summary() and Functional::summary() share (private to the layers library).
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "tapeflow/model.hpp"

namespace tapeflow::detail {

/// 401920 -> "401,920", as Keras writes its parameter counts.
std::string with_commas(std::int64_t n);
/// The lines under summary()'s table: "Total params: 163 (652.00 B)", then the trainable and
/// the non-trainable parameters.
std::vector<std::string> param_totals(const Model& model);
/// rich's table in ASCII, as Keras 3 prints summary() to a stream that is not a terminal:
/// `cells` are the columns' widths with their padding (one space either side), rows[0] the
/// header, `right` the right-aligned columns; long cells wrap at spaces as rich wraps them.
void print_ascii_table(std::ostream& os, const std::vector<std::size_t>& cells, const std::vector<bool>& right,
                       const std::vector<std::vector<std::string>>& rows);

}  // namespace tapeflow::detail
