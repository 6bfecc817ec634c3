#pragma once
// A flame graph of folded stacks as one self-contained <svg> element (no script, no external
// font or stylesheet): the root at the bottom, each frame as wide as its samples, children
// sorted by name as flamegraph.pl sorts them, a <title> on every frame for the mouse (name,
// samples, share of the whole), coloured by the CPU bucket the frame's samples fall in
// (metrics::stack_bucket of the stack cut at that frame).
#include <string>

#include "metrics/profile.hpp"

namespace hrb::report {

struct FlameOptions {
  int width = 1200;         // px
  int frame_height = 16;    // px
  double min_width = 0.75;  // px: narrower frames (and what is above them) are left out
};

// "" when there are no samples.
std::string flame_graph_svg(const metrics::FoldedStacks& f, const std::string& title,
                            const FlameOptions& opts = {});

// The colour a bucket's frames are drawn in (the bucket table's legend uses the same).
const char* bucket_colour(const std::string& bucket_id);

}  // namespace hrb::report
