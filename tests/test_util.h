// Shared test helpers: where the reference fixtures are, temporary files, reading fixture data.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace g4::test {

// G4_FIXTURES_DIR, or ../shared/fixtures next to the repository.
inline std::filesystem::path fixtures_dir() {
  const char* env = std::getenv("G4_FIXTURES_DIR");
  return env && *env ? std::filesystem::path(env) : std::filesystem::path(G4_DEFAULT_FIXTURES_DIR);
}

inline bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

// Skips the current test visibly when fixtures are missing; under CI=true that is a failure.
#define G4_REQUIRE_FIXTURE(relative_path)                                                    \
  do {                                                                                       \
    const std::filesystem::path g4_fixture_path_ = ::g4::test::fixtures_dir() / (relative_path); \
    if (!std::filesystem::exists(g4_fixture_path_)) {                                        \
      if (::g4::test::running_in_ci())                                                       \
        FAIL() << "fixture missing under CI=true: " << g4_fixture_path_;                     \
      GTEST_SKIP() << "fixture not found: " << g4_fixture_path_                              \
                   << " (set G4_FIXTURES_DIR to run this test)";                             \
    }                                                                                        \
  } while (0)

inline std::vector<uint8_t> read_file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_file_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// A fresh directory under the system temp dir, removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "g4test";
    if (info) name += std::string("-") + info->test_suite_name() + "-" + info->name();
    for (char& c : name)
      if (c == '/') c = '_';
    path_ = std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::filesystem::path operator/(const std::string& file) const { return path_ / file; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace g4::test
