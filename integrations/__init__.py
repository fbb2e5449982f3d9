"""Adapters to the hospitals' systems (HL7 v2 over MLLP, DICOM), each with a fake twin for tests."""
