#pragma once
// The hrbench commands, one file per group: each parses its options struct and calls its run_x.
// main.cpp only dispatches to these.
#include "cli/common.hpp"

namespace hrb::cli {

int cmd_doctor(const Args& args);  // doctor.cpp
int cmd_topo(const Args& args);    // cluster.cpp: topo validate, up, status, exec, down, clean
int cmd_up(const Args& args);
int cmd_status(const Args& args);
int cmd_exec(const Args& args);
int cmd_down(const Args& args);
int cmd_clean(const Args& args);
int cmd_mode(const Args& args);  // mode.cpp: mode, masq-agent
int cmd_masq_agent(const Args& args);
int cmd_traffic(const Args& args);  // traffic.cpp (also pps)
int cmd_run(const Args& args);      // run.cpp (also --scan)
int cmd_gate(const Args& args);     // gate.cpp: gate, compare
int cmd_compare(const Args& args);
int cmd_report(const Args& args);   // report.cpp
int cmd_merge(const Args& args);    // merge.cpp
int cmd_guard(const Args& args);    // guard.cpp
int cmd_lab(const Args& args);      // lab.cpp
int cmd_history(const Args& args);  // history.cpp: add, list, show, detect

}  // namespace hrb::cli
