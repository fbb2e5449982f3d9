"""/healthz: database reachable and migrated, scheduler alive."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from web.extensions import telerad

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    ext = telerad(current_app)
    database: dict[str, Any] = {"dialect": ext.ctx.engine.dialect.name}
    try:
        with ext.ctx.read() as session:
            database["revision"] = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        database["ok"] = database["revision"] is not None
    except Exception as err:
        database.update(ok=False, error=err.__class__.__name__)
    scheduler: dict[str, Any] = {"expected": ext.scheduler is not None, "running": False}
    if ext.scheduler is not None:
        state = ext.scheduler.state
        scheduler.update(running=state.running, interval_s=ext.scheduler.interval,
                         last_tick=state.last_tick.isoformat() if state.last_tick else None,
                         last_error=state.last_error, fired_total=state.fired_total)
    scheduler_ok = scheduler["running"] and not scheduler.get("last_error")
    healthy = database["ok"] and (not scheduler["expected"] or scheduler_ok)
    body = {"status": "ok" if healthy else "degraded", "database": database, "scheduler": scheduler}
    return jsonify(body), 200 if healthy else 503
