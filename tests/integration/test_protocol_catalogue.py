"""The protocol catalogue in the database (CH-4.1.9, CH-4.1.10): seeded by its migration, edited by administrators
only, each change one audited transaction, deactivated protocols no longer offered."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, func, select, text

from engine.domain.actors import Actor
from engine.domain.protocols import DEFAULT_PROTOCOLS, InvalidProtocol, Protocol
from engine.errors import Forbidden, NotFound
from engine.services import protocols as service
from engine.services.bootstrap import build_context
from engine.services.protocols import list_protocols, protocol_catalogue, protocol_choices, save_protocol, set_active
from engine.store import audit
from engine.store.db import normalise_url
from engine.store.migrate import upgrade
from engine.store.models import AuditEvent
from engine.store.protocol_models import ProtocolRow, seed_default_protocols
from tests.conftest import POSTGRES_URL

ADMIN = Actor("admin", frozenset({"administrator"}))
RADIOLOGIST = Actor("dr.legall", frozenset({"radiologist"}), frozenset({"ch-brest"}))


def reset_catalogue(ctx) -> None:
    """The default catalogue, whatever earlier tests on the shared PostgreSQL database left."""
    with ctx.engine.begin() as connection:
        connection.execute(delete(ProtocolRow))
        seed_default_protocols(connection, at=ctx.clock.now())
    service.invalidate(ctx)


@pytest.fixture
def catalogue_ctx(ctx):
    reset_catalogue(ctx)
    yield ctx
    reset_catalogue(ctx)


def events(ctx, action: str) -> list[tuple[str, dict]]:
    with ctx.read() as session:
        rows = session.execute(select(AuditEvent.actor, AuditEvent.detail).where(AuditEvent.action == action)
                               .order_by(AuditEvent.id)).all()
    return [(actor, json.loads(detail)) for actor, detail in rows]


def row_count(ctx) -> int:
    with ctx.read() as session:
        return session.execute(select(func.count()).select_from(ProtocolRow)).scalar_one()


@pytest.fixture
def fresh_url(database_url, tmp_path: Path):
    """A database just migrated (not one emptied between tests): what an installation starts with."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
        upgrade(url)
        yield url
        return
    name = f"telerad_fresh_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.charter("CH-4.1.9")
def test_the_migration_seeds_the_default_catalogue(fresh_url, clock):
    seeded = build_context(fresh_url, clock=clock)
    try:
        catalogue = protocol_catalogue(seeded)
        assert set(catalogue.protocols) == {p.id for p in DEFAULT_PROTOCOLS}
        assert catalogue.get("ct_head_contrast") == next(p for p in DEFAULT_PROTOCOLS if p.id == "ct_head_contrast")
        assert catalogue.get("mr_brain").patient_groups == ("adult", "child", "pregnant")
        with seeded.read() as session:
            updated_by = set(session.execute(select(ProtocolRow.updated_by)).scalars())
        assert updated_by == {"system"}
    finally:
        seeded.engine.dispose()


@pytest.mark.charter("CH-4.1.9")
def test_an_administrator_creates_and_edits_a_protocol_audited(catalogue_ctx):
    ctx = catalogue_ctx
    created = save_protocol(ctx, ADMIN, Protocol("ct_sinus_plain", " Scanner des sinus ", "ct", "sinus"), create=True)
    assert created == Protocol("ct_sinus_plain", "Scanner des sinus", "CT", "sinus")
    assert protocol_catalogue(ctx).get("ct_sinus_plain") == created  # the cache was dropped
    [(actor, detail)] = events(ctx, "protocol.created")
    assert actor == "admin" and detail["protocol"] == "ct_sinus_plain" and detail["values"]["modality"] == "CT"

    save_protocol(ctx, ADMIN, Protocol("ct_sinus_plain", "Scanner des sinus (coupes fines)", "CT", "sinus",
                                       patient_groups=("adult",)))
    stored = protocol_catalogue(ctx).get("ct_sinus_plain")
    assert stored.label == "Scanner des sinus (coupes fines)" and stored.patient_groups == ("adult",)
    [(_actor, detail)] = events(ctx, "protocol.updated")
    assert detail["before"]["label"] == "Scanner des sinus" and detail["values"]["patient_groups"] == ["adult"]
    with ctx.read() as session:
        row = session.get(ProtocolRow, "ct_sinus_plain")
        assert (row.updated_by, row.updated_at) == ("admin", ctx.clock.now())
        checked, problems = audit.verify(session)
    assert checked >= 2 and problems == []


@pytest.mark.charter("CH-4.1.9", negative=True)
def test_a_non_administrator_cannot_change_the_catalogue(catalogue_ctx):
    ctx = catalogue_ctx
    with pytest.raises(Forbidden, match="administrateur"):
        save_protocol(ctx, RADIOLOGIST, Protocol("ct_own", "Mon protocole", "CT", "tête"), create=True)
    with pytest.raises(Forbidden):
        set_active(ctx, RADIOLOGIST, "ct_head_plain", False)
    assert row_count(ctx) == len(DEFAULT_PROTOCOLS)
    assert protocol_catalogue(ctx).get("ct_head_plain").active
    assert events(ctx, "protocol.created") == [] and events(ctx, "protocol.deactivated") == []


