// The results document's types (results/document.hpp): the files on disk load, re-serialize
// byte for byte as before, and from_json(to_json(x)) == x; bad files are refused naming the field.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "core/file.hpp"
#include "results/results.hpp"

using namespace hrb;

namespace {

std::string fixture(const std::string& rel) { return std::string(HRB_SOURCE_DIR) + "/" + rel; }

const char* kGoodFixtures[] = {
    "tests/fixtures/gate/run.json", "tests/fixtures/results/real-run-2026-11-27.json",
    "tests/fixtures/results/shard-1-of-2.json", "tests/fixtures/results/shard-2-of-2.json"};

// What read_results returned before the types, as JSON: the parsed file with the objects its
// readers index made present (topology, environment, environment.tools, config).
nlohmann::json as_read_before(const std::string& path) {
  auto j = nlohmann::json::parse(std::ifstream(path));
  for (const char* k : {"topology", "environment", "config"})
    if (!j.contains(k) || j[k].is_null()) j[k] = nlohmann::json::object();
  if (!j["environment"].contains("tools")) j["environment"]["tools"] = nlohmann::json::object();
  return j;
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("hrb-results-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

}  // namespace

TEST(ResultsDocument, FixturesReserializeAsBefore) {
  for (const char* rel : kGoodFixtures) {
    const auto run = results::read_results(fixture(rel));
    EXPECT_EQ(results::to_json(run).dump(1), as_read_before(fixture(rel)).dump(1)) << rel;
  }
}

TEST(ResultsDocument, RoundTripOfTheFixtures) {
  for (const char* rel : kGoodFixtures) {
    const auto run = results::read_results(fixture(rel));
    EXPECT_EQ(results::from_json(results::to_json(run), rel), run) << rel;
  }
}

TEST_F(TempDir, ARealRunIsWrittenBackByteForByte) {
  // The file hrbench wrote (write_json: dump(1), then a newline the committed copy lacks), read
  // and written again. (EXPECT_TRUE: a failure would print 100 kB twice.)
  const std::string src = fixture("tests/fixtures/results/real-run-2026-11-27.json");
  auto text = read_text_file(src, "fixture");
  if (text.ends_with('\n')) text.pop_back();
  ASSERT_TRUE(text == nlohmann::json::parse(text).dump(1)) << "not as write_json writes";
  results::write_results(path("again.json"), results::read_results(src));
  EXPECT_TRUE(read_text_file(path("again.json"), "copy") == text + "\n");
}

TEST(ResultsDocument, TheFieldsAreTyped) {
  const auto run =
      results::read_results(fixture("tests/fixtures/results/real-run-2026-11-27.json"));
  EXPECT_EQ(run.config.repetitions, 9);
  EXPECT_EQ(run.config.duration_seconds, 1.0);
  ASSERT_TRUE(run.config.pinned_cpus);
  EXPECT_EQ(*run.config.pinned_cpus, (std::array<int, 2>{0, 0}));
  ASSERT_TRUE(run.config.scan_field);  // "scan": null
  EXPECT_FALSE(*run.config.scan_field);
  EXPECT_EQ(run.config.scan(), nullptr);
  EXPECT_EQ(run.environment.cpus, 2);
  EXPECT_EQ(run.environment.tools.libbpf, "1.1");
  ASSERT_EQ(run.trials.size(), 81u);
  const auto& t = run.trials[0];
  EXPECT_EQ(t.mode, "none");
  EXPECT_EQ(t.scenario, "node-node");
  EXPECT_EQ(t.order, 1);
  EXPECT_TRUE(t.is_valid());
  EXPECT_EQ(results::metric_value(t, *results::find_metric("transactionsPerSecond")), 181874.0);
  EXPECT_TRUE(run.other.empty());
}

TEST(ResultsDocument, UnknownKeysAndAbsentFieldsSurvive) {
  nlohmann::json j{{"schema", "hostroute-bench/results"},
                   {"schemaVersion", 1},
                   {"later", {{"field", 1}}},
                   {"config", {{"scan", {{"param", "flows"}, {"values", {1, 2}}, {"x", true}}}}},
                   {"trials",
                    {{{"mode", "ebpf@/other/build"},
                      {"scenario", "pod-pod-cross-node"},
                      {"workload", "tcp_rr"},
                      {"scan", {{"param", "flows"}, {"value", 2}}},
                      {"note", "kept"}}}}};
  const auto run = results::from_json(j, "t.json");
  EXPECT_EQ(run.other["later"]["field"], 1);
  ASSERT_NE(run.config.scan(), nullptr);
  EXPECT_EQ(run.config.scan()->values, (std::vector<int>{1, 2}));
  EXPECT_EQ(run.trials[0].mode, "ebpf@/other/build") << "mode names are plain strings";
  EXPECT_FALSE(run.trials[0].repetition);
  EXPECT_EQ(run.trials[0].scan->value, 2);
  auto back = results::to_json(run);
  j["topology"] = j["environment"] = nlohmann::json::object();
  j["environment"]["tools"] = nlohmann::json::object();
  EXPECT_EQ(back, j);
}

TEST(ResultsDocument, BadFilesAreRefusedNamingTheField) {
  for (const auto& [rel, what] :
       {std::pair{"tests/fixtures/results/bad-workload-not-a-string.json", "trials[0].workload"},
        {"tests/fixtures/results/bad-number-overflow.json", "not JSON"}}) {
    try {
      results::read_results(fixture(rel));
      FAIL() << rel;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kBadInput);
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  }
  auto refused = [](const nlohmann::json& j, const std::string& what) {
    try {
      results::from_json(j, "x.json");
      ADD_FAILURE() << j.dump();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kBadInput);
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  const nlohmann::json base{{"schema", "hostroute-bench/results"},
                            {"schemaVersion", 1},
                            {"trials", nlohmann::json::array()}};
  refused({{"schema", "other"}}, "not a hostroute-bench results file");
  refused({{"schema", "hostroute-bench/results"}, {"schemaVersion", 2}}, "schemaVersion 2");
  auto with = [&](const nlohmann::json::json_pointer& p, nlohmann::json v) {
    auto j = base;
    j[p] = std::move(v);
    return j;
  };
  refused(with("/config/repetitions"_json_pointer, -1), "'config.repetitions'");
  refused(with("/config/pinnedCpus"_json_pointer, {1}), "expected [client, server]");
  refused(with("/environment/cpus"_json_pointer, "two"), "'environment.cpus'");
  refused(with("/complete"_json_pointer, "yes"), "expected true or false");
  refused(with("/trials"_json_pointer, 3), "'trials': expected a list");
}

TEST(ResultsDocument, LabDocumentRoundTrip) {
  results::LabDocument d;
  d.schema_version = 1;
  d.command = "hrbench lab";
  d.environment = results::Environment{};
  d.environment->kernel = "Linux";
  d.verdicts.push_back({"dual-stack", "ebpf", true, "works", {{"ipv6Reachable", true}}});
  const auto j = results::to_json(d);
  EXPECT_EQ(j["schema"], "hostroute-bench/lab");
  EXPECT_EQ(j["verdicts"][0]["evidence"]["ipv6Reachable"], true);
  EXPECT_EQ(results::lab_from_json(j, "lab.json"), d);
}

TEST(ResultsDocument, FamiliesSelectTrialsAndOldFilesReadAsIpv4) {
  results::Run doc;
  doc.config.repetitions = 1;
  doc.config.families = std::vector<std::string>{"ipv4", "ipv6"};
  results::Trial old;  // no family: a file from before families
  old.mode = "legacy";
  old.scenario = "pod-pod-cross-node";
  old.workload = "tcp_rr";
  old.valid = true;
  old.metrics = nlohmann::json{{"transactionsPerSecond", 100.0}};
  results::Trial six = old;
  six.family = "ipv6";
  six.metrics = nlohmann::json{{"transactionsPerSecond", 60.0}};
  doc.trials = {old, six};
  EXPECT_EQ(old.fam(), "ipv4");
  EXPECT_EQ(results::families(doc), (std::vector<std::string>{"ipv4", "ipv6"}));
  const auto v6 = results::only_family(doc, "ipv6");
  ASSERT_EQ(v6.trials.size(), 1u);
  EXPECT_EQ(v6.trials[0].family, "ipv6");
  EXPECT_EQ(v6.config.families, std::vector<std::string>{"ipv6"});
  EXPECT_EQ(results::only_family(doc, "ipv4").trials.size(), 1u);
  // The family round-trips and is checked when read.
  const auto j = results::to_json(doc);
  EXPECT_EQ(j["trials"][1]["family"], "ipv6");
  EXPECT_FALSE(j["trials"][0].contains("family"));
  EXPECT_EQ(results::from_json(j, "x.json"), doc);
  auto bad = j;
  bad["trials"][1]["family"] = "ipx";
  EXPECT_THROW(results::from_json(bad, "x.json"), Error);
  // select_family: a family the file lacks is an input error naming the ones it has.
  try {
    results::select_family(results::only_family(doc, "ipv4"), "ipv6", "x.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("x.json: no ipv6 trials (its families: ipv4"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(results::select_family(doc, "dual", "x.json"), Error);
  // The summary has a table per family; one family: the table as before.
  const auto table = results::summary_table(doc);
  EXPECT_NE(table.find("family ipv4:"), std::string::npos) << table;
  EXPECT_NE(table.find("family ipv6:"), std::string::npos) << table;
  EXPECT_EQ(results::summary_table(results::only_family(doc, "ipv4")).find("family"),
            std::string::npos);
  // Short cells are per family: the ipv6 one names its family.
  doc.config.modes = std::vector<std::string>{"legacy", "ebpf"};
  doc.config.scenarios = std::vector<std::string>{"pod-pod-cross-node"};
  doc.config.workloads = std::vector<std::string>{"tcp_rr"};
  const auto text = results::short_cells_text(doc);
  EXPECT_NE(text.find("ebpf pod-pod-cross-node tcp_rr ipv6: 0 of 1 valid"), std::string::npos)
      << text;
  EXPECT_NE(text.find("ebpf pod-pod-cross-node tcp_rr: 0 of 1 valid"), std::string::npos) << text;
}

// A kernel-matrix VM's kernel command line names its accelerator; nothing else does.
TEST(ResultsEnvironment, MatrixVirtualizationIsReadFromTheKernelCommandLine) {
  EXPECT_EQ(results::matrix_virtualization(
                "console=ttyS0 panic=-1 lsm=landlock,lockdown,yama,apparmor,bpf hrbench.virt=tcg "
                "hrb_guest=/src/scripts/vm/guest"),
            "tcg");
  EXPECT_EQ(results::matrix_virtualization("hrbench.virt=kvm"), "kvm");
  EXPECT_EQ(results::matrix_virtualization("BOOT_IMAGE=/vmlinuz root=/dev/vda ro"), std::nullopt);
  EXPECT_EQ(results::matrix_virtualization("hrbench.virt=xen"), std::nullopt);
  EXPECT_EQ(results::matrix_virtualization("xhrbench.virt=tcg hrbench.virt=tcgx"), std::nullopt);
}
