"""`make mutation`: mutmut over the modules that decide answers ([tool.mutmut] in pyproject.toml), then its
result, module by module with every surviving mutant named, written to tests/mutation-results.txt.

mutmut imports the mutated copy of each module under the name its file path gives, so it runs in .mutation/,
where `llm_lambda` and `llm_wire` (the Lambda's packages, under lambda/ in the checkout) sit beside `lambdallm`,
all linked to the checkout. Arguments are mutmut's mutant names or patterns (`'llm_wire.strict_json*'`) to run a subset.
"""

from __future__ import annotations

import argparse
import datetime
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
RESULTS = ROOT / "tests" / "mutation-results.txt"
# The result file as it was when .mutation/ was made: what this checkout's results are merged over, every time.
BEFORE = WORK / "results-before.txt"
# What .mutation/ links to in the checkout: the packages mutmut copies and mutates, the tests, their data.
LINKS = {
    "lambdallm": "lambdallm",
    "llm_lambda": "lambda/llm_lambda",
    "llm_wire": "lambda/llm_wire",
    "tests": "tests",
    "specs": "specs",
    "config": "config",
}
# The first-party packages not mutated, linked into mutants/ (where the tests run) too: else they are imported
# through the venv's editable install, which may be another checkout's (a worktree's venv is often the main one's).
UNMUTATED = ("handlers", "generated", "client_app")
# The result file's columns after `mutants`, as mutmut's statuses, and the heading of a list of mutants.
_COLUMNS = ("killed", "timeout", "survived", "no tests", "not checked")
_SECTION = re.compile(r"^(?P<status>[\w ]+) \(\d+\):$")
_RESULT = re.compile(r"^\s*(?P<module>[\w.]+)\.(?P<function>xǁ\S+|x_\S+)__mutmut_\d+: (?P<status>.+)$")


def prepare() -> None:
    """.mutation/ with its links (and mutants/ with those of `UNMUTATED`), a copy of pyproject.toml (mutmut's config
    and pytest's) and, the first time, of the result file (`BEFORE`: merged over again at each report, it is not
    counted twice)."""
    WORK.mkdir(exist_ok=True)
    for name, target in LINKS.items():
        link = WORK / name
        if not link.is_symlink():
            link.symlink_to(ROOT / target, target_is_directory=True)
    (WORK / "mutants").mkdir(exist_ok=True)
    for name in UNMUTATED:
        link = WORK / "mutants" / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name, target_is_directory=True)
    shutil.copy2(ROOT / "pyproject.toml", WORK / "pyproject.toml")
    if not BEFORE.exists() and RESULTS.exists():
        shutil.copy2(RESULTS, BEFORE)


# mutmut's fork server hands pytest a mutant's tests in set order, and pytest stops at the first failure (-x): the
# test files named after the mutant's module first (rest/limits.py: tests/rest/test_key_limits.py), whose tests
# most often kill it, then in order of their duration (mutmut's stats), so that a mutant is mostly killed by its
# fastest tests, each file's kept together so that its module-scoped fixtures start once. A mutant of a module
# that every request reaches (rest/limits.py, schema_check.py) ran all of the REST tier's other tests before those
# of its own file, about a minute each on the shared cores.
_FASTEST_FIRST = """
import sys
from pathlib import Path

from mutmut.__main__ import cli
from mutmut.state import state
from mutmut.workers.isolation import ForkServerRunner

submit = ForkServerRunner.submit


def fastest_first(self, mutant_name, tests, cpu_time_limit, estimated_time):
    seconds = state().duration_by_test
    own = mutant_name.split(".xǁ")[0].split(".x_")[0].rsplit(".", 1)[-1]
    first = {}
    for test in tests:
        module = test.split("::")[0]
        first[module] = min(first.get(module, seconds[test]), seconds[test])

    def order(test):
        module = test.split("::")[0]
        return (own not in Path(module).stem, first[module], module, seconds[test])

    submit(self, mutant_name, sorted(tests, key=order), cpu_time_limit, estimated_time)


ForkServerRunner.submit = fastest_first
sys.argv[0] = "mutmut"
cli()
"""


def mutmut(*arguments: str, capture: bool = False) -> str:
    """Run the venv's mutmut in .mutation/; its output if `capture`, else it goes to the terminal."""
    command = [str(Path(sys.executable).parent / "mutmut"), *arguments]
    if arguments[:1] == ("run",):
        command = [sys.executable, "-c", _FASTEST_FIRST, *arguments]
    done = subprocess.run(command, cwd=WORK, check=not capture, text=True, capture_output=capture)
    return done.stdout if capture else ""


def counts(results: str) -> tuple[dict[str, Counter[str]], dict[str, list[str]]]:
    """From `mutmut results --all true`: each module's mutants by status, and every mutant not killed by status."""
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    others: dict[str, list[str]] = defaultdict(list)
    for line in results.splitlines():
        if match := _RESULT.match(line):
            module, status = match["module"], match["status"].strip()
            by_module[module][status] += 1
            if status not in ("killed", "timeout", "not checked"):
                others[status].append(line.strip().rsplit(":", 1)[0])
    return by_module, others


