// hrbench report: HTML or Markdown from results files (and lab documents).
#include <iostream>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/file.hpp"
#include "core/log.hpp"
#include "report/report.hpp"
#include "results/results.hpp"

namespace hrb::cli {

namespace {

struct ReportOptions {
  CommonOptions common;
  std::vector<std::string> files;
  std::string format;
  boost::optional<std::string> output;
  boost::optional<std::string> history;
  boost::optional<std::string> family;
};

int run_report(const ReportOptions& o) {
  if (o.format != "html" && o.format != "md")
    throw Error("--format: '" + o.format + "' (expected html or md)", ExitCode::kUsage);
  auto runs = report::read_inputs(o.files);
  // --family: the results files' trials of that family only (charts, tables, checks). Without
  // it, a run of several families is reported as one run per family ("FILE (ipv6)"), so no
  // chart or table mixes them.
  std::vector<std::pair<std::string, report::Input>> split;
  for (auto& [file, in] : runs) {
    const auto* r = std::get_if<results::Run>(&in);
    if (r && o.family) {
      split.emplace_back(file, results::select_family(*r, *o.family, file));
    } else if (r && results::families(*r).size() > 1) {
      for (const auto& f : results::families(*r))
        split.emplace_back(file + " (" + f + ")", results::only_family(*r, f));
    } else {
      split.emplace_back(file, std::move(in));
    }
  }
  runs = std::move(split);
  std::optional<report::History> history;
  if (o.history) history = report::read_history(*o.history);
  const report::History* h = history ? &*history : nullptr;
  std::string text = o.format == "html" ? report::html(runs, h) : report::markdown(runs, h);
  if (o.output) {
    write_text_file(*o.output, text);
    log::info("report written to {}", *o.output);
  } else {
    std::cout << text;
  }
  return 0;
}

}  // namespace

int cmd_report(const Args& args) {
  ReportOptions o;
  po::options_description d(
      "hrbench report RESULTS.json…: a report from results files (self-contained HTML with "
      "charts, or Markdown)");
  d.add_options()("files", po::value(&o.files), "results files")(
      "format", po::value(&o.format)->default_value("html"), "html | md")(
      "output,o", po::value(&o.output), "file to write (default: stdout)")(
      "history", po::value(&o.history),
      "also trend charts of a history store (hrbench history; detected changes and environment "
      "breaks marked); results files may then be left out")(
      "family", po::value(&o.family),
      "only the trials of this address family (ipv4 | ipv6; run --families); without it a run "
      "of two families is reported as one run per family");
  po::positional_options_description pos;
  pos.add("files", -1);
  if (!parse(args, d, "hrbench report RESULTS.json… [--history DB] [--format html|md] [-o FILE]",
             o.common, pos))
    return 0;
  if (o.files.empty() && !o.history)
    throw Error("give at least one results file (or --history DB)", ExitCode::kUsage);
  return run_report(o);
}

}  // namespace hrb::cli
