// gemma4 bench on a small random model: what it reports, in text and JSON, and its errors. Speeds
// are only checked to be positive (never assert wall-clock time in tests).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "test_util.h"

namespace g4 {
namespace {

class BenchCliTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    model_ = (*dir_ / "tiny.gguf").string();
    const test::CliResult r = test::run_cli("init-random --preset tiny --type q4_0 -o " + model_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static test::TempDir* dir_;
  static std::string model_;
};
test::TempDir* BenchCliTest::dir_ = nullptr;
std::string BenchCliTest::model_;

TEST_F(BenchCliTest, JsonReportsBothTestsPerRepetitionAtDepth) {
  const test::CliResult r =
      test::run_cli("bench -m " + model_ + " -p 12 -n 5 -r 3 -t 2 -b 8 --ctx-depth 20 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["model_bytes"].get<double>(), 0);
  EXPECT_GT(j["parameters"].get<double>(), 0);
  EXPECT_EQ(j["threads"], 2);
  EXPECT_EQ(j["ctx_depth"], 20);
  EXPECT_EQ(j["matmul"], "fast");
  for (const char* test : {"prefill", "decode"}) {
    ASSERT_TRUE(j.contains(test)) << test;
    EXPECT_EQ(j[test]["samples"].size(), 3u) << test;
    EXPECT_GT(j[test]["tokens_per_s"].get<double>(), 0) << test;
    EXPECT_GE(j[test]["tokens_per_s_sd"].get<double>(), 0) << test;
  }
  EXPECT_EQ(j["prefill"]["n_tokens"], 12);
  EXPECT_EQ(j["decode"]["n_tokens"], 5);
  EXPECT_FALSE(j.contains("membw_bytes_per_s"));
}

TEST_F(BenchCliTest, TextTableAndBandwidthRoof) {
  const test::CliResult r =
      test::run_cli("bench -m " + model_ + " -p 4 -n 3 -r 1 -t 1 --precise --membw");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| pp4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| tg3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("precise"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("memory read bandwidth"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("% of it"), std::string::npos) << r.out;

  const test::CliResult js =
      test::run_cli("bench -m " + model_ + " -p 0 -n 2 -r 2 -t 1 --membw --json");
  ASSERT_EQ(js.exit_code, 0) << js.err;
  const nlohmann::json j = nlohmann::json::parse(js.out);
  EXPECT_GT(j["membw_bytes_per_s"].get<double>(), 1e8);  // any machine reads 100 MB/s
  EXPECT_GE(j["membw_bytes_per_s_sd"].get<double>(), 0);
  EXPECT_GT(j["decode_roof_fraction"].get<double>(), 0);
  EXPECT_GE(j["decode_roof_fraction_sd"].get<double>(), 0);
  // Each repetition's bandwidth is bytes / seconds over its passes: never above the fastest pass,
  // so its roof fraction is never below the fraction of the fastest pass's roof.
  EXPECT_GE(j["membw_peak_bytes_per_s"].get<double>(), j["membw_bytes_per_s"].get<double>());
  EXPECT_GT(j["decode_peak_roof_fraction"].get<double>(), 0);
  EXPECT_LE(j["decode_peak_roof_fraction"].get<double>(), j["decode_roof_fraction"].get<double>());

  // One repetition: the fraction is decode speed over bandwidth / model bytes, as stated.
  const test::CliResult one =
      test::run_cli("bench -m " + model_ + " -p 0 -n 2 -r 1 -t 1 --membw --json");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const nlohmann::json o = nlohmann::json::parse(one.out);
  const double roof_tps = o["membw_bytes_per_s"].get<double>() / o["model_bytes"].get<double>();
  EXPECT_NEAR(o["decode_roof_tokens_per_s"].get<double>(), roof_tps, 1e-9 * roof_tps);
  EXPECT_NEAR(o["decode_roof_fraction"].get<double>(),
              o["decode"]["tokens_per_s"].get<double>() / roof_tps, 1e-9);
}

TEST_F(BenchCliTest, SkippingATestAndBadArguments) {
  const test::CliResult only_decode =
      test::run_cli("bench -m " + model_ + " -p 0 -n 2 -r 1 --json");
  ASSERT_EQ(only_decode.exit_code, 0) << only_decode.err;
  const nlohmann::json j = nlohmann::json::parse(only_decode.out);
  EXPECT_FALSE(j.contains("prefill"));
  EXPECT_TRUE(j.contains("decode"));

  EXPECT_NE(test::run_cli("bench -m " + model_ + " -p -3").exit_code, 0);
  EXPECT_NE(test::run_cli("bench -m " + model_ + " -r 0").exit_code, 0);
  const test::CliResult missing = test::run_cli("bench -m " + (*dir_ / "missing.gguf").string());
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("missing.gguf"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace g4
