"""`telerad users ...`: accounts from the command line (first administrator, lost phones, API tokens)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from engine.domain.account_roles import ACCOUNT_ROLES as ROLES
from web.cli.common import CLI_ACTOR, engine_context


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Mot de passe", hide_input=True, confirmation_prompt="Confirmez le mot de passe"))


def _password_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--password-stdin", is_flag=True,
                        help="Lire le mot de passe sur l'entrée standard (une ligne) au lieu de le demander.")(command)


@click.group("users", help="Comptes utilisateurs : création, second facteur, mot de passe, jetons d'API.")
def users() -> None:
    pass


@users.command("create", help="Créer un compte ; affiche le secret TOTP à enregistrer dans une application.")
@click.argument("username")
@click.option("--name", "display_name", required=True, help="Nom affiché (ex. « Dr Jeanne Dupont »).")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(ROLES), help="Rôle (répétable).")
@click.option("--site", "sites", multiple=True, help="Site de rattachement (répétable).")
@_password_option
def create(username: str, display_name: str, roles: tuple[str, ...], sites: tuple[str, ...],
           password_stdin: bool) -> None:
    from engine.services.accounts import create_user, totp_provisioning

    password = _read_password(password_stdin)
    with engine_context() as ctx:
        profile = create_user(ctx, CLI_ACTOR, username, display_name, password, roles, sites)
        secret, uri = totp_provisioning(ctx, profile.username)
    click.echo(f"Compte « {profile.username} » créé (rôles : {', '.join(sorted(profile.roles))}).")
    click.echo(f"Secret TOTP : {secret}")
    click.echo(f"URI otpauth : {uri}")
    click.echo("La personne peut aussi enregistrer son second facteur à sa première connexion "
               "(QR code affiché après le mot de passe).")


@users.command("reset-totp", help="Réinitialiser le second facteur (téléphone perdu) : nouvel enrôlement à la "
                                  "prochaine connexion.")
@click.argument("username")
def reset_totp_command(username: str) -> None:
    from engine.services.accounts import reset_totp

    with engine_context() as ctx:
        reset_totp(ctx, CLI_ACTOR, username)
    click.echo(f"Second facteur de « {username} » réinitialisé : il sera configuré à la prochaine connexion.")


@users.command("set-password", help="Définir un nouveau mot de passe.")
@click.argument("username")
@_password_option
def set_password_command(username: str, password_stdin: bool) -> None:
    from engine.services.accounts import set_password

    password = _read_password(password_stdin)
    with engine_context() as ctx:
        set_password(ctx, CLI_ACTOR, username, password)
    click.echo(f"Mot de passe de « {username} » modifié.")


@users.command("unlock", help="Déverrouiller un compte bloqué après des échecs de connexion.")
@click.argument("username")
def unlock_command(username: str) -> None:
    from engine.services.accounts import unlock_user

    with engine_context() as ctx:
        unlock_user(ctx, CLI_ACTOR, username)
    click.echo(f"Compte « {username} » déverrouillé.")


@users.command("token", help="Émettre un jeton d'API ; il n'est affiché qu'une fois.")
@click.argument("username")
@click.option("--name", required=True, help="Nom du jeton (ex. le système appelant).")
@click.option("--days", type=click.IntRange(1, 365), default=90, show_default=True,
              help="Durée de validité en jours (1 à 365).")
@click.option("--scope", type=click.Choice(["read", "act"]), default="act", show_default=True,
              help="read : lecture seule (GET) ; act : lecture et actions.")
@click.option("--renew", is_flag=True,
              help="Renouveler le jeton actif de ce nom : même valeur, nouvelle expiration dans --days jours.")
@click.option("--revoke", is_flag=True, help="Révoquer le jeton actif de ce nom au lieu d'en émettre un.")
def token(username: str, name: str, days: int, scope: str, renew: bool, revoke: bool) -> None:
    from engine.services.accounts import issue_api_token, revoke_api_token
    from engine.services.token_access import renew_api_token
    from web.shared.formatting import paris_time

    with engine_context() as ctx:
        if revoke:
            revoke_api_token(ctx, username, name, actor=CLI_ACTOR)
            click.echo(f"Jeton « {name} » de « {username} » révoqué.")
            return
        if renew:
            expires = renew_api_token(ctx, CLI_ACTOR, username, name, days)
            click.echo(f"Jeton « {name} » de « {username} » renouvelé : il expire le {paris_time(expires)} "
                       "(heure de Paris). Sa valeur ne change pas.")
            return
        value = issue_api_token(ctx, username, name, actor=CLI_ACTOR, days=days, scope=scope)
    click.echo(value)
    click.echo(f"Conservez ce jeton maintenant : il ne sera plus affiché (seule son empreinte est stockée). "
               f"Il expire dans {days} jours.", err=True)
