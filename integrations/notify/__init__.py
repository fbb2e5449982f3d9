"""Notifications outside the browser: email over SMTP (STARTTLS or implicit TLS, an MSSanté-style gateway
included) and a signed JSON webhook for SMS or pager gateways. The engine decides who is told what and writes the
outbox (engine.services.notifications); this package reads its settings, writes the French messages and sends."""
