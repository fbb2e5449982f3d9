"""Child process for the crash test: completes a task and is SIGKILLed right before the commit."""

from __future__ import annotations

import os
import signal
import sys

from sqlalchemy import event
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.services.bootstrap import build_context
from engine.services.tasks import complete_task
from forms import FormRegistry
from tests.conftest import DATA, engine_test_operations


def main() -> None:
    database_url, task_id = sys.argv[1], sys.argv[2]
    ctx = build_context(database_url, operations=engine_test_operations(), escalation={"review": "PT1H"},
                        forms=FormRegistry([DATA / "forms"]))

    @event.listens_for(Session, "before_commit")
    def die(session: Session) -> None:
        # The engine has run the task and its engine steps and flushed state, index and audit rows.
        print("about to commit", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    actor = Actor("dr.martin", frozenset({"requester"}), frozenset({"site-a"}))
    complete_task(ctx, actor, task_id, {"accepted": True, "urgency": "urgent", "accession_number": "ACC-1"})
    print("committed (should never happen)", flush=True)


if __name__ == "__main__":
    main()
