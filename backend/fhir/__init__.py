"""FHIR R4 in and out, without Flask or the database: ``resources`` writes our records as
FHIR resources, ``bundles`` reads a Bundle into what we can bring in (and what we cannot,
with the reason)."""
