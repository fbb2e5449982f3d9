"""One received frame: stored first, then checked (sender, type, parse), applied, and acknowledged.

The row is committed before anything is processed, so a message is never lost; its status then says what
happened (processed AA, error AE, rejected AR). A message control id seen before from the same sender is
acknowledged again with the code it got the first time, without being applied twice; a row left "received" by a
crash is processed again when the sender re-sends it (NW is idempotent by accession number).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace

from hl7apy.parser import parse_message
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from engine.errors import CharterRefused, Conflict, TeleradError
from engine.services.context import EngineContext
from forms import FormValidationError
from integrations.hl7 import codec, orders
from integrations.hl7.codec import AckError, Incoming
from integrations.hl7.fields import Fields, OrderRefused
from integrations.hl7.mllp import identity_of
from integrations.hl7.models import Hl7Message
from integrations.hl7.senders import sender_access
from integrations.peers import access_refusal

log = logging.getLogger(__name__)
SUPPORTED = {"ORM^O01", "OMI^O23", "ADT^A08"}
SUPPORTED_TYPES = {t.split("^")[0] for t in SUPPORTED}


@dataclass(frozen=True)
class Result:
    code: str  # AA, AE, AR
    error: AckError | None = None
    case_id: int | None = None
    note: str | None = None
    site_id: str | None = None

    @property
    def status(self) -> str:
        return {"AA": "processed", "AE": "error", "AR": "rejected"}[self.code]


class KeyedLocks:
    """One lock per message key, so the same message arriving twice at once is applied once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[object, tuple[threading.Lock, int]] = {}

    @contextlib.contextmanager
    def hold(self, key: object) -> Iterator[None]:
        if key is None:
            yield
            return
        with self._lock:
            lock, users = self._held.get(key, (threading.Lock(), 0))
            self._held[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                lock, users = self._held[key]
                if users == 1:
                    del self._held[key]
                else:
                    self._held[key] = (lock, users - 1)


class InboundHandler:
    """The MLLP handler: payload bytes in, ACK bytes out."""

    def __init__(self, ctx: EngineContext):
        self.ctx = ctx
        self._locks = KeyedLocks()

    def __call__(self, payload: bytes, truncated: bool = False, peer: str = "") -> bytes:
        incoming = codec.read(payload)
        header = incoming.header
        key = (header.sending_application, header.sending_facility, header.control_id) \
            if header is not None and header.control_id else None
        with self._locks.hold(key):
            row_id, earlier = self._store(incoming, payload, peer)
            if earlier is not None:
                log.info("HL7 message %s from %s/%s received again: acknowledged %s again", header and
                         header.control_id, header and header.sending_application, header and header.sending_facility,
                         earlier.code)
                return codec.ack_bytes(header, earlier.code, earlier.error)
            result = self._process(incoming, truncated, peer)
            self._finish(row_id, result)
        return codec.ack_bytes(header, result.code, result.error)

    def _store(self, incoming: Incoming, payload: bytes, peer: str) -> tuple[int, Result | None]:
        header = incoming.header
        # PostgreSQL text cannot hold NUL: the text shows U+FFFD there and the exact bytes are kept aside.
        has_nul = "\x00" in incoming.text
        values = {
            "direction": "in", "raw": incoming.text.replace("\x00", "\ufffd"),
            "raw_bytes": payload if has_nul or not incoming.decoded else None,
            "peer": peer[:64] or None, "received_at": self.ctx.clock.now(), "status": "received",
            "encoding": incoming.charset[:32] or None,
            "control_id": (header.control_id[:199] or None) if header else None,
            "sending_application": header.sending_application[:180] if header else None,
            "sending_facility": header.sending_facility[:180] if header else None,
            "message_type": (header.message_type[:32] or None) if header else None,
            "version": (header.version[:16] or None) if header else None,
        }
        try:
            with self.ctx.write() as session:
                row = Hl7Message(**values)
                session.add(row)
                session.flush()
                row_id = row.id
                session.commit()
                return row_id, None
        except IntegrityError:
            pass  # the same control id from the same sender: answer as the first time
        with self.ctx.read() as session:
            earlier = session.execute(select(Hl7Message).where(
                Hl7Message.direction == "in", Hl7Message.sending_application == values["sending_application"],
                Hl7Message.sending_facility == values["sending_facility"],
                Hl7Message.control_id == values["control_id"])).scalar_one()
        if earlier.status == "received":  # left unfinished (stopped or crashed): process it now
            return earlier.id, None
        error = AckError(earlier.error_code or 207, earlier.error or "") if earlier.ack_code != "AA" else None
        return earlier.id, Result(earlier.ack_code or "AE", error, earlier.case_id)

    def _finish(self, row_id: int, result: Result) -> None:
        with self.ctx.write() as session:
            error = result.error
            session.execute(update(Hl7Message).where(Hl7Message.id == row_id).values(
                status=result.status, ack_code=result.code, case_id=result.case_id, site_id=result.site_id,
                processed_at=self.ctx.clock.now(),
                error_code=error.code if error else None, error=error.text if error else result.note))
            session.commit()

    def _process(self, incoming: Incoming, truncated: bool, peer: str) -> Result:
        header = incoming.header
        if truncated:
            return Result("AR", AckError(207, "Message de plus de 1 Mio refusé."))
        if header is None or incoming.problem:
            return Result("AR", AckError(100 if header is None else 102, incoming.problem or "Message illisible.",
                                         ("MSH", 18) if header is not None else None))
        access = sender_access(self.ctx, header.sending_application, header.sending_facility)
        if access is None:
            return Result("AR", AckError(207, f"Expéditeur inconnu : {header.sending_application}/"
                                              f"{header.sending_facility} n'est rattaché à aucun site. Un "
                                              "administrateur doit le déclarer (Administration > HL7).", ("MSH", 3)))
        site_id = access.site_id
        refusal = access_refusal(access.allowed_sources, access.client_cert_name, identity_of(peer))
        if refusal is not None:  # CH-5.3, CH-8.1: a sender is only trusted from where it was registered
            log.warning("HL7 message from %s/%s refused (%s): %s", header.sending_application,
                        header.sending_facility, peer, refusal)
            return Result("AR", AckError(207, f"Expéditeur {header.sending_application}/{header.sending_facility}"
                                              f" refusé : {refusal}.", ("MSH", 3)), site_id=site_id)
        if "\x00" in incoming.text:  # no field of a case can hold it (the exact bytes are kept with the message)
            return Result("AR", AckError(102, "Caractère NUL dans le message : refusé, corrigez l'envoi."),
                          site_id=site_id)
        message_type = header.message_type
        if message_type not in SUPPORTED:
            code = 201 if message_type.split("^")[0] in SUPPORTED_TYPES else 200
            return Result("AR", AckError(code, f"Type de message non pris en charge : {message_type} "
                                               f"({', '.join(sorted(SUPPORTED))}).", ("MSH", 9)), site_id=site_id)
        try:
            message = parse_message(incoming.normalised, find_groups=False)
        except Exception as err:  # noqa: BLE001 - hl7apy raises many kinds; all mean "cannot read it"
            unsupported = type(err).__name__ == "UnsupportedVersion"
            return Result("AR", AckError(203 if unsupported else 100, f"Message illisible ({type(err).__name__}) :"
                                         f" {err}"[:400], ("MSH", 12) if unsupported else None), site_id=site_id)
        sender = orders.Sender(header.sending_application, header.sending_facility, site_id)
        return replace(self._apply(sender, message_type, Fields(message, header.delimiters), header.control_id),
                       site_id=site_id)

    def _apply(self, sender: orders.Sender, message_type: str, fields: Fields, control_id: str) -> Result:
        try:
            outcome = orders.apply(self.ctx, sender, message_type, fields, control_id)
        except OrderRefused as refused:
            return Result("AE", refused.error)
        except FormValidationError as err:
            return Result("AE", AckError(102, f"Données refusées : {err}"))
        except CharterRefused as err:  # a charter gate: resending will not help, the reason says what to do
            return Result("AE", AckError(207, str(err)))
        except Conflict as err:
            return Result("AE", AckError(206, f"{err} Renvoyez le message."))
        except TeleradError as err:
            return Result("AE", AckError(207, str(err)))
        except Exception as err:  # noqa: BLE001 - answered AE, logged with its traceback, kept with status error
            log.exception("HL7 message %s from %s/%s failed", control_id, sender.application, sender.facility)
            return Result("AE", AckError(207, f"Erreur interne ({type(err).__name__}) : le message est conservé, "
                                              "l'équipe Telerad est prévenue."))
        return Result("AA", None, outcome.case_id, outcome.note)
