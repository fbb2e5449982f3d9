"""HL7 v2 over MLLP: orders in (ORM^O01, OMI^O23, ADT^A08), reports out (ORU^R01).

hl7apy parses and builds; the MLLP listener, the ACKs and the escaping are ours (see ../shared/DESIGN.md,
"Integration facts"). Modules: models (tables), codec (bytes <-> text, ACKs), mllp (framing, listener, client),
inbound (store then process one message), orders (messages -> engine calls), report (ORU^R01), outbox (queue and
delivery), senders (administration), service (what `telerad run` and `telerad worker` start), demo.
"""
