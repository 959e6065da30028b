#pragma once
// A fresh folder under the system's temp directory for tests that write files, removed with
// everything in it when the TempDir goes out of scope (even when a REQUIRE fails).
#include <chrono>
#include <filesystem>
#include <string>
#include <system_error>

class TempDir {
 public:
  // prefix names the test that made it: /tmp/<prefix>_<clock ticks>
  explicit TempDir(const std::string& prefix) {
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = std::filesystem::temp_directory_path() / (prefix + "_" + std::to_string(stamp));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};
