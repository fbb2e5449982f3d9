"""The documents of a convention: the CME validation, the G4 and the Medical Council approvals (CH-3.4) and the
remuneration document with the approver's declaration that it holds no productivity and no exclusivity clause
(CH-6.4).

Uploaded by administrators, limited like case attachments (20 MB), accepted only as PDF, JPEG or PNG recognised
from their first bytes (the browser's word is not trusted), stored in the database with the row that records them
(one transaction: a refused or failed upload leaves nothing behind). Read only by administrators, auditors and the
medical leads of the convention's site; every read is in the audit chain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.convention_content import DOCUMENT_KINDS, DOCUMENT_LABELS, REMUNERATION
from engine.errors import Forbidden, NotFound
from engine.services.context import EngineContext
from engine.services.directory import DirectoryError
from engine.store import audit
from engine.store.convention_models import ConventionDocument
from engine.store.directory_models import ConventionRow, User, UserRole, UserSite

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024  # as case attachments (engine.services.cases.MAX_ATTACHMENT_BYTES)
SIGNATURES = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))
READERS = frozenset({"administrator", "auditor"})


@dataclass(frozen=True)
class DocumentInfo:
    id: int
    kind: str
    filename: str
    content_type: str
    size: int
    uploaded_by: str
    uploaded_at: datetime
    current: bool  # the latest of its kind: the one in force


def sniffed_type(content: bytes) -> str | None:
    """The document's type from its first bytes (PDF, PNG, JPEG), None for anything else."""
    return next((kind for magic, kind in SIGNATURES if content.startswith(magic)), None)


@enforces("CH-3.4", "CH-6.4")
def store_document(ctx: EngineContext, actor: Actor, convention_id: int, kind: str, filename: str, content: bytes,
                   *, no_productivity_or_exclusivity: bool = False) -> int:
    """Add a document of this kind (the latest of a kind is the one in force); its id."""
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur peut déposer les documents d'une convention.")
    if kind not in DOCUMENT_KINDS:
        raise DirectoryError("Type de document inconnu : choisissez la CME, le G4, le conseil de l'Ordre ou la "
                             "rémunération.")
    name = PurePath((filename or "").replace("\\", "/")).name.strip()[:255]
    if not name:
        raise DirectoryError("Choisissez le fichier du document.")
    if not content:
        raise DirectoryError("Le fichier est vide.")
    if len(content) > MAX_DOCUMENT_BYTES:
        raise DirectoryError(f"Le fichier est trop volumineux : {MAX_DOCUMENT_BYTES // (1024 * 1024)} Mo au plus.")
    content_type = sniffed_type(content)
    if content_type is None:
        raise DirectoryError("Type de fichier non accepté : déposez un PDF, une image JPEG ou PNG (le contenu du "
                             "fichier est vérifié, pas seulement son nom).")
    if kind == REMUNERATION and not no_productivity_or_exclusivity:
        raise DirectoryError("Confirmez que le document de rémunération ne contient ni clause de productivité ni "
                             "clause d'exclusivité (CH-6.4) : sans cette déclaration, il n'est pas enregistré.")
    now = ctx.clock.now()
    digest = hashlib.sha256(content).hexdigest()
    with ctx.write() as session:
        row = session.execute(select(ConventionRow).where(ConventionRow.id == convention_id)
                              .with_for_update()).scalar_one_or_none()
        if row is None:
            raise DirectoryError(f"Convention inconnue : n° {convention_id}.")
        document = ConventionDocument(convention_id=convention_id, kind=kind, filename=name,
                                      content_type=content_type, size=len(content), sha256=digest, content=content,
                                      uploaded_by=actor.user_id, uploaded_at=now)
        session.add(document)
        if kind == REMUNERATION:  # CH-6.4: the approver's declaration, with who and when
            row.remuneration_declared_by, row.remuneration_declared_at = actor.user_id, now
        session.flush()
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "convention.document_added", None, {
            "convention": convention_id, "site": row.site_id, "kind": kind, "document": document.id,
            "filename": name, "sha256": digest, "size": len(content),
            **({"no_productivity_or_exclusivity": True} if kind == REMUNERATION else {})})], now)
        session.commit()
        return int(document.id)


def list_documents(ctx: EngineContext, actor: Actor, convention_id: int) -> list[DocumentInfo]:
    """The convention's documents, newest first within each kind (without their content)."""
    with ctx.read() as session:
        site_id = session.execute(select(ConventionRow.site_id).where(ConventionRow.id == convention_id)).scalar()
        if site_id is None:
            raise NotFound("convention introuvable")
        _check_reader(session, actor, site_id)
        rows = session.execute(
            select(ConventionDocument.id, ConventionDocument.kind, ConventionDocument.filename,
                   ConventionDocument.content_type, ConventionDocument.size, ConventionDocument.uploaded_by,
                   ConventionDocument.uploaded_at)
            .where(ConventionDocument.convention_id == convention_id)
            .order_by(ConventionDocument.kind, ConventionDocument.id.desc())).all()
    seen: set[str] = set()
    found = []
    for r in sorted(rows, key=lambda r: (DOCUMENT_KINDS.index(r.kind) if r.kind in DOCUMENT_KINDS else 9, -r.id)):
        found.append(DocumentInfo(r.id, r.kind, r.filename, r.content_type, r.size, r.uploaded_by, r.uploaded_at,
                                  r.kind not in seen))
        seen.add(r.kind)
    return found


def document_content(ctx: EngineContext, actor: Actor, convention_id: int,
                     document_id: int) -> tuple[bytes, str, str]:
    """(content, filename, content type) of a document, for an administrator, an auditor or a medical lead of the
    convention's site (Forbidden otherwise); the read is audited."""
    with ctx.write() as session:
        document = session.get(ConventionDocument, document_id)
        if document is None or document.convention_id != convention_id:
            raise NotFound("document introuvable")
        site_id = session.execute(select(ConventionRow.site_id).where(ConventionRow.id == convention_id)).scalar_one()
        _check_reader(session, actor, site_id)
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "convention.document_read", None, {
            "convention": convention_id, "document": document_id, "kind": document.kind})], ctx.clock.now())
        session.commit()
        return bytes(document.content), document.filename, document.content_type


def document_label(kind: str) -> str:
    return DOCUMENT_LABELS.get(kind, kind)


def _check_reader(session: Session, actor: Actor, site_id: str) -> None:
    if actor.is_system or READERS & actor.roles:
        return
    if "site_lead" in actor.roles:
        lead = session.execute(
            select(UserSite.site_id).join(UserRole, UserRole.username == UserSite.username)
            .join(User, User.username == UserSite.username)
            .where(UserSite.username == actor.user_id, UserSite.site_id == site_id, UserRole.role == "site_lead",
                   User.active.is_(True))).first()
        if lead is not None:
            return
    raise Forbidden("Les documents d'une convention sont réservés aux administrateurs, aux auditeurs et aux "
                    "médecins responsables de son site.")