@pytest.mark.charter("CH-4.1.9", negative=True)
@pytest.mark.parametrize(("protocol", "message"), [
    (Protocol("ct head", "Scanner", "CT", "tête"), "Identifiant de protocole invalide"),
    (Protocol("ct_x", "  ", "CT", "tête"), "Le libellé du protocole est obligatoire."),
    (Protocol("ct_x", "Scanner", "ZZ", "tête"), "modalité inconnue"),
    (Protocol("ct_x", "Scanner", "CT", "tête", "barium"), "Classe de produit de contraste inconnue."),
    (Protocol("ct_x", "Scanner", "CT", "tête", patient_groups=()), "Groupes de patients"),
    (Protocol("ct_x", "Scanner", "CT", ""), "La région anatomique est obligatoire"),
    (Protocol("ct_head_plain", "Doublon", "CT", "tête"), "existe déjà"),
])
def test_an_invalid_protocol_is_refused_in_french_and_nothing_is_written(catalogue_ctx, protocol, message):
    ctx = catalogue_ctx
    with pytest.raises(InvalidProtocol, match=message):
        save_protocol(ctx, ADMIN, protocol, create=True)
    assert row_count(ctx) == len(DEFAULT_PROTOCOLS)
    assert events(ctx, "protocol.created") == []


@pytest.mark.charter("CH-4.1.10", negative=True)
def test_the_modality_and_contrast_of_an_existing_protocol_never_change(catalogue_ctx):
    ctx = catalogue_ctx
    with pytest.raises(InvalidProtocol, match="créez un nouveau protocole"):
        save_protocol(ctx, ADMIN, Protocol("ct_head_plain", "Scanner cérébral", "CT", "tête", "iodine"))
    with pytest.raises(InvalidProtocol, match="créez un nouveau protocole"):
        save_protocol(ctx, ADMIN, Protocol("ct_head_plain", "Scanner cérébral", "MR", "tête"))
    with pytest.raises(NotFound):
        save_protocol(ctx, ADMIN, Protocol("ct_unknown", "Scanner", "CT", "tête"), create=False)
    assert protocol_catalogue(ctx).get("ct_head_plain").agent_class is None
    assert events(ctx, "protocol.updated") == []


@pytest.mark.charter("CH-4.1.9")
def test_a_deactivated_protocol_leaves_the_filtered_list_and_is_kept(catalogue_ctx):
    ctx = catalogue_ctx
    case = {"modality": "CT", "justification": "validate"}
    assert "ct_head_contrast" in dict(protocol_choices(ctx, case))
    set_active(ctx, ADMIN, "ct_head_contrast", False)
    assert "ct_head_contrast" not in dict(protocol_choices(ctx, case))
    assert "ct_head_contrast" not in {p.id for p in list_protocols(ctx, "CT")}
    assert protocol_catalogue(ctx).get("ct_head_contrast").active is False  # never deleted
    assert row_count(ctx) == len(DEFAULT_PROTOCOLS)
    set_active(ctx, ADMIN, "ct_head_contrast", False)  # no change: no event
    assert [d for _a, d in events(ctx, "protocol.deactivated")] == [{"protocol": "ct_head_contrast"}]
    set_active(ctx, ADMIN, "ct_head_contrast", True)
    assert "ct_head_contrast" in dict(protocol_choices(ctx, case))
    assert len(events(ctx, "protocol.activated")) == 1
    with pytest.raises(NotFound):
        set_active(ctx, ADMIN, "no_such_protocol", False)


@pytest.mark.charter("CH-4.1.9")
def test_the_choices_follow_the_final_modality_with_french_labels(catalogue_ctx):
    ctx = catalogue_ctx
    requested = dict(protocol_choices(ctx, {"modality": "CT"}))
    assert requested and all(key.startswith("ct_") for key in requested)
    assert requested["ct_chest_angio"] == "Angioscanner thoracique (embolie pulmonaire) — injection : produit de " \
                                          "contraste iodé"
    assert requested["ct_head_plain"] == "Scanner cérébral sans injection"
    substituted = dict(protocol_choices(ctx, {"modality": "CT", "justification": "substitute",
                                              "substitute_modality": "US"}))
    assert set(substituted) == {"us_abdomen", "us_pelvis"}
    modified = dict(protocol_choices(ctx, {"modality": "CT", "justification": "modify", "modified_modality": "MR"}))
    assert set(modified) == {"mr_brain", "mr_brain_gadolinium", "mr_spine"}
    # A modification left over from an earlier round does not count once the radiologist validated
    assert set(dict(protocol_choices(ctx, {"modality": "XR", "justification": "validate",
                                           "modified_modality": "MR"}))) == {"xr_chest", "xr_limb"}


def test_another_process_sees_a_change_within_the_cache_delay(catalogue_ctx, make_ctx, monkeypatch):
    ctx, other = catalogue_ctx, make_ctx()
    assert protocol_catalogue(other).get("xr_limb").active
    set_active(ctx, ADMIN, "xr_limb", False)
    monkeypatch.setattr(service, "CACHE_TTL", 0.0)
    assert protocol_catalogue(other).get("xr_limb").active is False
