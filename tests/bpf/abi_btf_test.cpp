// bpf/include/hrb_abi.h is compiled twice, by clang for the BPF objects and by the C++ compiler
// for the harness; HRB_ABI_ASSERT pins each struct's size in both. This test closes the loop: the
// size the compiled objects' BTF gives each shared struct is sizeof on the C++ side. Opening a
// skeleton only parses the object (no load): no root needed.
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "hrb_abi.h"

// Generated skeletons: after hrb_abi.h, which declares the structs they name.
#include "doctor_probe.skel.h"
#include "from_pod.skel.h"
#include "from_uplink.skel.h"

namespace {

// Every struct of hrb_abi.h and its C++ size.
const std::map<std::string, size_t> kAbiStructs{
    {"hrb_probe_stats", sizeof(hrb_probe_stats)},
    {"hrb_endpoint", sizeof(hrb_endpoint)},
    {"hrb_ct_key", sizeof(hrb_ct_key)},
    {"hrb_ct_entry", sizeof(hrb_ct_entry)},
    {"hrb_lpm_key", sizeof(hrb_lpm_key)},
    {"hrb_lb_key", sizeof(hrb_lb_key)},
    {"hrb_lb_value", sizeof(hrb_lb_value)},
    {"hrb_flow_key", sizeof(hrb_flow_key)},
    {"hrb_redirect_record", sizeof(hrb_redirect_record)},
    {"hrb_ip6", sizeof(hrb_ip6)},
    {"hrb_ct6_key", sizeof(hrb_ct6_key)},
    {"hrb_ct6_entry", sizeof(hrb_ct6_entry)},
    {"hrb_lb6_key", sizeof(hrb_lb6_key)},
    {"hrb_lb6_value", sizeof(hrb_lb6_value)},
    {"hrb_flow6_key", sizeof(hrb_flow6_key)},
    {"hrb_lpm6_key", sizeof(hrb_lpm6_key)},
};

// Compares the structs `obj`'s BTF has with kAbiStructs; returns the names it found.
std::vector<std::string> check_object(const char* name, const bpf_object* obj) {
  std::vector<std::string> found;
  const btf* b = bpf_object__btf(obj);
  EXPECT_NE(b, nullptr) << name << " has no BTF";
  if (!b) return found;
  for (const auto& [type, size] : kAbiStructs) {
    const int id = btf__find_by_name_kind(b, type.c_str(), BTF_KIND_STRUCT);
    if (id < 0) continue;
    found.push_back(type);
    EXPECT_EQ(btf__resolve_size(b, id), static_cast<long long>(size))
        << "struct " << type << " in " << name << "'s BTF vs sizeof in C++";
  }
  return found;
}

template <class Skel>
std::vector<std::string> check(const char* name, Skel* (*open)(), void (*destroy)(Skel*)) {
  Skel* s = open();
  EXPECT_NE(s, nullptr) << "cannot open " << name;
  if (!s) return {};
  auto found = check_object(name, s->obj);
  destroy(s);
  return found;
}

}  // namespace

TEST(AbiBtf, EverySharedStructHasTheSameSizeInTheObjectsAsInCxx) {
  std::map<std::string, int> seen;
  for (const auto& t : check("from_pod", from_pod__open, from_pod__destroy)) ++seen[t];
  for (const auto& t : check("from_uplink", from_uplink__open, from_uplink__destroy)) ++seen[t];
  for (const auto& t : check("doctor_probe", doctor_probe__open, doctor_probe__destroy)) ++seen[t];
  for (const auto& [type, size] : kAbiStructs)
    EXPECT_GT(seen[type], 0) << "struct " << type << " is in no object's BTF: nothing checked it";
}
