"""Pure charter rules: escalation delays, urgency ordering, who may see and complete a task."""

from __future__ import annotations

import ast
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import engine.domain
from engine.domain.actors import Actor, may_complete_task, may_see_task
from engine.domain.escalation import DEFAULT_ESCALATION, InvalidDuration, parse_duration
from engine.domain.urgency import LEVELS, SCHEDULED, UNKNOWN_RANK, URGENT, VITAL, rank

# --------------------------------------------------------------------------------------------------
# Escalation delays (ISO 8601 durations without years or months)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT15M", timedelta(minutes=15)),
        ("P2D", timedelta(days=2)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("PT4H", timedelta(hours=4)),
        ("P1W", timedelta(weeks=1)),
        ("P1DT2H3M4S", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("P366D", timedelta(days=366)),
        ("  PT15M\n", timedelta(minutes=15)),
    ],
)
def test_valid_durations_are_parsed(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "P", "PT", "15M", "-PT1M", "PT0S", "P0D", "P400D", "P366DT1S", "P1Y", "P1M", "abc", "PT15", "P1DT",
     "PT1H30", "pt15m", "P1.5D", "PT15M PT1H", None, 15, 15.0],
)
def test_invalid_durations_are_refused(text):
    with pytest.raises(InvalidDuration):
        parse_duration(text)


def test_invalid_duration_message_is_french_and_shows_examples():
    with pytest.raises(InvalidDuration, match="PT15M"):
        parse_duration("15 minutes")


def test_default_escalation_delays_are_all_valid():
    for name, text in DEFAULT_ESCALATION.items():
        assert parse_duration(text) > timedelta(0), name


@pytest.mark.parametrize("text", ["P1000000000D", "PT99999999999999999999H"])
def test_absurdly_large_durations_are_refused_as_invalid(text):
    with pytest.raises(InvalidDuration):
        parse_duration(text)


# --------------------------------------------------------------------------------------------------
# Urgency
# --------------------------------------------------------------------------------------------------


@pytest.mark.charter("CH-4.1.12")
def test_vital_emergencies_come_first_then_urgent_then_scheduled():
    assert rank(VITAL) < rank(URGENT) < rank(SCHEDULED)
    assert sorted([SCHEDULED, "vital", URGENT], key=rank) == [VITAL, URGENT, SCHEDULED]
    assert LEVELS == (VITAL, URGENT, SCHEDULED)


@pytest.mark.charter("CH-4.1.12")
@pytest.mark.parametrize("level", [None, "", "VITAL", "critical", 0, 1, ["vital"]])
def test_unknown_urgency_sorts_last(level):
    assert rank(level) == UNKNOWN_RANK
    assert rank(level) > rank(SCHEDULED)


# --------------------------------------------------------------------------------------------------
# Who may see / complete a task
# --------------------------------------------------------------------------------------------------

RADIOLOGIST = Actor("dr_martin", roles=frozenset({"radiologist"}), sites=frozenset({"site_a"}))
SELF, OTHER = "dr_martin", "dr_durand"

# (lane, site_id, assignee) -> (may see, may complete)
TRUTH_TABLE = [
    pytest.param("radiologist", "site_a", None, True, True, id="role-and-site-unclaimed"),
    pytest.param("radiologist", "site_a", SELF, True, True, id="claimed-by-self"),
    pytest.param("radiologist", "site_a", OTHER, True, False, id="claimed-by-other"),
    pytest.param("requester", "site_a", None, False, False, id="role-missing"),
    pytest.param("requester", "site_a", OTHER, False, False, id="role-missing-claimed-by-other"),
    pytest.param("radiologist", "site_b", None, False, False, id="other-site"),
    pytest.param("radiologist", "site_b", OTHER, False, False, id="other-site-claimed-by-other"),
    pytest.param("requester", "site_b", SELF, True, True, id="assignee-sees-whatever-lane-and-site"),
    pytest.param(None, "site_a", None, True, True, id="no-lane-same-site"),
    pytest.param(None, "site_b", None, False, False, id="no-lane-other-site"),
    pytest.param("radiologist", None, None, True, True, id="no-site-with-role"),
    pytest.param("requester", None, None, False, False, id="no-site-without-role"),
    pytest.param(None, None, None, True, True, id="no-lane-no-site"),
]


@pytest.mark.parametrize(("lane", "site_id", "assignee", "sees", "completes"), TRUTH_TABLE)
def test_task_visibility_and_completion(lane, site_id, assignee, sees, completes):
    assert may_see_task(RADIOLOGIST, lane, site_id, assignee) is sees
    assert may_complete_task(RADIOLOGIST, lane, site_id, assignee) is completes


def test_completing_always_requires_seeing():
    for param in TRUTH_TABLE:
        lane, site_id, assignee, _sees, _completes = param.values
        if may_complete_task(RADIOLOGIST, lane, site_id, assignee):
            assert may_see_task(RADIOLOGIST, lane, site_id, assignee)


def test_system_actor_is_recognised():
    assert Actor.system().is_system
    assert not RADIOLOGIST.is_system


@pytest.mark.parametrize(("lane", "site_id"), [("radiologist", "site_a"), ("radiologist", None),
                                               (None, "site_a")])
def test_system_actor_has_no_implicit_rights_on_lane_or_site_tasks(lane, site_id):
    system = Actor.system()
    assert not may_see_task(system, lane, site_id, None)
    assert not may_complete_task(system, lane, site_id, None)


def test_system_actor_may_act_on_a_task_assigned_to_it():
    system = Actor.system()
    assert may_complete_task(system, "radiologist", "site_a", system.user_id)
    assert not may_complete_task(system, "radiologist", "site_a", SELF)


# --------------------------------------------------------------------------------------------------
# engine.domain stays standard-library only
# --------------------------------------------------------------------------------------------------


def _imported_top_levels(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: stays inside engine.domain
                names.add("engine.domain")
            elif node.module:
                names.add(node.module)
    return names


DOMAIN_FILES = sorted(Path(engine.domain.__file__).parent.rglob("*.py"))


def test_domain_package_has_modules_to_check():
    assert {p.name for p in DOMAIN_FILES} >= {"actors.py", "escalation.py", "urgency.py"}


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=[p.name for p in DOMAIN_FILES])
def test_domain_imports_only_the_standard_library(path):
    offending = {
        name for name in _imported_top_levels(path)
        if not (name == "__future__" or name == "engine.domain" or name.startswith("engine.domain.")
                or name.split(".")[0] in sys.stdlib_module_names)
    }
    assert offending == set(), f"{path.name} imports {sorted(offending)}"


def test_import_checker_notices_a_third_party_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom lxml import etree\nfrom engine.runtime import Runtime\nfrom . import x\n")
    assert _imported_top_levels(sample) == {"os", "lxml", "engine.runtime", "engine.domain"}
