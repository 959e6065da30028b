#pragma once
// The one door to stb_image (compiled in stb_image.cpp alone, its functions static there).
#include <cstdint>
#include <string>
#include <vector>

namespace tapeflow::detail {

/// A decoded image: height * width pixels, row-major, 4 bytes each (RGBA; alpha 255 where the
/// file has none, grey copied into R, G and B).
struct DecodedImage {
  std::int64_t height = 0, width = 0;
  std::vector<std::uint8_t> rgba;
};

/// Decodes a JPEG, PNG, BMP or GIF (its first frame) held in `bytes`. False with stb's reason
/// in `error` when it cannot.
bool decode_image(const std::string& bytes, DecodedImage& out, std::string& error);

}  // namespace tapeflow::detail
