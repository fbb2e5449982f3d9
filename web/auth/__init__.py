"""Authentication and sessions: login with the second factor, logout, language; who the user is on every request
(access), idle timeout, absolute lifetime and role checks; the session cookie (sessions); "Mes sessions" and
the person's API tokens (account); "Mes notifications", the person's email, phone and preferences
(notification_settings)."""

from web.auth import account, notification_settings, teleradiology_share, views

BLUEPRINTS = (views.bp, account.bp, notification_settings.bp, teleradiology_share.bp)
