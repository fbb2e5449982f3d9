"""Conventions for tests: complete one (content, documents, declaration) as the demo does, then activate it."""

from __future__ import annotations

from dataclasses import replace

from engine.domain.actors import Actor
from engine.domain.convention_content import DOCUMENT_KINDS, REMUNERATION
from engine.services.context import EngineContext
from engine.services.convention_documents import store_document
from engine.services.conventions import update_convention_content
from engine.services.directory import create_convention, update_convention
from web.cli.demo_conventions import demo_content, demo_pdf

ADMIN = Actor("admin", frozenset({"administrator"}))


def fill_convention(ctx: EngineContext, number: int, lead: str, *, site_id: str = "ch-brest",
                    skip: tuple[str, ...] = ()) -> None:
    """Give the convention the demo's content with `lead` as its medical lead and its four documents, except the
    content fields and document kinds named in `skip`."""
    content = replace(demo_content(ctx, "ch-brest" if site_id not in ("ch-morlaix", "clinique-landerneau")
                                   else site_id), medical_lead=lead)
    blanks = {name: (None if name.endswith(("_on", "_mbps", "_hours")) or name == "medical_lead" else "")
              for name in skip if hasattr(content, name)}
    update_convention_content(ctx, ADMIN, number, replace(content, **blanks))
    for kind in DOCUMENT_KINDS:
        if kind not in skip:
            store_document(ctx, ADMIN, number, kind, f"{kind}.pdf", demo_pdf(kind),
                           no_productivity_or_exclusivity=kind == REMUNERATION)


def complete_convention(ctx: EngineContext, site_id: str, members: tuple[str, ...], lead: str) -> int:
    """A new convention of the site, complete and active; its number."""
    number = create_convention(ctx, ADMIN, site_id, members, cme_validated=False, approved_by_g4=False,
                               approved_by_council=False)
    fill_convention(ctx, number, lead, site_id=site_id)
    update_convention(ctx, ADMIN, number, members, cme_validated=True, approved_by_g4=True, approved_by_council=True,
                      external_allowed=False, tiers="1,2,3")
    return number
