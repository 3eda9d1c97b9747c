"""``carecompanion team`` and ``coordinator``: organizations, care teams and their members."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from backend import db
from backend.checkins.crisis import set_organization_guidance
from backend.errors import ServiceError
from backend.models.careteam import TeamRole
from backend.services.careteams import add_member, add_team, enroll

team_group = AppGroup("team", help="Organizations and care teams (operators).")
coordinator_group = AppGroup("coordinator", help="Care-team members (operators only).")

CARE_TEAM_ROLES = [role.value for role in TeamRole]


@team_group.command("add")
@click.option("--org", required=True, help="Organization name (created if new).")
@click.option("--name", required=True, help="Team name.")
def team_add(org: str, name: str) -> None:
    """Create a care team."""
    created = add_team(db.session(), org, name)
    db.session.commit()
    click.echo(f"team {created.id}: {name} ({org})")


@team_group.command("enroll")
@click.option("--team-id", required=True, type=int)
@click.option("--patient-id", required=True, type=int)
def team_enroll(team_id: int, patient_id: int) -> None:
    """Enroll a patient on a care team (done by the organization, with consent on file)."""
    try:
        enroll(db.session(), team_id, patient_id)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"patient {patient_id} enrolled on team {team_id}")


@team_group.command("crisis-guidance")
@click.option("--org", required=True, help="Organization name.")
@click.option("--language", help="Language of the text (en, es, …).")
@click.option("--text", help="The guidance, with the organization's crisis numbers.")
@click.option("--clear", is_flag=True, help="Remove the text in --language (all if none).")
def team_crisis_guidance(org: str, language: str | None, text: str | None, clear: bool) -> None:
    """Set the crisis guidance a safety flag shows the organization's patients."""
    if text is not None and (clear or not language):
        raise click.UsageError("--text needs --language, and not --clear")
    try:
        texts = set_organization_guidance(db.session(), org, language, text, clear=clear)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    shown = texts or {"(default)": "US 988 text"}
    for lang, value in shown.items():
        click.echo(f"{org} [{lang}]: {value}")


@coordinator_group.command("add")
@click.option("--uid", required=True, help="The person's Firebase uid.")
@click.option("--email", help="Their email (shown to patients).")
@click.option("--name", required=True, help="Their name (shown to patients).")
@click.option("--team-id", required=True, type=int)
@click.option(
    "--role",
    default="care_coordinator",
    show_default=True,
    type=click.Choice(CARE_TEAM_ROLES),
)
@click.option("--admin", is_flag=True, help="Make them the team's admin (manages members).")
def coordinator_add(
    uid: str, email: str | None, name: str, team_id: int, role: str, admin: bool
) -> None:
    """Add a care-team member; there is no self-service way to become one (a team's admin
    adds members through the API)."""
    try:
        member = add_member(db.session(), team_id, uid, name, email, role, admin=admin)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    admin_note = ", team admin" if member.is_admin else ""
    click.echo(f"{name} is now {role}{admin_note} on team {team_id} (user {member.user_id})")
