"""DICOMweb (QIDO-RS, WADO-RS, WADO-URI, STOW-RS) over the received studies: queries, the JSON model, multipart
answers, rendered images, the store path and the access audit. The web area web.dicomweb maps it to routes;
docs/dicomweb.md is the conformance statement."""