def committed(text: str) -> tuple[dict[str, Counter[str]], dict[str, list[str]]]:
    """The rows and the mutants not killed of a result file `summary` wrote (the columns back into statuses)."""
    by_module: dict[str, Counter[str]] = {}
    others: dict[str, list[str]] = defaultdict(list)
    status = None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 8 and all(part.isdigit() for part in parts[1:7]) and parts[0] != "all":
            total, *columns = (int(part) for part in parts[1:7])
            row = Counter(dict(zip(_COLUMNS, columns, strict=True)))
            by_module[parts[0]] = row + Counter({"other": total - row.total()})
        elif match := _SECTION.match(line):
            status = match["status"]
        elif status and line.startswith("  "):
            others[status].append(line.strip())
    return by_module, others


def merged(results: str, previous: str) -> tuple[dict[str, Counter[str]], dict[str, list[str]]]:
    """This checkout's results over the `previous` result file's. A module with no result here (every mutant "not
    checked": mutmut keeps results in .mutation/, which a new checkout lacks) keeps its row and mutants from the
    file; one run in part here, with as many mutants as its row there, keeps the file's results of the mutants not
    run here (`patched`); one run whole here, or whose mutants changed in number since, has its results here alone."""
    by_module, others = counts(results)
    old_modules, old_others = committed(previous)
    run_here: dict[str, dict[str, str]] = defaultdict(dict)  # module -> mutant run here -> its status
    for line in results.splitlines():
        if (match := _RESULT.match(line)) and match["status"].strip() != "not checked":
            run_here[match["module"]][line.strip().rsplit(":", 1)[0]] = match["status"].strip()
    old_status = {name: status for status, names in old_others.items() for name in names}
    kept = {
        module
        for module, row in by_module.items()
        if module in old_modules
        and (not run_here[module] or (row["not checked"] and row.total() == old_modules[module].total()))
    }
    for status, names in old_others.items():
        others[status] = [name for name in others.get(status, []) if _module(name) not in kept]
        others[status] += [name for name in names if _module(name) in kept and name not in run_here[_module(name)]]
    for module in kept:
        others_here = [name for name, status in run_here[module].items() if status not in ("killed", "timeout")]
        for name in others_here:
            others[run_here[module][name]].append(name)
    rows = {module: patched(old_modules[module], run_here[module], old_status) for module in kept}
    return {**by_module, **rows}, others


def patched(row: Counter[str], run_here: dict[str, str], old_status: dict[str, str]) -> Counter[str]:
    """A module's `row` in the file before, each mutant of `run_here` moved from its status there to its status
    here. The file names only the mutants not killed: one it does not name was not run then, or (once the row's
    mutants not run are used up) killed."""
    row = Counter(row)
    for name, status in run_here.items():
        before = old_status.get(name) or next((s for s in ("not checked", "killed", "timeout") if row[s] > 0), "killed")
        row[before] -= 1
        row[status] += 1
    return +row


def _module(name: str) -> str:
    return name.split(".xǁ")[0].split(".x_")[0]


def summary(by_module: dict[str, Counter[str]], others: dict[str, list[str]]) -> str:
    """The score per module and in all, then every mutant tried and not killed, by status."""
    total: Counter[str] = sum(by_module.values(), Counter())
    lines = [
        f"mutmut {version('mutmut')}, {datetime.date.today().isoformat()}: `make mutation` ([tool.mutmut] in "
        "pyproject.toml); tests/README.md accounts for each survivor.",
        "Score: (killed + timeout) / (killed + timeout + survived); a timeout is a mutant that hung the tests.",
        "A module not run, or run in part, in the checkout that wrote this keeps the file before's results of the "
        "mutants not run there.",
        "",
        f"{'module':36} {'mutants':>7} {'killed':>7} {'timeout':>7} {'survived':>8} {'no tests':>8} "
        f"{'not run':>7} {'score':>6}",
    ]
    for module, row in [*sorted(by_module.items()), ("all", total)]:
        caught = row["killed"] + row["timeout"]
        tried = caught + row["survived"]
        score = f"{100 * caught / tried:.1f}%" if tried else "-"
        lines.append(
            f"{module:36} {row.total():>7} {row['killed']:>7} {row['timeout']:>7} {row['survived']:>8} "
            f"{row['no tests']:>8} {row['not checked']:>7} {score:>6}"
        )
    for status, names in sorted(others.items()):
        if names:
            lines += ["", f"{status} ({len(names)}):", *(f"  {name}" for name in sorted(names))]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Prepare .mutation/, run mutmut (all mutants, or those named), write the result file."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mutants", nargs="*", help="mutant names or patterns (default: every mutant)")
    parser.add_argument("--max-children", type=int, default=2, help="mutants run at once (default 2)")
    parser.add_argument("--report-only", action="store_true", help="write the result file from the last run")
    options = parser.parse_args(argv)
    prepare()
    if not options.report_only:
        mutmut("run", "--max-children", str(options.max_children), *options.mutants)
    previous = BEFORE.read_text() if BEFORE.exists() else ""
    RESULTS.write_text(summary(*merged(mutmut("results", "--all", "true", capture=True), previous)))
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
