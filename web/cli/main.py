"""The `telerad` command: one module of web/cli per command or command group, attached here."""

from __future__ import annotations

import click

from web.cli.audit import audit
from web.cli.charter_packs import charter
from web.cli.conformance import conformance
from web.cli.db import db
from web.cli.demo import demo
from web.cli.diagrams import deploy, validate
from web.cli.dicom import dicom
from web.cli.fees import fees
from web.cli.hl7 import hl7
from web.cli.incidents import incident
from web.cli.indicators import indicators
from web.cli.keys import keys
from web.cli.quality_audits import audit_report
from web.cli.research import research
from web.cli.serve import run, worker
from web.cli.users import users


@click.group(help="Telerad: teleradiology workflows that follow the G4/CNOM charter.")
def main() -> None:
    pass


main.add_command(run)
main.add_command(worker)
main.add_command(db)
main.add_command(deploy)
main.add_command(audit)
main.add_command(keys)
main.add_command(conformance)
main.add_command(indicators)
main.add_command(audit_report)
main.add_command(charter)
main.add_command(demo)
main.add_command(fees)
main.add_command(users)
main.add_command(hl7)
main.add_command(dicom)
main.add_command(validate)
main.add_command(research)
main.add_command(incident)


if __name__ == "__main__":
    main()
