"""The audit trail sent outside the database: IHE ATNA audit messages (DICOM PS3.15 A.5) over syslog (RFC 5424
messages, RFC 5425 TLS transport), and the signed chain heads (engine.services.audit_heads) to the same server."""
