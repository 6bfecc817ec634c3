#!/usr/bin/python3
"""The kernel matrix's collector (scripts/kernel-matrix runs it after each kernel).

Reads one kernel's logs directory (guest.txt, run.txt, steps.tsv, doctor.json and ctest's JUnit
per test step), prints its summary, and with --json/--markdown puts the kernel's row into
results/kernels.json (replacing the row of the same label) and regenerates the table between the
markers of docs/kernels.md from the whole file. Exit 1 when a step failed or did not finish.
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

SCHEMA_VERSION = 1
BEGIN = "<!-- kernel-matrix:begin (scripts/kernel-matrix writes this part) -->"
END = "<!-- kernel-matrix:end -->"
TEST_STEPS = ("unit", "bpf", "bpf-smoke", "lsm", "netns")


def read_kv(path):
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                out[k] = v
    return out


def skip_reason(case):
    """The reason a skipped ctest test gave (gtest prints it on the line after "Skipped")."""
    text = case.findtext("system-out") or ""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.rstrip().endswith("Skipped") and i + 1 < len(lines) and lines[i + 1].strip():
            return lines[i + 1].strip()
    sk = case.find("skipped")
    return (sk.get("message") if sk is not None else "") or "no reason printed"


def junit_counts(path):
    root = ET.parse(path).getroot()
    passed, failed, skipped = 0, [], []
    for case in root.iter("testcase"):
        name = case.get("name")
        status = case.get("status", "")
        if case.find("failure") is not None or case.find("error") is not None or status == "fail":
            failed.append(name)
        elif case.find("skipped") is not None or status in ("notrun", "disabled"):
            skipped.append({"test": name, "reason": skip_reason(case)})
        else:
            passed += 1
    return passed, failed, skipped


def log_counts(path):
    """Counts from ctest's progress lines, for a step ended before it wrote its JUnit (its time
    limit): only the tests that finished are counted."""
    passed, failed, skipped = 0, [], []
    pat = re.compile(r"^\s*\d+/\d+ Test\s+#\d+: (\S+) .*?(Passed|\*\*\*Skipped|\*\*\*\S+|Failed)")
    with open(path, errors="replace") as f:
        for line in f:
            m = pat.match(line)
            if not m:
                continue
            if m.group(2) == "Passed":
                passed += 1
            elif m.group(2) == "***Skipped":
                skipped.append({"test": m.group(1), "reason": "see the step's log"})
            else:
                failed.append(m.group(1))
    return passed, failed, skipped


def collect(logs, label):
    guest = read_kv(os.path.join(logs, "guest.txt"))
    run = read_kv(os.path.join(logs, "run.txt"))
    row = {
        "label": label,
        "kernel": guest.get("kernel", ""),
        "virtualisation": run.get("accel", "?"),
        "lsm": guest.get("lsm", ""),
        "vcpus": int(guest["cpus"]) if guest.get("cpus", "").isdigit() else None,
        "measured": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                 text=True).stdout.strip(),
        "wallSeconds": int(run["wall"]) if run.get("wall", "").isdigit() else None,
        "features": {},
        "steps": {},
    }
    if row["virtualisation"] == "none":
        v = subprocess.run(["systemd-detect-virt", "--vm"], capture_output=True, text=True)
        row["virtualisation"] = "none (this machine: {})".format(v.stdout.strip() or "?")
    problems = []
    if run.get("vm_exit", "0") not in ("0", ""):
        problems.append("the VM ended with exit {}{}".format(
            run["vm_exit"], " (its time limit)" if run["vm_exit"] == "124" else ""))
    doctor = os.path.join(logs, "doctor.json")
    if os.path.exists(doctor) and os.path.getsize(doctor):
        with open(doctor) as f:
            for c in json.load(f)["checks"]:
                row["features"][c["id"]] = {
                    "feature": c["feature"],
                    "ok": c["ok"],
                    "required": c["required"],
                    "detail": c["detail"].splitlines()[0] if c["detail"] else "",
                }
    steps_tsv = os.path.join(logs, "steps.tsv")
    if os.path.exists(steps_tsv):
        with open(steps_tsv) as f:
            for line in f:
                step, code, secs, limit = line.rstrip("\n").split("\t")
                s = {"exit": int(code), "seconds": int(secs), "limit": int(limit)}
                xml = os.path.join(logs, step + ".xml")
                log = os.path.join(logs, step + ".log")
                if step in TEST_STEPS and (os.path.exists(xml) or os.path.exists(log)):
                    p, fl, sk = junit_counts(xml) if os.path.exists(xml) else log_counts(log)
                    s.update({"passed": p, "failed": len(fl), "skipped": len(sk),
                              "failedTests": fl, "skippedTests": sk})
                    if not os.path.exists(xml):
                        s["partial"] = True  # counted from the log: the tests that finished
                if s["exit"] == 124:
                    problems.append("step {} hit its limit of {} s".format(step, limit))
                elif s["exit"] != 0:
                    problems.append("step {} exited {}{}".format(
                        step, code, ": " + ", ".join(s.get("failedTests", [])[:10])
                        if s.get("failedTests") else ""))
                row["steps"][step] = s
    row["ok"] = not problems and bool(row["steps"])
    row["problems"] = problems
    return row


def cell_feature(f, fid=""):
    if f is None:
        return "–"
    if fid == "tc_attach" and f["ok"]:  # which attach: "tcx links" or "clsact (the fallback…"
        return "clsact (fallback)" if "fallback" in f["detail"] else f["detail"]
    return "yes" if f["ok"] else "**no**"


def cell_step(s):
    if s is None:
        return "–"
    if "passed" not in s:
        txt = "exit {}".format(s["exit"])
    else:
        txt = "{} passed, {} failed, {} skipped".format(s["passed"], s["failed"], s["skipped"])
        if s["exit"] not in (0, 124) and s["failed"] == 0:
            txt += " (exit {})".format(s["exit"])
    if s["exit"] == 124:
        txt += " (**time limit**{})".format(": the tests that finished" if s.get("partial") else "")
    return "{} · {} s".format(txt, s["seconds"])


def markdown(doc):
    rows = doc["kernels"]
    head = "| | " + " | ".join("`{}` ({})".format(r["label"], r["virtualisation"]) for r in rows) + " |"
    sep = "|---|" + "---|" * len(rows)
    out = [BEGIN, "", "Generated from `results/kernels.json`; TCG figures are for function, never for "
           "speed.", "", "### Features (hrbench doctor)", "", head, sep]
    ids = []
    for r in rows:
        for i in r["features"]:
            if i not in ids:
                ids.append(i)
    for i in ids:
        name = next(r["features"][i]["feature"] for r in rows if i in r["features"])
        out.append("| {} | {} |".format(
            name.replace("|", "\\|"), " | ".join(cell_feature(r["features"].get(i), i) for r in rows)))
    out += ["", "### Tests", "", head, sep]
    steps = []
    for r in rows:
        for s in r["steps"]:
            if s not in steps:
                steps.append(s)
    for s in steps:
        out.append("| {} | {} |".format(s, " | ".join(cell_step(r["steps"].get(s)) for r in rows)))
    out.append("| whole run (wall) | {} |".format(" | ".join(
        "{} s".format(r["wallSeconds"]) if r.get("wallSeconds") is not None else "–" for r in rows)))
    out.append("| commit, date | {} |".format(" | ".join(
        "`{}`, {}".format(r["commit"], r["measured"][:10]) for r in rows)))
    out += ["", "### Skipped tests and their reasons", ""]
    for r in rows:
        reasons = {}
        for step, s in r["steps"].items():
            for t in s.get("skippedTests", []):
                reasons.setdefault(t["reason"], []).append(t["test"])
        out.append("- `{}`: {}".format(r["label"], "none" if not reasons else ""))
        for why, tests in sorted(reasons.items()):
            names = ", ".join("`{}`".format(t) for t in tests[:6])
            more = " and {} more".format(len(tests) - 6) if len(tests) > 6 else ""
            out.append("  - {} ({}): {}{}".format(why, len(tests), names, more))
        for p in r.get("problems", []):
            out.append("  - **problem**: " + p)
    out += ["", END]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    a = ap.parse_args()
    row = collect(a.logs, a.label)
    for step, s in row["steps"].items():
        print("kernel-matrix: {} {}: {}".format(a.label, step, cell_step(s).replace("**", "")))
    for p in row["problems"]:
        print("kernel-matrix: {}: {}".format(a.label, p), file=sys.stderr)
    tests = [s for s in row["steps"].values() if "passed" in s]
    if tests:
        print("kernel-matrix: {} passed, {} failed, {} skipped".format(
            sum(s["passed"] for s in tests), sum(s["failed"] for s in tests),
            sum(s["skipped"] for s in tests)))
    if a.json:
        doc = {"schemaVersion": SCHEMA_VERSION, "kernels": []}
        if os.path.exists(a.json):
            with open(a.json) as f:
                doc = json.load(f)
            if doc.get("schemaVersion") != SCHEMA_VERSION:
                sys.exit("{}: schemaVersion {} is not {}: not rewritten".format(
                    a.json, doc.get("schemaVersion"), SCHEMA_VERSION))
        doc["kernels"] = [r for r in doc["kernels"] if r["label"] != a.label] + [row]
        doc["kernels"].sort(key=lambda r: (r["label"] != "host", r["label"]))
        with open(a.json + ".tmp", "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(a.json + ".tmp", a.json)
        if a.markdown:
            with open(a.markdown) as f:
                text = f.read()
            if BEGIN not in text or END not in text:
                sys.exit("{}: no kernel-matrix markers ({} … {}): not rewritten".format(
                    a.markdown, BEGIN, END))
            pre, rest = text.split(BEGIN, 1)
            post = rest.split(END, 1)[1]
            with open(a.markdown + ".tmp", "w") as f:
                f.write(pre + markdown(doc) + post)
            os.replace(a.markdown + ".tmp", a.markdown)
    sys.exit(0 if row["ok"] else 1)


if __name__ == "__main__":
    main()
