"""Errors raised by the engine's use cases, each mapped to a clear answer by the callers."""

from __future__ import annotations

from dataclasses import dataclass


class TeleradError(Exception):
    """Base class of every error the engine raises on purpose."""


class NotFound(TeleradError):
    """The object does not exist, or the actor may not know it exists."""


class Forbidden(TeleradError):
    """The actor may see the object but not do this to it."""


class Conflict(TeleradError):
    """Someone else changed the object first (lost race); retry after reloading."""


@dataclass(frozen=True)
class Finding:
    """One problem found in a diagram, pointing at the element that causes it."""

    element_id: str
    rule: str
    message: str
    file: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"element_id": self.element_id, "rule": self.rule, "message": self.message, "file": self.file}


class DefinitionRefused(TeleradError):
    """A diagram was refused at deployment; `findings` say which element breaks which rule."""

    def __init__(self, findings: list[Finding]):
        self.findings = findings
        summary = "; ".join(f"{f.element_id or '-'}: {f.message}" for f in findings[:5])
        super().__init__(f"Diagramme refusé ({len(findings)} problème(s)) : {summary}")


class ExpressionRefused(TeleradError):
    """An expression uses a construct outside the safe allow-list.

    The message (logged, and carried by runtime failures) stays as it is; `explanation` says the same thing
    in French for process designers, in validation findings. It defaults to the message.
    """

    def __init__(self, message: str, explanation: str = ""):
        super().__init__(message)
        self.explanation = explanation or message


class CharterRefused(Conflict):
    """A change the charter forbids (a hard gate of engine.domain.gates): nothing of it is written.

    `refusals` are (rule id, French reason) pairs; the message says what to do, in French.
    """

    def __init__(self, message: str, refusals: list[tuple[str, str]]):
        super().__init__(message)
        self.refusals = refusals
