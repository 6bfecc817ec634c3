// Mode names as `hrbench run --modes` takes them (datapath/mode.hpp): KIND, KIND@DIR,
// KIND@NAME=DIR, KIND@NAME. Directories are real (this build's bpf/ objects, a scratch one);
// nothing is loaded.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "datapath/mode.hpp"

using namespace hrb;
using datapath::ModeKind;
using datapath::parse_mode;
namespace fs = std::filesystem;

namespace {
const std::string kBuild = HRB_BINARY_DIR, kObjects = kBuild + "/bpf";

struct Failure {
  ExitCode code{};
  std::string what;
};
Failure failure(const std::string& name, const datapath::ModeOptions& o = {}) {
  try {
    parse_mode(name, o);
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  ADD_FAILURE() << name << " was accepted";
  return {};
}
}  // namespace

TEST(ModeName, PlainKinds) {
  EXPECT_EQ(parse_mode("ebpf").kind, ModeKind::kEbpf);
  EXPECT_EQ(parse_mode("bpf-lb").kind, ModeKind::kBpfLb);
  EXPECT_EQ(parse_mode("legacy").kind, ModeKind::kLegacy);
  EXPECT_EQ(parse_mode("none").kind, ModeKind::kNone);
  auto d = parse_mode("ebpf-delay");
  EXPECT_EQ(d.kind, ModeKind::kEbpf);
  EXPECT_TRUE(d.calibration_delay);
  EXPECT_EQ(d.options.name, "ebpf");
  EXPECT_EQ(d.label, "ebpf-delay");
  EXPECT_TRUE(d.options.objects_dir.empty());
  auto f = failure("warp");
  EXPECT_EQ(f.code, ExitCode::kUsage);
  EXPECT_EQ(f.what, "unknown mode 'warp' (legacy, bpf-lb, ebpf, none, ebpf-delay)");
}

TEST(ModeName, ABuildDirectoryOrItsObjectsDirectory) {
  for (const auto& dir : {kBuild, kObjects, kBuild + "/"}) {
    auto p = parse_mode("ebpf@" + dir);
    EXPECT_EQ(p.kind, ModeKind::kEbpf);
    EXPECT_EQ(p.label, "ebpf@" + dir) << "recorded as given";
    EXPECT_EQ(p.options.objects_dir, fs::path(kObjects).lexically_normal().string());
    EXPECT_TRUE(p.alias.empty());
  }
  auto lb = parse_mode("bpf-lb@" + kBuild);
  EXPECT_EQ(lb.options.name, "bpf-lb");
  auto d = parse_mode("ebpf-delay@" + kBuild);
  EXPECT_TRUE(d.calibration_delay);
  EXPECT_EQ(d.options.objects_dir, kObjects);
}

TEST(ModeName, ANamedDirectoryIsRecordedByItsName) {
  datapath::ModeOptions o;
  std::vector<std::string> modes{"ebpf", "ebpf@base=" + kBuild};
  datapath::define_mode_aliases(modes, o);
  EXPECT_EQ(modes, (std::vector<std::string>{"ebpf", "ebpf@base"}));
  EXPECT_EQ(o.object_aliases.at("base"), kObjects);
  auto p = parse_mode("ebpf@base", o);
  EXPECT_EQ(p.label, "ebpf@base");
  EXPECT_EQ(p.options.objects_dir, kObjects);
  // Through a results file's modeOptions (gate --adaptive repeats the run from it).
  auto back = datapath::ModeOptions::from_json(o.to_json());
  EXPECT_EQ(parse_mode("bpf-lb@base", back).options.objects_dir, kObjects);
  // Without aliases and objects the JSON is what it was.
  EXPECT_FALSE(datapath::ModeOptions{}.to_json().contains("objectAliases"));
  EXPECT_FALSE(datapath::ModeOptions{}.to_json().contains("objectsDir"));
  // One name, two directories.
  std::vector<std::string> twice{"ebpf@base=" + kBuild, "bpf-lb@base=/tmp"};
  EXPECT_THROW(datapath::define_mode_aliases(twice, o), Error);
}

TEST(ModeName, ClearErrors) {
  auto legacy = failure("legacy@" + kBuild);
  EXPECT_EQ(legacy.code, ExitCode::kUsage);
  EXPECT_NE(legacy.what.find("legacy@" + kBuild + ": legacy has no BPF objects"), std::string::npos)
      << legacy.what;
  EXPECT_NE(failure("none@/x").what.find("none has no BPF objects"), std::string::npos);

  auto missing = failure("ebpf@/nonexistent/build");
  EXPECT_EQ(missing.code, ExitCode::kBadInput);
  EXPECT_NE(missing.what.find("/nonexistent/build does not exist"), std::string::npos)
      << missing.what;

  auto undefined = failure("ebpf@base");
  EXPECT_EQ(undefined.code, ExitCode::kUsage);
  EXPECT_NE(undefined.what.find("no objects directory named 'base'"), std::string::npos)
      << undefined.what;
  EXPECT_NE(undefined.what.find("ebpf@./base"), std::string::npos) << undefined.what;

  EXPECT_EQ(failure("ebpf@").code, ExitCode::kUsage);
  EXPECT_EQ(failure("ebpf@=" + kBuild).code, ExitCode::kUsage);
  EXPECT_EQ(failure("ebpf@base=").code, ExitCode::kUsage);

  // A directory with one of the two objects: the missing file is named.
  char t[] = "/tmp/hrb-mode-XXXXXX";
  const std::string dir = mkdtemp(t);
  fs::create_directory(dir + "/bpf");
  fs::copy_file(kObjects + "/from_pod.bpf.o", dir + "/bpf/from_pod.bpf.o");
  auto half = failure("ebpf@" + dir);
  EXPECT_EQ(half.code, ExitCode::kBadInput);
  EXPECT_NE(half.what.find(dir + "/bpf/from_uplink.bpf.o is missing"), std::string::npos)
      << half.what;
  fs::remove_all(dir);
}
