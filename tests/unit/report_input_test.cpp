// `hrbench report` takes results files and lab documents: read_input tells them apart.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/error.hpp"
#include "core/file.hpp"
#include "report/report.hpp"

using namespace hrb;

namespace {

class ReportInput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("hrb-report-input-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string file(const std::string& name, const std::string& text) {
    auto p = (dir_ / name).string();
    write_text_file(p, text);
    return p;
  }
  std::filesystem::path dir_;
};

}  // namespace

TEST_F(ReportInput, LabDocumentIsTakenAsItIs) {
  auto p = file("lab.json", R"({"schema": "hostroute-bench/lab", "verdicts": []})");
  auto in = report::read_input(p);
  ASSERT_TRUE(std::holds_alternative<results::LabDocument>(in));
  EXPECT_TRUE(std::get<results::LabDocument>(in).verdicts.empty());
}

TEST_F(ReportInput, ResultsFileIsReadAndChecked) {
  const std::string run = std::string(HRB_SOURCE_DIR) + "/tests/fixtures/gate/run.json";
  auto runs = report::read_inputs({run, run});
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].first, run);
  EXPECT_TRUE(std::holds_alternative<results::Run>(runs[0].second));
}

TEST_F(ReportInput, AnythingElseIsABadResultsFileNamed) {
  for (const std::string text : {R"({"schema": "something/else"})", "not json"}) {
    auto p = file("other.json", text);
    try {
      report::read_input(p);
      FAIL() << "accepted " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kBadInput);
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
}
