"""The roles of people in Telerad: what an account may hold, and which of them a diagram's lane may name."""

from __future__ import annotations

ACCOUNT_ROLES = ("requester", "technologist", "radiologist", "local_radiologist", "tele_expert", "site_lead",
                 "process_designer", "administrator", "auditor", "researcher")
# Roles whose holders take part in a case: a lane of a diagram names one of them (the others run the platform).
LANE_ROLES = frozenset({"requester", "technologist", "radiologist", "local_radiologist", "tele_expert", "site_lead"})
