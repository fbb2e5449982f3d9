"""The deployed versions of each process as the designer shows them (with how many cases run on each and how
many have finished), and the shape of a comparison between two versions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.store.models import ProcessDefinition, ProcessInstance


@dataclass(frozen=True)
class VersionInfo:
    definition_id: int
    process_id: str
    version: int
    name: str
    content_hash: str
    deployed_at: datetime
    deployed_by: str
    running: int
    finished: int


@dataclass(frozen=True)
class FileComparison:
    name: str
    in_old: bool
    in_new: bool
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]


@dataclass(frozen=True)
class VersionComparison:
    old: VersionInfo
    new: VersionInfo
    files: tuple[FileComparison, ...]


def deployed_versions(session: Session, process_id: str | None = None) -> list[VersionInfo]:
    """Every version (of one process, or of all), by process then newest first."""
    counts: dict[tuple[int, bool], int] = {}
    query = select(ProcessInstance.definition_id, ProcessInstance.status, func.count()).group_by(
        ProcessInstance.definition_id, ProcessInstance.status)
    for definition_id, status, count in session.execute(query):
        key = (definition_id, status == "running")
        counts[key] = counts.get(key, 0) + count
    rows = select(ProcessDefinition.id, ProcessDefinition.process_id, ProcessDefinition.version,
                  ProcessDefinition.name, ProcessDefinition.content_hash, ProcessDefinition.deployed_at,
                  ProcessDefinition.deployed_by).order_by(ProcessDefinition.process_id,
                                                          ProcessDefinition.version.desc())
    if process_id is not None:
        rows = rows.where(ProcessDefinition.process_id == process_id)
    return [VersionInfo(r.id, r.process_id, r.version, r.name, r.content_hash, r.deployed_at, r.deployed_by,
                        counts.get((r.id, True), 0), counts.get((r.id, False), 0)) for r in session.execute(rows)]
