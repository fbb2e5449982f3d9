"""Authentication and sessions: login with the second factor, logout, language; who the user is on every request
(access), idle timeout, absolute lifetime and role checks; the session cookie (sessions); "Mes sessions" and
the person's API tokens (account)."""

from web.auth import account, views

BLUEPRINTS = (views.bp, account.bp)
