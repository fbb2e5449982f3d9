"""DICOM adapter: C-STORE reception, web upload, study matching and identity holds, through engine.services."""
