// The ABI version every object carries (bpf/include/hrb_abi.h) and the loader's refusal of an
// object of another ABI: real objects of this build, and copies of them with the version patched
// in the file's .rodata section (no stubs). Opening an object needs no root; one test loads.
#include <bpf/btf.h>
#include <elf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/bpf.hpp"
#include "datapath/ebpf.hpp"
#include "datapath/mode.hpp"

#include "hrb_abi.h"

// Generated skeletons: after hrb_abi.h, which declares the structs they name.
#include "from_pod.skel.h"
#include "from_uplink.skel.h"

using namespace hrb;
namespace fs = std::filesystem;

namespace {

const std::string kObjects = std::string(HRB_BINARY_DIR) + "/bpf";

std::string tmpdir() {
  char t[] = "/tmp/hrb-abi-XXXXXX";
  return mkdtemp(t);
}

std::vector<char> read_file(const std::string& f) {
  std::ifstream in(f, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The file offset of the .rodata variable `hrb_abi_version` in an ELF64 BPF object: its
// section's file offset plus the variable's offset, from the object's BTF as libbpf reads it.
size_t version_offset(const std::vector<char>& elf, const std::string& file) {
  Elf64_Ehdr eh;
  std::memcpy(&eh, elf.data(), sizeof eh);
  auto shdr = [&](size_t i) {
    Elf64_Shdr sh;
    std::memcpy(&sh, elf.data() + eh.e_shoff + i * eh.e_shentsize, sizeof sh);
    return sh;
  };
  const Elf64_Shdr names = shdr(eh.e_shstrndx);
  size_t rodata = 0;
  for (size_t i = 0; i < eh.e_shnum; ++i)
    if (std::string(elf.data() + names.sh_offset + shdr(i).sh_name) == ".rodata")
      rodata = shdr(i).sh_offset;
  EXPECT_NE(rodata, 0u) << file << ": no .rodata section";
  bpf_object* obj = bpf_object__open_file(file.c_str(), nullptr);
  EXPECT_NE(obj, nullptr);
  uint32_t var = 0;
  bool found = false;
  const btf* b = bpf_object__btf(obj);
  const int id = btf__find_by_name_kind(b, ".rodata", BTF_KIND_DATASEC);
  const btf_type* t = btf__type_by_id(b, id);
  const btf_var_secinfo* v = btf_var_secinfos(t);
  for (int i = 0; i < btf_vlen(t); ++i, ++v)
    if (std::string(btf__name_by_offset(b, btf__type_by_id(b, v->type)->name_off)) ==
        "hrb_abi_version") {
      var = v->offset;
      found = true;
    }
  bpf_object__close(obj);
  EXPECT_TRUE(found) << file << ": no hrb_abi_version in .rodata";
  return rodata + var;
}

// A copy of this build's `object` in `dir` whose hrb_abi_version is `version`.
std::string patched_copy(const std::string& object, const std::string& dir, uint32_t version) {
  const std::string src = kObjects + "/" + object + ".bpf.o", dst = dir + "/" + object + ".bpf.o";
  auto elf = read_file(src);
  const size_t off = version_offset(elf, src);
  uint32_t was;
  std::memcpy(&was, elf.data() + off, sizeof was);
  EXPECT_EQ(was, uint32_t{HRB_ABI_VERSION}) << src;
  std::memcpy(elf.data() + off, &version, sizeof version);
  std::ofstream(dst, std::ios::binary).write(elf.data(), static_cast<std::streamsize>(elf.size()));
  return dst;
}

std::string error_of(const std::function<void()>& f, ExitCode* code = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (code) *code = e.code();
    return e.what();
  }
  return "";
}

}  // namespace

TEST(AbiVersion, EveryObjectOfThisBuildCarriesIt) {
  for (const char* o :
       {"from_pod", "from_uplink", "guard_lsm", "guard_sockopt", "pktgen", "doctor_probe"}) {
    const std::string f = kObjects + "/" + o + ".bpf.o";
    bpf_object* obj = bpf_object__open_file(f.c_str(), nullptr);
    ASSERT_NE(obj, nullptr) << f;
    EXPECT_EQ(object_abi_version(obj), std::optional<uint32_t>(HRB_ABI_VERSION)) << f;
    bpf_object__close(obj);
  }
}

TEST(AbiVersion, TheSameBuildsObjectFileOpensAndLoads) {
  Skeleton<from_pod> s(kObjects + "/from_pod.bpf.o");
  EXPECT_EQ(object_abi_version(s->obj), std::optional<uint32_t>(HRB_ABI_VERSION));
  if (geteuid() != 0) GTEST_SKIP() << "loading needs root";
  s.load("from_pod (from file)");
  EXPECT_GE(bpf_program__fd(s->progs.from_pod), 0);
  EXPECT_NO_THROW(datapath::check_objects(kObjects));
}

TEST(AbiVersion, AnObjectOfAnotherVersionIsRefusedNamingTheFileAndBothVersions) {
  const std::string dir = tmpdir();
  const std::string f = patched_copy("from_pod", dir, HRB_ABI_VERSION + 41);
  ExitCode code{};
  const auto msg = error_of([&] { Skeleton<from_pod> s(f); }, &code);
  EXPECT_EQ(code, ExitCode::kBadInput) << msg;
  EXPECT_NE(msg.find(f), std::string::npos) << msg;
  EXPECT_NE(msg.find("version " + std::to_string(HRB_ABI_VERSION + 41)), std::string::npos) << msg;
  EXPECT_NE(msg.find("this build's is " + std::to_string(HRB_ABI_VERSION)), std::string::npos)
      << msg;

  // Through the mode: KIND@DIR is refused before anything is built (make_mode validates).
  fs::copy_file(kObjects + "/from_uplink.bpf.o", dir + "/from_uplink.bpf.o");
  auto parsed = datapath::parse_mode("ebpf@" + dir);
  EXPECT_EQ(parsed.options.objects_dir, dir);
  code = {};
  const auto msg2 = error_of([&] { datapath::make_mode(parsed.options); }, &code);
  EXPECT_EQ(code, ExitCode::kBadInput) << msg2;
  EXPECT_NE(msg2.find(f), std::string::npos) << msg2;
  fs::remove_all(dir);
}

TEST(AbiVersion, AnObjectWithoutAVersionIsRefused) {
  // An object that carries none: the test program drop_nth includes no ABI header.
  const std::string dir = tmpdir(), f = dir + "/from_pod.bpf.o";
  fs::copy_file(kObjects + "/drop_nth.bpf.o", f);
  ExitCode code{};
  const auto msg = error_of([&] { Skeleton<from_pod> s(f); }, &code);
  EXPECT_EQ(code, ExitCode::kBadInput) << msg;
  EXPECT_NE(msg.find(f), std::string::npos) << msg;
  fs::remove_all(dir);
}

TEST(AbiVersion, ADifferentLayoutUnderTheSameVersionIsRefused) {
  // Both version HRB_ABI_VERSION, different .rodata: what a missed bump looks like.
  const std::string a = kObjects + "/from_pod.bpf.o", b = kObjects + "/pktgen.bpf.o";
  bpf_object* ours = bpf_object__open_file(a.c_str(), nullptr);
  bpf_object* theirs = bpf_object__open_file(b.c_str(), nullptr);
  ASSERT_TRUE(ours && theirs);
  ExitCode code{};
  const auto msg = error_of([&] { check_same_abi(ours, theirs, b); }, &code);
  EXPECT_EQ(code, ExitCode::kBadInput) << msg;
  EXPECT_NE(msg.find("layout differs"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HRB_ABI_VERSION should have been bumped"), std::string::npos) << msg;
  EXPECT_NO_THROW(check_same_abi(ours, ours, a));
  bpf_object__close(ours);
  bpf_object__close(theirs);
}
