"""The safe expression language: what diagrams may say, and the escapes it must refuse.

Diagrams are untrusted input (DESIGN.md): every gateway condition, timer duration, correlation and DMN
cell is evaluated by engine.runtime.expressions, never by eval/exec.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import os
import tracemalloc
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import pytest
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException

from engine.errors import ExpressionRefused
from engine.runtime import Bundle, Runtime, WorkflowFailed
from engine.runtime.expressions import MAX_EXPRESSION_LENGTH, SafeEvaluator, parse_expression
from engine.runtime.script_engine import OperationRegistry, SafeEnvironment, SafeScriptEngine

REFUSED = (ExpressionRefused, SyntaxError)
ESCALATION = MappingProxyType({"accept_tier1": "PT15M", "report_vital": "PT1H"})


def evaluate(expression: str, data: dict[str, Any] | None = None, **provided: Any) -> Any:
    return SafeEvaluator(provided=provided or None).evaluate(expression, data or {})


# --------------------------------------------------------------------------------------------------
# Sentinels: if anything in the evaluator reached eval/exec/compile/os.system/open, we would see it.
# --------------------------------------------------------------------------------------------------


class Calls(list):
    def recorder(self, name: str):
        def record(*args: Any, **kwargs: Any) -> None:
            self.append((name, args, kwargs))

        return record


@contextlib.contextmanager
def sentinels() -> Iterator[Calls]:
    """Record (and neutralise) every dangerous primitive while an expression is evaluated."""
    calls = Calls()
    real_compile = builtins.compile

    def compile_only_ast(source: Any, filename: Any, mode: str, flags: int = 0, *args: Any, **kwargs: Any):
        # ast.parse is allowed (it only builds a tree); compiling to bytecode is not.
        if not flags & ast.PyCF_ONLY_AST:
            calls.append(("compile", (source, mode), {}))
            raise AssertionError("the evaluator compiled code")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "system", calls.recorder("os.system"))
        mp.setattr(os, "popen", calls.recorder("os.popen"))
        mp.setattr(builtins, "open", calls.recorder("open"))
        mp.setattr(builtins, "eval", calls.recorder("eval"))
        mp.setattr(builtins, "exec", calls.recorder("exec"))
        mp.setattr(builtins, "compile", compile_only_ast)
        yield calls


def test_sentinels_would_notice_a_call_to_eval():
    """Guard for the guard: the sentinel really records what a naive evaluator would do."""
    with sentinels() as calls:
        builtins.eval("__import__('os').system('id')")
        os.system("id")
    assert [name for name, _, _ in calls] == ["eval", "os.system"]


# --------------------------------------------------------------------------------------------------
# (a) What the language accepts
# --------------------------------------------------------------------------------------------------

DATA = {
    "accepted": True,
    "modality": "CT",
    "age": 82,
    "weight": 71.5,
    "priority": {"level": 2, "tags": ["night", "head"]},
    "studies": ["CT", "MR", "XR"],
    "note": None,
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # comparisons, chained comparisons
        ("age > 80", True),
        ("age == 82", True),
        ("age != 82", False),
        ("18 <= age < 120", True),
        ("0 < age < 18", False),
        ("note is None", True),
        ("modality is not None", True),
        # boolean logic (with Python's short-circuit values)
        ("accepted and age > 80", True),
        ("not accepted or age > 80", True),
        ("not accepted", False),
        ("note or 'default'", "default"),
        ("accepted and modality", "CT"),
        # literals
        ("'text'", "text"),
        ("42", 42),
        ("1.5", 1.5),
        ("True", True),
        ("None", None),
        ("(1, 'a')", (1, "a")),
        ("[1, 2]", [1, 2]),
        ("{1, 2}", {1, 2}),
        ("{'a': 1}", {"a": 1}),
        # names, subscripts, slices
        ("modality", "CT"),
        ("priority['level']", 2),
        ("priority['tags'][1]", "head"),
        ("studies[-1]", "XR"),
        ("studies[0:2]", ["CT", "MR"]),
        ("modality[0]", "C"),
        # membership, as DMN cells use it
        ("modality in ('CT', 'MR')", True),
        ("modality not in ['CT', 'MR']", False),
        ("'night' in priority['tags']", True),
        ("'level' in priority", True),
        # if-expressions
        ("'vital' if age > 80 else 'urgent'", "vital"),
        # small arithmetic
        ("age + 1", 83),
        ("age - 2", 80),
        ("weight * 2", 143.0),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("2 ** 10", 1024),
        ("-age", -82),
        ("+age", 82),
        ("'ab' * 3", "ababab"),
        ("[0] * 3", [0, 0, 0]),
        ("studies + ['US']", ["CT", "MR", "XR", "US"]),
    ],
)
def test_accepted_expressions_evaluate_like_python(expression, expected):
    with sentinels() as calls:
        result = evaluate(expression, DATA)
    assert result == expected
    assert type(result) is type(expected)
    assert calls == []


def test_provided_escalation_mapping_is_readable():
    assert evaluate('escalation["accept_tier1"]', {}, escalation=ESCALATION) == "PT15M"


def test_provided_mapping_takes_precedence_over_task_data_of_the_same_name():
    """A diagram or a form cannot shadow administrator settings by putting 'escalation' in task data."""
    data = {"escalation": {"accept_tier1": "PT1S"}}
    assert evaluate('escalation["accept_tier1"]', data, escalation=ESCALATION) == "PT15M"


def test_provided_mapping_is_live_and_read_only():
    settings = {"accept_tier1": "PT15M"}
    evaluator = SafeEvaluator(provided={"escalation": MappingProxyType(settings)})
    assert evaluator.evaluate('escalation["accept_tier1"]', {}) == "PT15M"
    settings["accept_tier1"] = "PT5M"  # an administrator changes the setting
    assert evaluator.evaluate('escalation["accept_tier1"]', {}) == "PT5M"
    with pytest.raises(TypeError):
        evaluator.evaluate("escalation", {})["accept_tier1"] = "PT1S"


def test_extra_context_comes_after_provided_mappings_and_before_task_data():
    """SpiffWorkflow passes extra context (e.g. DMN's dmninputexpr, message payloads) to evaluate()."""
    evaluator = SafeEvaluator(provided={"escalation": ESCALATION})
    assert evaluator.evaluate("dmninputexpr == 'CT'", {"dmninputexpr": "MR"}, {"dmninputexpr": "CT"}) is True
    assert evaluator.evaluate('escalation["accept_tier1"]', {}, {"escalation": {"accept_tier1": "PT1S"}}) == "PT15M"


def test_unknown_name_is_an_error_not_a_builtin():
    with pytest.raises(NameError):
        evaluate("len", {})


def test_parsed_trees_are_cached_per_expression():
    evaluator = SafeEvaluator()
    assert evaluator.compile("age > 1") is evaluator.compile("age > 1")


# --------------------------------------------------------------------------------------------------
# (b) Escape attempts: all refused, nothing executed
# --------------------------------------------------------------------------------------------------

# Refused by the static check (parse_expression), i.e. at deployment, before any evaluation.
STATIC_ESCAPES = {
    "import-call": "__import__('os').system('id')",
    "open-file": "open('/etc/passwd').read()",
    "subclasses-via-tuple": "().__class__.__base__.__subclasses__()",
    "subclasses-via-mro": "[].__class__.__mro__[1].__subclasses__()",
    "dunder-attribute": "x.__class__",
    "getattr": "getattr(x, '__class__')",
    "eval": "eval('1')",
    "exec": "exec('1')",
    "lambda": "(lambda: 1)()",
    "list-comprehension-subclasses": "[c for c in ().__class__.__base__.__subclasses__()]",
    "dict-comprehension-globals": "{k: v for k, v in globals().items()}",
    "generator": "(x for x in range(3))",
    "huge-list-comprehension": "[y for y in range(10**9)]",
    "globals": "globals()",
    "locals": "locals()",
    "vars": "vars()",
    "dir": "dir()",
    "builtins-name": "__builtins__",
    "private-name": "_private",
    "f-string": 'f"{x}"',
    "walrus-bare": "x := 1",
    "walrus-parenthesised": "(x := 1)",
    "nested-parentheses-500": "(" * 500 + "1" + ")" * 500,
    "nested-list-300": "[" * 300 + "1" + "]" * 300,
    "nested-list-over-depth-limit": "[" * 60 + "1" + "]" * 60,
    "nested-unary-minus": "-" * 3999 + "1",
    "nested-not": "not " * 999 + "x",
    "ten-thousand-characters": "1 + " * 2499 + "1",
    "long-string-literal": "'" + "a" * (MAX_EXPRESSION_LENGTH + 1) + "'",
    "attribute": "x.y",
    "print-call": "print(1)",
    "len-call": "len(x)",
    "bytes-literal": "b'bytes'",
    "ellipsis": "...",
    "complex-literal": "1j",
    "starred-list": "[*x]",
    "multi-statement": "1; import os",
    "import-statement": "import os",
    "assignment": "x = 1",
    "await": "await x",
    "yield": "(yield)",
    "bitwise-shift": "1 << 100000",
    "matmul": "x @ x",
    "non-text": 42,
}

# Syntactically allowed shapes that must be refused when evaluated (sizes, unpacking).
RUNTIME_ESCAPES = {
    "power-tower": "9**9**9",
    "big-power": "2**10000",
    "negative-big-power": "2**-10000",
    "huge-string-repeat": "'a' * 10**9",
    "huge-string-repeat-reversed": "10**9 * 'a'",
    "huge-list-repeat": "[0] * 10**8",
    "huge-tuple-repeat": "(0,) * 10**8",
    "big-int-product": "(2**64) ** 8 * (2**64) ** 8",
    "dict-unpacking": "{**x}",
}

ALL_ESCAPES = {**STATIC_ESCAPES, **RUNTIME_ESCAPES}


@pytest.mark.parametrize("expression", list(ALL_ESCAPES.values()), ids=list(ALL_ESCAPES))
def test_escape_attempt_is_refused_and_runs_nothing(expression):
    with sentinels() as calls, pytest.raises(REFUSED):
        evaluate(expression, {"x": {"a": 1}, "y": 1})
    assert calls == []


@pytest.mark.parametrize("expression", list(STATIC_ESCAPES.values()), ids=list(STATIC_ESCAPES))
def test_escape_attempt_is_refused_before_evaluation(expression):
    """The deployment check uses parse_expression alone: these never reach the interpreter."""
    with sentinels() as calls, pytest.raises(REFUSED):
        parse_expression(expression)
    assert calls == []


def test_refused_expression_says_which_construct_is_not_allowed():
    with pytest.raises(ExpressionRefused, match="'Call' is not allowed"):
        parse_expression("__import__('os').system('id')")
    with pytest.raises(ExpressionRefused, match="'Attribute' is not allowed"):
        parse_expression("().__class__")
    with pytest.raises(ExpressionRefused, match="leading underscore"):
        parse_expression("__builtins__")


def test_refusal_is_not_cached_as_success():
    evaluator = SafeEvaluator()
    for _ in range(2):
        with pytest.raises(ExpressionRefused):
            evaluator.evaluate("x.__class__", {"x": 1})


@pytest.mark.parametrize(
    "value",
    [print, os, os.system, type, dict, object(), lambda: 1, (n for n in range(1)), b"bytes"],
    ids=["builtin-function", "module", "os.system", "type", "class", "object", "lambda", "generator", "bytes"],
)
def test_task_data_that_is_not_plain_data_cannot_be_used(value):
    data = {"f": value, "holder": {"inner": value}, "items": [value]}
    with sentinels() as calls:
        for expression in ("f", "f == 1", "[f]", "holder['inner']", "items[0]"):
            with pytest.raises(ExpressionRefused):
                evaluate(expression, data)
    assert calls == []


def test_plain_dates_and_durations_from_task_data_may_be_used():
    import datetime as dt

    data = {"due": dt.date(2024, 1, 2), "delay": dt.timedelta(minutes=15)}
    assert evaluate("due + delay", data) == dt.date(2024, 1, 2)  # date + <1 day stays the same date
    assert evaluate("delay * 2", data) == dt.timedelta(minutes=30)


def test_indexing_something_that_is_not_a_container_is_refused():
    with pytest.raises(ExpressionRefused):
        evaluate("s[0]", {"s": {1, 2}})


# Gaps found while writing this suite: they document the expected behaviour and fail today.


def test_percent_formatting_is_bounded_before_allocating():
    """'%999999999s' % '' would allocate ~1 GB before MAX_SEQUENCE_LENGTH is checked (20 MB here)."""
    tracemalloc.start()
    try:
        with pytest.raises(ExpressionRefused):
            evaluate("'%20000000s' % ''")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


def test_nested_repetition_is_bounded():
    """[[0] * 10000] * 10000 passes both checks yet stands for 10**8 elements; one more level makes a
    comparison, repr ('%s' %) or hash (set literal) of it run for hours."""
    with pytest.raises(ExpressionRefused):
        evaluate("[[0] * 10000] * 10000")


def test_dict_unpacking_is_refused_by_the_static_check():
    with pytest.raises(ExpressionRefused):
        parse_expression("{**x}")


# --------------------------------------------------------------------------------------------------
# (c) Through SpiffWorkflow
# --------------------------------------------------------------------------------------------------

GATEWAY_FLOW = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs"
                  targetNamespace="http://telerad.example/tests">
  <bpmn:process id="gateway_flow" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="submit" />
    <bpmn:userTask id="submit" />
    <bpmn:sequenceFlow id="f1" sourceRef="submit" targetRef="gw" />
    <bpmn:exclusiveGateway id="gw" default="f_other" />
    <bpmn:sequenceFlow id="f_match" sourceRef="gw" targetRef="matched">
      <bpmn:conditionExpression>flag == escalation["accept_tier1"]</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_other" sourceRef="gw" targetRef="other" />
    <bpmn:userTask id="matched" />
    <bpmn:userTask id="other" />
  </bpmn:process>
</bpmn:definitions>"""
GATEWAY_BUNDLE = Bundle("gateway_flow", {"gateway_flow.bpmn": GATEWAY_FLOW})


@pytest.fixture
def runtime() -> Runtime:
    return Runtime(provided={"escalation": ESCALATION})


def _submit(runtime: Runtime, data: dict[str, Any]) -> list[str]:
    live = runtime.start(GATEWAY_BUNDLE, {})
    (task,) = live.snapshot().user_tasks
    live.complete_user_task(task.task_id, data)
    return [t.spec_name for t in live.snapshot().user_tasks]


def test_gateway_conditions_are_evaluated_by_the_safe_language(runtime):
    with sentinels() as calls:
        assert _submit(runtime, {"flag": "PT15M"}) == ["matched"]
        assert _submit(runtime, {"flag": "PT1H"}) == ["other"]
    assert calls == []


def test_gateway_refuses_a_function_smuggled_in_task_data(runtime):
    with pytest.raises(WorkflowFailed, match="cannot be used in an expression") as caught:
        _submit(runtime, {"flag": os})
    assert getattr(caught.value.__cause__, "error_type", None) == "ExpressionRefused"


def _ready_task(runtime: Runtime) -> Any:
    live = runtime.start(GATEWAY_BUNDLE, {})
    (info,) = live.snapshot().user_tasks
    return live.ready_user_task(info.task_id)


def test_runtime_uses_the_safe_script_engine(runtime):
    assert isinstance(runtime.script_engine, SafeScriptEngine)
    assert _ready_task(runtime).workflow.script_engine is runtime.script_engine


def test_safe_script_engine_refuses_to_execute_scripts(runtime):
    task = _ready_task(runtime)
    with sentinels() as calls, pytest.raises(WorkflowTaskException) as caught:
        runtime.script_engine.execute(task, "x = 1")
    assert caught.value.error_type == "ExpressionRefused"
    assert "x" not in task.data
    assert calls == []


def test_safe_script_engine_evaluate_refuses_escapes(runtime):
    task = _ready_task(runtime)
    with sentinels() as calls, pytest.raises(WorkflowTaskException) as caught:
        runtime.script_engine.evaluate(task, "__import__('os').system('id')")
    assert caught.value.error_type == "ExpressionRefused"
    assert calls == []


def test_safe_environment_execute_refuses_any_script():
    environment = SafeEnvironment(SafeEvaluator(), OperationRegistry())
    context: dict[str, Any] = {}
    with sentinels() as calls, pytest.raises(ExpressionRefused):
        environment.execute("x = 1", context)
    assert context == {}
    assert calls == []


def test_validate_raises_syntax_error_for_dmn_comparison_cells(runtime):
    """DMN's engine relies on SyntaxError to turn '> 5' into 'input > 5'."""
    with pytest.raises(SyntaxError):
        runtime.script_engine.validate("> 5")
    runtime.script_engine.validate("v > 5")  # the form DMN tries next is accepted


def test_validate_refuses_unsafe_expressions(runtime):
    with pytest.raises(ExpressionRefused):
        runtime.script_engine.validate("__import__('os')")


def test_deserialized_workflow_gets_the_safe_engine_back(runtime):
    """SpiffWorkflow's deserializer restores the eval-based default engine unless we put ours back."""
    live = runtime.start(GATEWAY_BUNDLE, {})
    restored = runtime.load(runtime.dump(live), GATEWAY_BUNDLE)
    assert restored.workflow.script_engine is runtime.script_engine
    (info,) = restored.snapshot().user_tasks
    assert restored.ready_user_task(info.task_id).workflow.script_engine is runtime.script_engine


def test_start_data_is_visible_to_expressions():
    flow = GATEWAY_FLOW.replace('<bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="submit" />',
                                '<bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="gw" />')
    runtime = Runtime(provided={"escalation": ESCALATION})
    live = runtime.start(Bundle("gateway_flow", {"gateway_flow.bpmn": flow}), {"flag": "PT15M"})
    assert [t.spec_name for t in live.snapshot().user_tasks] == ["matched"]
