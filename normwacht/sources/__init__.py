"""Pure mappings from source systems' own formats to Normwacht events (no I/O).

Each vendor format has a module here that turns one vendor record into validated
`normwacht.core.events` events; the shells in `services/sources/` read the vendor side
and post the events to ingest. Case ids and event ids are keyed pseudonyms of vendor
identifiers, so nothing a resident could be recognised by is passed on.
"""
