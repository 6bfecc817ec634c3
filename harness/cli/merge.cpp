// hrbench merge: the results files of a run's shards (hrbench run --shard I/N) joined into one.
#include <iostream>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "gate/gate.hpp"
#include "results/results.hpp"
#include "run/shard.hpp"

namespace hrb::cli {

namespace {

struct MergeOptions {
  CommonOptions common;
  std::vector<std::string> files;
  boost::optional<std::string> output;
};

int run_merge(const MergeOptions& o, const Args& args) {
  std::vector<run::ShardFile> shards;
  for (const auto& f : o.files) shards.push_back({f, results::read_results(f)});
  const auto doc = run::merge_shards(shards, command_line("merge", args));
  results::write_results(*o.output, doc);
  std::cout << fmt::format("{}: {} shards, {} trials{}\n", *o.output, doc.shards.size(),
                           doc.trials.size(), doc.complete.value_or(false) ? "" : ", INCOMPLETE");
  for (const auto& s : doc.shards)
    for (const auto& d : gate::environment_differences(doc.shards[0].environment, s.environment))
      std::cout << fmt::format(
          "shard {} ran in another environment than shard 1: {} '{}' (shard {}) vs '{}' (shard "
          "1); pairs stay within a shard, but absolute figures mix runners, and a baseline check "
          "needs every shard's environment to match\n",
          s.index, d.field, d.current, s.index, d.baseline);
  if (auto shortfall = results::short_cells_text(doc); !shortfall.empty()) std::cout << shortfall;
  return 0;
}

}  // namespace

int cmd_merge(const Args& args) {
  MergeOptions o;
  po::options_description d(
      "hrbench merge SHARD.json… -o MERGED.json: join the results files of shards 1..N of one "
      "run (hrbench run --shard I/N) into one that gate and report read; exit 3 when they are not "
      "the shards of one plan, each once (nothing is written then)");
  d.add_options()("files", po::value(&o.files), "the shards' results files")(
      "output,o", po::value(&o.output), "the merged results file to write");
  po::positional_options_description pos;
  pos.add("files", -1);
  if (!parse(args, d, "hrbench merge SHARD.json… -o MERGED.json", o.common, pos)) return 0;
  if (o.files.empty()) throw Error("give the shards' results files", ExitCode::kUsage);
  if (!o.output) throw Error("-o MERGED.json: where to write the merged file", ExitCode::kUsage);
  return run_merge(o, args);
}

}  // namespace hrb::cli
