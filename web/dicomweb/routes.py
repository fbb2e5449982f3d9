"""DICOMweb under /dicomweb: QIDO-RS, WADO-RS, WADO-URI and STOW-RS over the studies of the cases the caller may
see (integrations.dicomweb; conformance statement: docs/dicomweb.md). The views only read the request, call the
integration and shape the answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask_babel import gettext as _

from engine.errors import NotFound
from integrations.dicom.storage import path_of
from integrations.dicom.upload import UPLOAD_ROLES
from integrations.dicomweb import media, multipart, rendered
from integrations.dicomweb.audit import record_access
from integrations.dicomweb.frames import FrameError, frame_numbers, read_frames
from integrations.dicomweb.keys import INSTANCE, SERIES, STUDY, BadQuery, check_uid, parse_query
from integrations.dicomweb.model import answer, metadata
from integrations.dicomweb.query import InstanceFile, Scope, instance_files, scope_visible, search
from integrations.dicomweb.stow import response as store_response
from integrations.dicomweb.stow import store
from integrations.dicomweb.transcode import files_to_send
from web.dicomweb.access import NotAcceptable, actor, ctx, dicomweb_view, error, install_protocol_answers
from web.extensions import telerad

bp = Blueprint("dicomweb", __name__, url_prefix="/dicomweb")
install_protocol_answers(bp)


def _storage() -> Path:
    return Path(telerad(current_app).settings.instance_path) / "dicom"


def _base_url() -> str:
    return request.url_root.rstrip("/") + "/dicomweb"


def _scope(study: str | None = None, series: str | None = None, instance: str | None = None) -> Scope:
    return Scope(study and check_uid(study, "StudyInstanceUID"), series and check_uid(series, "SeriesInstanceUID"),
                 instance and check_uid(instance, "SOPInstanceUID"))


def _json(payload: Any, status: int = 200) -> Response:
    response = jsonify(payload)
    response.status_code = status
    response.mimetype = media.DICOM_JSON
    return response


# --- QIDO-RS ----------------------------------------------------------------------------------------------------

def _search(level: str, scope: Scope) -> Response:
    query = parse_query(level, request.args.items(multi=True))
    if not media.negotiate_json(request.headers.get("Accept")):
        raise NotAcceptable()
    if scope.study_uid and not scope_visible(ctx(), actor(), scope):
        raise NotFound()  # a study or series the caller may not see is answered as an unknown one
    found = search(ctx(), actor(), query, scope, _storage())
    if not found:
        return Response(status=204)
    record_access(ctx(), actor(), "query", [(f.case_id, f.study_uid) for f in found])
    return _json([answer(f, query, _storage(), _base_url()) for f in found])


@bp.get("/studies")
@dicomweb_view
def studies() -> Any:
    return _search(STUDY, Scope())


@bp.get("/series")
@dicomweb_view
def all_series() -> Any:
    return _search(SERIES, Scope())


@bp.get("/instances")
@dicomweb_view
def all_instances() -> Any:
    return _search(INSTANCE, Scope())


@bp.get("/studies/<study>/series")
@dicomweb_view
def study_series(study: str) -> Any:
    return _search(SERIES, _scope(study))


@bp.get("/studies/<study>/instances")
@dicomweb_view
def study_instances(study: str) -> Any:
    return _search(INSTANCE, _scope(study))


@bp.get("/studies/<study>/series/<series>/instances")
@dicomweb_view
def series_instances(study: str, series: str) -> Any:
    return _search(INSTANCE, _scope(study, series))


# --- WADO-RS ----------------------------------------------------------------------------------------------------

def _files(scope: Scope, kind: str) -> list[InstanceFile]:
    files = instance_files(ctx(), actor(), scope)
    if not files:
        raise NotFound()
    record_access(ctx(), actor(), kind, [(files[0].case_id, files[0].study_uid)])
    return files


def _retrieve(scope: Scope) -> Response:
    files = instance_files(ctx(), actor(), scope)
    if not files:
        raise NotFound()
    wanted = media.negotiate_instances(request.headers.get("Accept"), {f.transfer_syntax for f in files})
    if wanted is None:
        raise NotAcceptable()
    record_access(ctx(), actor(), "instances", [(files[0].case_id, files[0].study_uid)])
    boundary = multipart.new_boundary()
    return Response(multipart.file_parts(boundary, files_to_send(_storage(), files, wanted)), direct_passthrough=True,
                    content_type=multipart.content_type(boundary, media.DICOM))


@bp.get("/studies/<study>")
@dicomweb_view
def retrieve_study(study: str) -> Any:
    return _retrieve(_scope(study))


@bp.get("/studies/<study>/series/<series>")
@dicomweb_view
def retrieve_series(study: str, series: str) -> Any:
    return _retrieve(_scope(study, series))


@bp.get("/studies/<study>/series/<series>/instances/<instance>")
@dicomweb_view
def retrieve_instance(study: str, series: str, instance: str) -> Any:
    return _retrieve(_scope(study, series, instance))


def _metadata(scope: Scope) -> Response:
    if not media.negotiate_json(request.headers.get("Accept")):
        raise NotAcceptable()
    files = _files(scope, "metadata")
    base = _base_url()
    answers = [metadata(_storage(), f.sha256, f"{base}/studies/{f.study_uid}/series/{f.series_uid}/instances/"
                        f"{f.sop_instance_uid}/frames/" + ",".join(str(n) for n in range(1, (f.frames or 1) + 1)))
               for f in files]
    return _json([a for a in answers if a is not None])


@bp.get("/studies/<study>/metadata")
@dicomweb_view
def study_metadata(study: str) -> Any:
    return _metadata(_scope(study))


@bp.get("/studies/<study>/series/<series>/metadata")
@dicomweb_view
def series_metadata(study: str, series: str) -> Any:
    return _metadata(_scope(study, series))


@bp.get("/studies/<study>/series/<series>/instances/<instance>/metadata")
@dicomweb_view
def instance_metadata(study: str, series: str, instance: str) -> Any:
    return _metadata(_scope(study, series, instance))


@bp.get("/studies/<study>/series/<series>/instances/<instance>/frames/<frames>")
@dicomweb_view
def frames(study: str, series: str, instance: str, frames: str) -> Any:
    scope = _scope(study, series, instance)
    numbers = frame_numbers(frames)
    found = instance_files(ctx(), actor(), scope)
    if not found:
        raise NotFound()
    part_type = media.negotiate_frame(request.headers.get("Accept"), found[0].transfer_syntax)
    if part_type is None:
        raise NotAcceptable()
    content = read_frames(path_of(_storage(), found[0].sha256), numbers)
    record_access(ctx(), actor(), "frames", [(found[0].case_id, found[0].study_uid)])
    boundary = multipart.new_boundary()
    return Response(multipart.byte_parts(boundary, ((frame, part_type) for frame in content)),
                    direct_passthrough=True, content_type=multipart.content_type(boundary, part_type.split(";")[0]))


def _rendered(scope: Scope, asked: str | None = None, kind: str = "rendered") -> Response:
    try:
        size = rendered.viewport_size(request.args.get("viewport"))
    except ValueError as err:
        raise BadQuery(_("viewport : largeur,hauteur de 1 à %(max)s pixels attendu", max=rendered.MAX_VIEWPORT)) \
            from err
    content_type = media.negotiate_rendered(request.headers.get("Accept"), asked)
    if content_type is None:
        raise NotAcceptable()
    found = _files(scope, kind)
    png = rendered.rendered_png(_storage(), found[0].sha256, size)
    if png is None:
        return error(404, "not_renderable", _("Cette instance ne peut pas être rendue en image."))
    return Response(png if content_type == "image/png" else rendered.as_jpeg(png), mimetype=content_type)


@bp.get("/studies/<study>/series/<series>/instances/<instance>/rendered")
@dicomweb_view
def instance_rendered(study: str, series: str, instance: str) -> Any:
    return _rendered(_scope(study, series, instance))


@bp.get("/studies/<study>/series/<series>/instances/<instance>/frames/<int:frame>/rendered")
@dicomweb_view
def frame_rendered(study: str, series: str, instance: str, frame: int) -> Any:
    scope = _scope(study, series, instance)
    found = _files(scope, "rendered")
    if (found[0].frames or 1) > 1 or frame != 1:
        raise FrameError(_("rendu d'une trame : seules les instances d'une trame (trame 1) sont rendues ; "
                           "utilisez /rendered pour la trame du milieu"))
    return _rendered(scope)


# --- WADO-URI ---------------------------------------------------------------------------------------------------

@bp.get("/wado")
@dicomweb_view
def wado_uri() -> Any:
    arguments = request.args
    if arguments.get("requestType") != "WADO":
        raise BadQuery(_("requestType=WADO attendu"))
    unknown = set(arguments) - {"requestType", "studyUID", "seriesUID", "objectUID", "contentType",
                                "transferSyntax", "rows", "columns", "anonymize", "charset", "frameNumber"}
    if unknown:
        raise BadQuery(_("paramètre WADO inconnu : %(name)s", name=sorted(unknown)[0][:40]))
    scope = Scope(check_uid(arguments.get("studyUID", ""), "studyUID"),
                  check_uid(arguments.get("seriesUID", ""), "seriesUID"),
                  check_uid(arguments.get("objectUID", ""), "objectUID"))
    content_type = arguments.get("contentType") or "image/jpeg"
    if content_type != media.DICOM:
        return _rendered(scope, content_type, "wado-uri")
    found = _files(scope, "wado-uri")
    syntax = arguments.get("transferSyntax") or media.EXPLICIT_LITTLE  # PS3.18's default
    if syntax not in (found[0].transfer_syntax, media.EXPLICIT_LITTLE):
        raise NotAcceptable()
    wanted = media.AS_STORED if syntax == found[0].transfer_syntax else media.EXPLICIT_LITTLE
    ((path, _part_type),) = files_to_send(_storage(), found[:1], wanted)
    return Response(multipart.file_chunks(path), direct_passthrough=True, mimetype=media.DICOM)


# --- STOW-RS ----------------------------------------------------------------------------------------------------

def _store(study: str | None) -> Response:
    if study is not None:
        check_uid(study, "StudyInstanceUID")
    if not actor().roles & UPLOAD_ROLES:
        return error(403, "forbidden", _("Votre rôle ne permet pas d'envoyer des images."))
    if not media.negotiate_json(request.headers.get("Accept")):
        raise NotAcceptable()
    case_text = request.args.get("case")
    if set(request.args) - {"case"}:
        raise BadQuery(_("seul le paramètre case est accepté"))
    if case_text is not None and (not case_text.isdigit() or len(case_text) > 18):
        raise BadQuery(_("case : numéro de dossier attendu"))
    boundary = multipart.boundary_of(request.headers.get("Content-Type", ""))
    result = store(ctx(), actor(), multipart.read_parts(request.stream, boundary), _storage(),
                   study_uid=study, case_id=int(case_text) if case_text else None)
    return _json(store_response(result, _base_url(), study), result.status)


@bp.post("/studies")
@dicomweb_view
def store_studies() -> Any:
    return _store(None)


@bp.post("/studies/<study>")
@dicomweb_view
def store_study(study: str) -> Any:
    return _store(study)
