#pragma once
// What `hrbench status` shows of a cluster: every member with its address and netns, and
// whether that netns is (still) there. The table and the JSON are made from the layout alone;
// which netns are present is asked of `present` (netns_exists on a live machine, anything in a
// test), so both can be checked on a fixture layout.
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "core/netns.hpp"
#include "topology/layout.hpp"

namespace hrb::topology {

using NetnsPresent = std::function<bool(const std::string& netns)>;

// `complete`: the state directory's mark that bring-up finished (StateDir::complete()).
// The text table: a header line, then one line per node, pod and external host; a member whose
// netns is gone is marked "(MISSING)".
std::string to_table(const Layout& l, bool complete, const NetnsPresent& present = netns_exists);
// {name, prefix, complete, fabricNetns, nodes: [{…, present, pods: […]}], externalHosts: […]}
nlohmann::json to_json(const Layout& l, bool complete, const NetnsPresent& present = netns_exists);

}  // namespace hrb::topology
