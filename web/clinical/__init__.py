"""The pages of the people in a case: the inbox, the case pages, the task forms and the case's images."""

from web.clinical import cases, images, inbox

BLUEPRINTS = (inbox.bp, cases.bp, images.bp)
