"""Operations: the health check, SQL debug counters, the WSGI servers, the timer scheduler and the HL7/DICOM
listeners a process starts, and the garbage-collector settling of long-running processes."""

from web.ops.health import bp

BLUEPRINTS = (bp,)
