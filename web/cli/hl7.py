"""`telerad hl7 ...`: who may send HL7 orders, where reports go, and the report outbox, from the command line."""

from __future__ import annotations

import json

import click

from integrations.hl7.senders import OUT_CHARSETS, Hl7ConfigError
from web.cli.common import CLI_ACTOR, engine_context


@click.group("hl7", help="Échanges HL7 : expéditeurs autorisés, destination des comptes rendus, file d'envoi.")
def hl7() -> None:
    pass


@hl7.group("sender", help="Expéditeurs (MSH-3 / MSH-4) autorisés à envoyer des commandes pour un site.")
def sender() -> None:
    pass


_SOURCES_HELP = "Adresses IP ou réseaux CIDR autorisés, séparés par des virgules (vide : toute adresse)."
_CERT_HELP = "Nom (CN ou nom DNS) du certificat client TLS exigé (vide : aucun)."


@sender.command("add", help="Rattacher un couple application / établissement émetteur à un site.")
@click.argument("site")
@click.argument("application")
@click.argument("facility")
@click.option("--allowed-sources", default="", help=_SOURCES_HELP)
@click.option("--client-cert-name", default="", help=_CERT_HELP)
def sender_add(site: str, application: str, facility: str, allowed_sources: str, client_cert_name: str) -> None:
    from integrations.hl7.senders import add_sender

    with engine_context() as ctx:
        try:
            add_sender(ctx, CLI_ACTOR, site, application, facility, allowed_sources=allowed_sources or None,
                       client_cert_name=client_cert_name or None)
        except Hl7ConfigError as err:
            raise click.ClickException(str(err)) from err
    click.echo(f"{application}/{facility} rattaché au site {site} : ses messages sont acceptés.")


@sender.command("access", help="Définir d'où un expéditeur peut se connecter et le certificat client qu'il doit "
                                "présenter (options vides : aucune restriction).")
@click.argument("application")
@click.argument("facility")
@click.option("--allowed-sources", default="", help=_SOURCES_HELP)
@click.option("--client-cert-name", default="", help=_CERT_HELP)
def sender_access(application: str, facility: str, allowed_sources: str, client_cert_name: str) -> None:
    from integrations.hl7.senders import list_senders, set_sender_access

    with engine_context() as ctx:
        found = [s for s in list_senders(ctx) if (s.sending_application, s.sending_facility) == (application, facility)]
        if not found:
            raise click.ClickException(f"Expéditeur inconnu : {application}/{facility}.")
        try:
            set_sender_access(ctx, CLI_ACTOR, found[0].id, allowed_sources or None, client_cert_name or None)
        except Hl7ConfigError as err:
            raise click.ClickException(str(err)) from err
    click.echo(f"{application}/{facility} : restrictions de connexion enregistrées.")


@sender.command("remove", help="Retirer un expéditeur : ses messages seront refusés (AR).")
@click.argument("application")
@click.argument("facility")
def sender_remove(application: str, facility: str) -> None:
    from integrations.hl7.senders import list_senders, remove_sender

    with engine_context() as ctx:
        found = [s for s in list_senders(ctx) if (s.sending_application, s.sending_facility) == (application, facility)]
        if not found:
            raise click.ClickException(f"Expéditeur inconnu : {application}/{facility}.")
        remove_sender(ctx, CLI_ACTOR, found[0].id)
    click.echo(f"{application}/{facility} retiré.")


@sender.command("list", help="Lister les expéditeurs autorisés.")
@click.option("--json", "as_json", is_flag=True,
              help='Afficher [{"site", "application", "facility", "allowed_sources", "client_cert_name"}].')
def sender_list(as_json: bool) -> None:
    from integrations.hl7.senders import list_senders

    with engine_context() as ctx:
        senders = list_senders(ctx)
    if as_json:
        click.echo(json.dumps([{"site": s.site_id, "application": s.sending_application,
                                "facility": s.sending_facility, "allowed_sources": s.allowed_sources,
                                "client_cert_name": s.client_cert_name} for s in senders]))
        return
    for s in senders:
        limits = [f"adresses {s.allowed_sources}"] if s.allowed_sources else []
        limits += [f"certificat {s.client_cert_name}"] if s.client_cert_name else []
        click.echo(f"{s.site_id:<24} {s.sending_application:<20} {s.sending_facility:<20} {', '.join(limits)}".rstrip())
    if not senders:
        click.echo("Aucun expéditeur : tous les messages sont refusés.")


@hl7.group("endpoint", help="Destination MLLP des comptes rendus (ORU^R01) d'un site.")
def endpoint() -> None:
    pass


@endpoint.command("set", help="Définir (ou remplacer) la destination des comptes rendus d'un site.")
@click.argument("site")
@click.argument("host")
@click.argument("port", type=click.IntRange(1, 65535))
@click.option("--application", default="", help="Application destinataire (MSH-5).")
@click.option("--facility", default="", help="Établissement destinataire (MSH-6).")
@click.option("--charset", type=click.Choice(OUT_CHARSETS), default="UNICODE UTF-8", show_default=True,
              help="Jeu de caractères (MSH-18) attendu par le RIS.")
@click.option("--inactive", is_flag=True, help="Suspendre les envois (ils restent dans la file).")
def endpoint_set(site: str, host: str, port: int, application: str, facility: str, charset: str,
                 inactive: bool) -> None:
    from integrations.hl7.senders import set_endpoint

    with engine_context() as ctx:
        try:
            set_endpoint(ctx, CLI_ACTOR, site, host, port, receiving_application=application,
                         receiving_facility=facility, charset=charset, active=not inactive)
        except Hl7ConfigError as err:
            raise click.ClickException(str(err)) from err
    click.echo(f"Comptes rendus du site {site} : {host}:{port} ({charset}){' — suspendu' if inactive else ''}.")


@endpoint.command("list", help="Lister les destinations.")
def endpoint_list() -> None:
    from integrations.hl7.senders import list_endpoints

    with engine_context() as ctx:
        for e in list_endpoints(ctx):
            click.echo(f"{e.site_id:<24} {e.host}:{e.port:<6} {e.receiving_application}/{e.receiving_facility} "
                       f"{e.charset}{'' if e.active else ' (suspendu)'}")


@hl7.group("outbox", help="File des comptes rendus à envoyer.")
def outbox_group() -> None:
    pass


@outbox_group.command("list", help="Afficher la file (échecs d'abord).")
@click.option("--status", type=click.Choice(("pending", "sent", "failed")), default=None)
def outbox_list(status: str | None) -> None:
    from integrations.hl7.queries import outbox

    with engine_context() as ctx:
        for row in outbox(ctx, status):
            click.echo(f"#{row.id:<6} dossier {row.case_id:<8} {row.status:<8} tentatives {row.attempts:<3} "
                       f"{row.next_attempt_at:%Y-%m-%d %H:%M:%S}Z {row.last_error or ''}")


@outbox_group.command("retry", help="Relancer maintenant les envois en échec (tous, ou un seul avec --id).")
@click.option("--id", "row_id", type=int, default=None, help="Numéro de la ligne de la file.")
@click.option("--deliver", is_flag=True, help="Envoyer aussitôt depuis cette commande, sans attendre le service.")
def outbox_retry(row_id: int | None, deliver: bool) -> None:
    from integrations.hl7.outbox import deliver_pending, retry_now

    with engine_context() as ctx:
        count = retry_now(ctx, CLI_ACTOR, row_id)
        click.echo(f"{count} envoi(s) en échec remis en file.")
        if deliver:
            report = deliver_pending(ctx)
            click.echo(f"{report.sent} envoyé(s), {report.failed} en échec.")
