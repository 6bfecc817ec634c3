#pragma once
// Reports made from results files (never from a live run): Markdown, and a self-contained HTML
// page whose charts gnuplot renders to SVG and the page embeds (no network needed to view it).
#include <string>
#include <utility>
#include <variant>
#include <vector>

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

std::string markdown(const std::vector<std::pair<std::string, Input>>& runs);
// Needs gnuplot (gnuplot-nox); throws Error naming the fix when it is missing.
std::string html(const std::vector<std::pair<std::string, Input>>& runs);

}  // namespace hrb::report
