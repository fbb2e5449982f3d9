"""Authentication and sessions: login with the second factor, logout, language; who the user is on every request
(access), idle timeout and role checks; the session cookie (sessions)."""

from web.auth.views import bp

BLUEPRINTS = (bp,)
