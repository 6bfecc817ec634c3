#pragma once
// Reports made from results files (never from a live run): Markdown, and a self-contained HTML
// page whose charts gnuplot renders to SVG and the page embeds (no network needed to view it).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hrb::report {

std::string markdown(const std::vector<std::pair<std::string, nlohmann::json>>& runs);
// Needs gnuplot (gnuplot-nox); throws Error naming the fix when it is missing.
std::string html(const std::vector<std::pair<std::string, nlohmann::json>>& runs);

}  // namespace hrb::report
