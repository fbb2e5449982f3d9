"""The pages of the people in a case: the inbox, the case pages, the task forms and the case's images."""

from web.clinical import (
    cases,
    convention_fallback,
    images,
    inbox,
    people,
    reading_stations,
    reports,
    research,
    site_devices,
    site_visits,
    task_context,
    viewer,
    weasis,
    workstations,
)

BLUEPRINTS = (inbox.bp, cases.bp, images.bp, task_context.bp, reports.bp, people.bp, workstations.bp, weasis.bp,
              viewer.bp, site_visits.bp, site_devices.bp, reading_stations.bp, convention_fallback.bp,
              research.bp)
