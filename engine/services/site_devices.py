"""The imaging devices of each site and their validation (CH-5.6, CH-5.2): the radiologist validates beforehand the
imaging devices of the sites he serves. A device is recorded (modality, manufacturer and model, serial number or
inventory id, date put in service) by an administrator, the site's medical lead or a radiologist bound to the
site; it is validated only by a radiologist bound to the site by an active convention, in his own name (date,
remarks). A device not yet validated is shown as such. Every change is one audited transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.data_checks import paris_date
from engine.domain.protocols import MODALITY_LABELS, modality_label
from engine.errors import Forbidden, NotFound
from engine.services.audit import record_global_event
from engine.services.context import EngineContext
from engine.services.site_quality_access import (
    MAX_TEXT,
    SiteQualityError,
    bindings,
    clean_text,
    is_radiologist,
    names_of,
    parse_day,
    require_any_role,
    require_site_visible,
    site_names,
    visible_sites,
)
from engine.store.site_quality_models import SiteDeviceRow

MODALITIES = tuple(MODALITY_LABELS)


@dataclass(frozen=True)
class DeviceView:
    id: int
    site_id: str
    site_name: str
    modality: str
    modality_label: str
    manufacturer: str
    model: str
    serial: str
    installed_on: date
    validated_on: date | None
    validated_by: str | None
    validator_name: str | None
    validation_remarks: str | None
    may_validate: bool = False

    @property
    def validated(self) -> bool:
        return self.validated_on is not None


@enforces("CH-5.6")
def add_device(ctx: EngineContext, actor: Actor, site_id: str, modality: str, manufacturer: str, model: str,
               serial: str, installed_on: object) -> int:
    """Record an imaging device of a site (not yet validated)."""
    require_any_role(actor)
    modality = str(modality or "").strip().upper()
    if modality not in MODALITIES:
        raise SiteQualityError("Modalité : choisissez une modalité de la liste.", "modality")
    maker = clean_text(manufacturer, "Fabricant", "manufacturer")
    name = clean_text(model, "Modèle", "model")
    number = clean_text(serial, "Numéro de série ou d'inventaire", "serial", limit=100)
    day = parse_day(installed_on, "Date de mise en service", "installed_on", paris_date(ctx.clock.now()))
    now = ctx.clock.now()
    day_now = paris_date(now)
    with ctx.write() as session:
        require_site_visible(session, actor, site_id, day_now)
        row = SiteDeviceRow(site_id=site_id, modality=modality, manufacturer=maker, model=name, serial=number,
                            installed_on=day, created_by=actor.user_id, created_at=now)
        session.add(row)
        session.flush()
        record_global_event(session, actor.user_id, "site_device.added", {
            "device": row.id, "site": site_id, "modality": modality, "manufacturer": maker, "model": name,
            "serial": number, "installed_on": day.isoformat()}, now)
        session.commit()
        return row.id


@enforces("CH-5.6")
def validate_device(ctx: EngineContext, actor: Actor, device_id: int, validated_on: object, remarks: object) -> None:
    """The validation of a device by the radiologist acting, bound to its site by an active convention. Validated
    again (after a change of the device), the new validation replaces the former, both kept in the audit trail."""
    today = paris_date(ctx.clock.now())
    with ctx.read() as session:
        row = session.get(SiteDeviceRow, device_id)
        if row is None:
            raise NotFound("Appareil introuvable.")
        require_site_visible(session, actor, row.site_id, today)  # someone else's site: refused, nothing said of it
        site_id, installed_on = row.site_id, row.installed_on
        bound = (site_id, actor.user_id) in bindings(session, today, site_id=site_id, radiologist=actor.user_id)
    if not is_radiologist(actor) or not bound:
        raise Forbidden("Seul un radiologue lié à ce site par une convention active valide ses appareils.")
    day = parse_day(validated_on, "Date de validation", "validated_on", today)
    if day < installed_on:
        raise SiteQualityError("Date de validation : elle ne peut précéder la mise en service de l'appareil.",
                               "validated_on")
    text = clean_text(remarks, "Remarques", "remarks", required=False, limit=MAX_TEXT)
    now = ctx.clock.now()
    with ctx.write() as session:
        row = session.get(SiteDeviceRow, device_id)
        if row is None:
            raise NotFound("Appareil introuvable.")
        before = {"validated_on": row.validated_on.isoformat() if row.validated_on else None,
                  "validated_by": row.validated_by}
        row.validated_on, row.validated_by, row.validation_remarks = day, actor.user_id, text or None
        row.validation_recorded_at = now
        record_global_event(session, actor.user_id, "site_device.validated", {
            "device": device_id, "site": site_id, "validated_on": day.isoformat(), "before": before}, now)
        session.commit()


def list_devices(ctx: EngineContext, actor: Actor, site_id: str | None = None) -> list[DeviceView]:
    """The devices of the sites the actor may see, by site then modality; `may_validate` for a radiologist bound
    to the device's site."""
    require_any_role(actor)
    today = paris_date(ctx.clock.now())
    with ctx.read() as session:
        sites = visible_sites(session, actor, today)
        query = select(SiteDeviceRow).order_by(SiteDeviceRow.site_id, SiteDeviceRow.modality, SiteDeviceRow.id)
        if sites is not None:
            query = query.where(SiteDeviceRow.site_id.in_(sorted(sites) or [""]))
        if site_id:
            query = query.where(SiteDeviceRow.site_id == site_id)
        rows = session.execute(query).scalars().all()
        names = names_of(session, [r.validated_by for r in rows if r.validated_by])
        places = site_names(session, [r.site_id for r in rows])
        mine = ({site for site, _user in bindings(session, today, radiologist=actor.user_id)}
                if is_radiologist(actor) else set())
    return [DeviceView(r.id, r.site_id, places.get(r.site_id, r.site_id), r.modality, modality_label(r.modality),
                       r.manufacturer, r.model, r.serial, r.installed_on, r.validated_on, r.validated_by,
                       names.get(r.validated_by or "", r.validated_by), r.validation_remarks,
                       r.site_id in mine) for r in rows]


def device_sites(ctx: EngineContext, actor: Actor) -> list[tuple[str, str]]:
    """(id, name) of the sites where the actor may record a device."""
    require_any_role(actor)
    with ctx.read() as session:
        sites = visible_sites(session, actor, paris_date(ctx.clock.now()))
        names = site_names(session, None if sites is None else sites)
    return sorted(names.items(), key=lambda item: item[1])
