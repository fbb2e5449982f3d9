"""DICOMweb (QIDO-RS, WADO-RS, WADO-URI, STOW-RS) under /dicomweb, by session or bearer token."""

from web.dicomweb.routes import bp

BLUEPRINTS = (bp,)
