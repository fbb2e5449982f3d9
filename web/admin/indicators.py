"""The quality indicators dashboard (CH-6.3, CH-4.1.12, CH-5.4): administrators and auditors see every site, a
site's medical lead (site_lead) only his own site(s): the scope is checked on the server for the page and the CSV,
and a site filter naming another site is refused (403). The filters live in the address (period, site, territory,
radiologist, urgency level, modality); a value the page does not offer is a French 400 page.

The figures come from engine.services.indicators (SQL aggregates); the page draws them with Chart.js
(web/static/js/indicators.js reads them from a JSON block, no inline script) beside tables that carry the same
numbers for those who do not read charts."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_babel import gettext as _
from flask_login import login_required

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.urgency import LEVELS
from engine.services.indicators import (
    MODALITIES,
    FilterChoices,
    IndicatorError,
    IndicatorFilters,
    compute_indicators,
    filter_choices,
)
from engine.services.site_visits import overdue_visits
from web.auth.access import current_actor, roles_required
from web.extensions import telerad
from web.shared.formatting import PARIS
from web.shared.indicator_labels import (
    MODALITY_LABELS,
    REASON_LABELS,
    TIER_LABELS,
    URGENCY_LABELS,
    bucket_labels,
    minutes,
    share,
    summary_rows,
)

bp = Blueprint("indicators", __name__, url_prefix="/admin/indicators")
ROLES = ("administrator", "auditor", "site_lead")
WIDE_ROLES = ("administrator", "auditor")
DEFAULT_DAYS = 28


class BadFilter(ValueError):
    """A filter of the address the page does not offer (French message)."""


@dataclass(frozen=True)
class Scope:
    """What the person may see: every site (sites None) or only these."""

    sites: frozenset[str] | None


def scope_of(actor: Actor) -> Scope:
    return Scope(None if set(actor.roles) & set(WIDE_ROLES) else frozenset(actor.sites))


@enforces("CH-6.3")
def scoped_filters(actor: Actor, filters: IndicatorFilters,
                   territory_of: Callable[[str], str | None] = lambda _site: None) -> IndicatorFilters:
    """The filters within what the actor may see: a site lead is kept to his own site (his first one when the
    address names none); another site, or a territory that is not his site's (its on-call coverage), is refused
    (403)."""
    scope = scope_of(actor)
    if scope.sites is None:
        return filters
    if not scope.sites:
        abort(403)
    if filters.site_id is None:
        filters = replace(filters, site_id=sorted(scope.sites)[0])
    if filters.site_id not in scope.sites:
        abort(403)
    if filters.territory_id is not None and filters.territory_id != territory_of(filters.site_id or ""):
        abort(403)
    return filters


def parse_filters(args: Mapping[str, str], today: date, choices: FilterChoices) -> IndicatorFilters:
    """The filters of the address; an empty value means "all". Raises BadFilter."""
    def day(name: str, default: date) -> date:
        value = (args.get(name) or "").strip()
        if not value:
            return default
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise BadFilter(_("Date invalide : utilisez le format AAAA-MM-JJ.")) from None

    def pick(name: str, allowed: list[str] | tuple[str, ...], label: str) -> str | None:
        value = (args.get(name) or "").strip()
        if not value:
            return None
        if value not in allowed:
            raise BadFilter(_("Valeur de filtre inconnue pour « %(label)s » : choisissez dans la liste.", label=label))
        return value

    end = day("to", today)
    try:
        start = day("from", end - timedelta(days=DEFAULT_DAYS - 1))
    except OverflowError:
        raise BadFilter(_("Date invalide : utilisez le format AAAA-MM-JJ.")) from None
    return IndicatorFilters(
        start, end, site_id=pick("site", [s for s, _ in choices.sites], _("Site")),
        territory_id=pick("territory", [t for t, _ in choices.territories], _("Territoire")),
        radiologist=pick("radiologist", [r for r, _ in choices.radiologists], _("Radiologue")),
        urgency=pick("urgency", LEVELS, _("Urgence")), modality=pick("modality", MODALITIES, _("Modalité")))


def _load() -> tuple[Any, IndicatorFilters, FilterChoices, Scope]:
    ctx, actor = telerad(current_app).ctx, current_actor()
    choices = filter_choices(ctx)
    filters = parse_filters(request.args, ctx.clock.now().astimezone(PARIS).date(), choices)
    filters = scoped_filters(actor, filters, lambda site_id: _territory_of(ctx, site_id))
    return ctx, filters, choices, scope_of(actor)


def _territory_of(ctx: Any, site_id: str) -> str | None:
    site = ctx.directory.site(site_id) if ctx.directory is not None else None
    return site.territory_id if site is not None else None


def _bad(message: str) -> Any:
    return render_template("admin/indicators/bad_filter.html", message=message), 400


@bp.get("")
@login_required
@roles_required(*ROLES)
def index() -> Any:
    try:
        ctx, filters, choices, scope = _load()
        figures = compute_indicators(ctx, filters)
    except (BadFilter, IndicatorError) as err:
        return _bad(str(err))
    if scope.sites is not None:
        choices = FilterChoices([s for s in choices.sites if s[0] in scope.sites], choices.territories,
                                choices.radiologists)
    buckets = bucket_labels(figures["turnaround_buckets_minutes"])
    chart_data = {
        "buckets": buckets, "distribution": figures["turnaround"]["distribution_by_urgency"],
        "levels": {level: str(URGENCY_LABELS[level]) for level in LEVELS}, "order": list(LEVELS),
        "within": {level: figures["turnaround"]["by_urgency"][level]["within_share"] for level in LEVELS},
        "weeks": [week["week_start"] for week in figures["weekly"]],
        "weekly_requests": [week["requests"] for week in figures["weekly"]],
        "weekly_within": [week["within_share"] for week in figures["weekly"]],
        "labels": {"requests": _("Demandes"), "within": _("Part dans le délai (%)"),
                   "released": _("Comptes-rendus diffusés"), "share": _("Part dans le délai")},
    }
    args = {key: value for key, value in request.args.items() if value}
    today = ctx.clock.now().astimezone(PARIS).date()
    visits = overdue_visits(ctx, today, site_id=filters.site_id, radiologist=filters.radiologist)  # CH-5.6
    return render_template(
        "admin/indicators/index.html", figures=figures, filters=filters, choices=choices, chart_data=chart_data,
        buckets=buckets, rows=summary_rows(figures), urgency_labels=URGENCY_LABELS, modality_labels=MODALITY_LABELS,
        tier_labels=TIER_LABELS, reason_labels=REASON_LABELS, minutes=minutes, share=share, levels=LEVELS,
        modalities=MODALITIES, wide=scope.sites is None, args=args, overdue_visits=visits)


@bp.get("/export.csv")
@login_required
@roles_required(*ROLES)
def export() -> Any:
    try:
        ctx, filters, _choices, _scope = _load()
        figures = compute_indicators(ctx, filters)
    except (BadFilter, IndicatorError) as err:
        return _bad(str(err))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow([_("Période"), filters.start.isoformat(), filters.end.isoformat()])
    for key, value in figures["filters"].items():
        writer.writerow([_("Filtre"), key, value])
    writer.writerow([_("Rubrique"), _("Indicateur"), _("Valeur")])
    writer.writerows(summary_rows(figures))
    writer.writerow([])
    writer.writerow([_("Semaine"), _("Demandes"), _("Comptes-rendus diffusés"), _("Part dans le délai"),
                     _("Délai moyen (min)")])
    for week in figures["weekly"]:
        writer.writerow([week["week_start"], week["requests"], week["released"],
                         "" if week["within_share"] is None else week["within_share"],
                         "" if week["mean_turnaround_minutes"] is None else week["mean_turnaround_minutes"]])
    writer.writerow([])
    writer.writerow([_("Délai demande → diffusion"), *[str(URGENCY_LABELS[level]) for level in LEVELS]])
    distribution = figures["turnaround"]["distribution_by_urgency"]
    for index, label in enumerate(bucket_labels(figures["turnaround_buckets_minutes"])):
        writer.writerow([label, *[distribution[level][index] for level in LEVELS]])
    name = f"indicateurs-{filters.start.isoformat()}-{filters.end.isoformat()}.csv"
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
