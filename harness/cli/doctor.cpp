// hrbench doctor: probe every prerequisite by really trying it.
#include <iostream>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "doctor/doctor.hpp"

namespace hrb::cli {

namespace {

struct DoctorOptions {
  CommonOptions common;
  bool json = false;
};

int run_doctor(const DoctorOptions& o) {
  auto checks = doctor::run_checks();
  if (o.json)
    std::cout << doctor::to_json(checks).dump(2) << "\n";
  else
    std::cout << doctor::render_table(checks);
  return doctor::all_required_ok(checks) ? 0 : static_cast<int>(ExitCode::kMissingFeature);
}

}  // namespace

int cmd_doctor(const Args& args) {
  DoctorOptions o;
  po::options_description d("hrbench doctor: probe every prerequisite by really trying it");
  d.add_options()("json", po::bool_switch(&o.json), "print JSON instead of a table");
  if (!parse(args, d, "hrbench doctor [--json]", o.common)) return 0;
  return run_doctor(o);
}

}  // namespace hrb::cli
