#pragma once
// Reports made from results files (never from a live run): Markdown, and a self-contained HTML
// page whose charts gnuplot renders to SVG and the page embeds (no network needed to view it).
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "history/detect.hpp"
#include "history/store.hpp"
#include "results/document.hpp"

namespace hrb::report {

// A report's input: a results file or a lab document.
using Input = std::variant<results::Run, results::LabDocument>;

// A report's input, told apart by its content: a lab document (schema "hostroute-bench/lab",
// from `hrbench lab -o`, read with results::lab_from_json); anything else is read as a results
// file (results::read_results, which checks the schema and throws Error(kBadInput) naming the
// file).
Input read_input(const std::string& path);
// read_input of each file, paired with its name, in order.
std::vector<std::pair<std::string, Input>> read_inputs(const std::vector<std::string>& files);

// A history store as a report shows it (`hrbench report --history DB`): every series and the
// changes history::detect finds in them.
struct History {
  std::string file;
  size_t runs = 0;
  std::vector<history::Series> series;
  std::vector<history::Change> changes;
};
// Opens the store for reading (history::Store::open_read: errors name the file).
History read_history(const std::string& db);

std::string markdown(const std::vector<std::pair<std::string, Input>>& runs,
                     const History* history = nullptr);
// Needs gnuplot (gnuplot-nox); throws Error naming the fix when it is missing. With a history:
// trend charts (one point per run, whiskers from its repetitions, change points and environment
// breaks marked) before the runs.
std::string html(const std::vector<std::pair<std::string, Input>>& runs,
                 const History* history = nullptr);

}  // namespace hrb::report
