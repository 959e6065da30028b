// stb_image's implementation, compiled here only (STB_IMAGE_STATIC: nothing of it is exported
// from the library), JPEG, PNG, BMP and GIF only, from memory only (we read the files).
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
// The include folder is a SYSTEM one, but GCC still reports warnings of stb code inlined into
// ours (a "may be used uninitialized" false positive in stbi__refill_buffer)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <stb_image.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <climits>
#include <memory>

#include "image_decode.hpp"

namespace tapeflow::detail {

bool decode_image(const std::string& bytes, DecodedImage& out, std::string& error) {
  if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
    error = "file too large";
    return false;
  }
  int w = 0, h = 0, channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w, &h,
                            &channels, 4),
      stbi_image_free);
  if (!pixels) {
    const char* reason = stbi_failure_reason();
    error = reason ? reason : "unknown error";
    return false;
  }
  out.height = h;
  out.width = w;
  out.rgba.assign(pixels.get(), pixels.get() + static_cast<std::size_t>(w) * static_cast<std::size_t>(h) * 4);
  return true;
}

}  // namespace tapeflow::detail
