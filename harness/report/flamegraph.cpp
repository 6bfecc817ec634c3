#include "report/flamegraph.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>

#include "core/markup.hpp"

namespace hrb::report {

namespace {

struct Node {
  std::string name;
  uint64_t count = 0;
  std::map<std::string, std::unique_ptr<Node>> children;  // sorted by name
};

std::string label_for(const std::string& name, double width_px) {
  const size_t fits = width_px > 8 ? static_cast<size_t>((width_px - 6) / 6.6) : 0;
  if (fits < 3) return "";
  if (name.size() <= fits) return name;
  return name.substr(0, fits - 2) + "..";
}

struct Drawer {
  const FlameOptions& o;
  double total;
  int height;  // of the frame area, px
  std::string out;
  int max_depth = 0;

  // `c`: the classifier of the frames below this one (a sample ending here belongs to its
  // bucket, metrics::stack_bucket); depth 0 is "all", 1 the task, frames from 2 on.
  void draw(const Node& n, double x, int depth, metrics::StackClassifier c) {
    const double w = n.count / total * o.width;
    if (w < o.min_width) return;
    if (depth >= 2) c.push(n.name);
    const std::string bucket = c.bucket();
    const int y = height - (depth + 1) * o.frame_height;
    out += fmt::format(
        "<g><title>{} ({} samples, {:.2f} %)</title><rect x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" "
        "height=\"{}\" fill=\"{}\" rx=\"1\"/>",
        xml_escape(n.name), n.count, 100.0 * n.count / total, x, y, std::max(w - 0.5, 0.3),
        o.frame_height - 1, depth == 0 && n.name == "all" ? "#e0e0e0" : bucket_colour(bucket));
    if (auto l = label_for(n.name, w); !l.empty())
      out += fmt::format("<text x=\"{:.1f}\" y=\"{}\">{}</text>", x + 3, y + o.frame_height - 4,
                         xml_escape(l));
    out += "</g>\n";
    max_depth = std::max(max_depth, depth);
    double cx = x;
    for (const auto& [name, child] : n.children) {
      draw(*child, cx, depth + 1, c);
      cx += child->count / total * o.width;
    }
  }
};

int depth_of(const Node& n, double total, const FlameOptions& o) {
  int d = 0;
  for (const auto& [name, c] : n.children)
    if (c->count / total * o.width >= o.min_width) d = std::max(d, 1 + depth_of(*c, total, o));
  return d;
}

}  // namespace

const char* bucket_colour(const std::string& id) {
  static const std::map<std::string, const char*> colours{
      {"netfilter", "#e4572e"}, {"conntrack", "#f3a712"}, {"nat", "#e87ea1"},
      {"bpf", "#2e7dd0"},       {"veth_xmit", "#4fb0c6"}, {"routing", "#66a61e"},
      {"tcp_udp", "#c9b81e"},   {"softirq", "#9467bd"},   {"sched_idle", "#cfcfcf"},
      {"user", "#a0785a"},      {"other", "#e9d8b4"},
  };
  auto it = colours.find(id);
  return it == colours.end() ? "#e9d8b4" : it->second;
}

std::string flame_graph_svg(const metrics::FoldedStacks& f, const std::string& title,
                            const FlameOptions& o) {
  Node root{"all", 0, {}};
  for (const auto& [stack, n] : f.stacks) {
    Node* at = &root;
    root.count += n;
    size_t pos = 0;
    while (pos <= stack.size()) {
      size_t semi = stack.find(';', pos);
      if (semi == std::string::npos) semi = stack.size();
      const std::string frame = stack.substr(pos, semi - pos);
      pos = semi + 1;
      auto& child = at->children[frame];
      if (!child) child = std::make_unique<Node>(Node{frame, 0, {}});
      child->count += n;
      at = child.get();
    }
  }
  if (root.count == 0) return "";
  const double total = static_cast<double>(root.count);
  const int depth = depth_of(root, total, o) + 1;
  const int top = 28;
  Drawer d{o, total, depth * o.frame_height, {}};
  d.draw(root, 0, 0, metrics::StackClassifier{});
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"flame\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 {} {} {}\" font-family=\"sans-serif\" font-size=\"11\">\n"
      "<text x=\"0\" y=\"{}\" font-size=\"13\" font-weight=\"bold\">{}</text>\n{}</svg>\n",
      o.width, d.height + top, -top, o.width, d.height + top, -top + 17, xml_escape(title), d.out);
}

}  // namespace hrb::report
