"""scripts/mutation.py's result file: a module run in this checkout gets its new row, one without a result here
(mutmut keeps results in .mutation/, which a new checkout lacks) keeps its row and survivors from the file before."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "mutation.py"


@pytest.fixture(scope="module")
def mutation():
    spec = importlib.util.spec_from_file_location("mutation_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.version = lambda _: "3.8.1"  # the mutation extra is not the tests'
    return module


def results(**statuses):
    """`mutmut results --all true` lines: module=[status of each mutant, in order]."""
    return "\n".join(
        f"    {module.replace('_', '.')}.x_f__mutmut_{n}: {status}"
        for module, listed in statuses.items()
        for n, status in enumerate(listed, 1)
    )


def test_a_module_without_results_here_keeps_its_committed_row_and_survivors(mutation):
    before = mutation.summary(*mutation.counts(results(a_old=["killed", "timeout", "survived", "no tests"])))
    now = results(
        a_old=["not checked"] * 4,  # not run in this checkout
        b_run=["killed", "survived", "not checked"],
        c_new=["not checked"] * 2,  # not in the file before either
    )

    rows, others = mutation.merged(now, before)
    written = mutation.summary(rows, others)

    assert {module: dict(row) for module, row in rows.items()} == {
        "a.old": {"killed": 1, "timeout": 1, "survived": 1, "no tests": 1},
        "b.run": {"killed": 1, "survived": 1, "not checked": 1},
        "c.new": {"not checked": 2},
    }
    assert others == {"survived": ["b.run.x_f__mutmut_2", "a.old.x_f__mutmut_3"], "no tests": ["a.old.x_f__mutmut_4"]}
    assert "a.old                                      4       1       1        1        1       0  66.7%" in written
    assert "all                                        9       2       1        2        1       3  60.0%" in written
    again, again_others = mutation.committed(written)  # what the next run reads back
    assert again == rows
    assert {status: sorted(names) for status, names in again_others.items()} == {
        status: sorted(names) for status, names in others.items()
    }


def test_a_module_run_whole_here_replaces_its_committed_row(mutation):
    before = mutation.summary(*mutation.counts(results(a_old=["survived", "not checked"])))

    rows, others = mutation.merged(results(a_old=["killed", "survived"]), before)

    assert {module: dict(row) for module, row in rows.items()} == {"a.old": {"killed": 1, "survived": 1}}
    assert others == {"survived": ["a.old.x_f__mutmut_2"]}


def test_a_module_run_in_part_here_keeps_the_committed_results_of_the_mutants_not_run_here(mutation):
    # The file before: mutants 1-3 run (1 killed, 2 timed out, 3 survived), 4-6 not run.
    before = mutation.summary(*mutation.counts(results(a_old=["killed", "timeout", "survived", *["not checked"] * 3])))

    # Here: the mutants not run before (4-6), and the survivor again (3), after a test was written for it.
    now = results(a_old=["not checked", "not checked", "killed", "survived", "killed", "not checked"])
    rows, others = mutation.merged(now, before)

    assert {module: dict(row) for module, row in rows.items()} == {
        "a.old": {"killed": 3, "timeout": 1, "survived": 1, "not checked": 1}
    }
    assert others == {"survived": ["a.old.x_f__mutmut_4"]}


def test_a_module_whose_mutants_changed_in_number_has_its_results_here_alone(mutation):
    before = mutation.summary(*mutation.counts(results(a_old=["survived", "killed"])))

    rows, others = mutation.merged(results(a_old=["killed", "not checked", "not checked"]), before)

    assert {module: dict(row) for module, row in rows.items()} == {"a.old": {"killed": 1, "not checked": 2}}
    assert not others["survived"]
