"""OpenAPI 3.1 description of /api/v1 (served at /api/v1/openapi.json). Bearer tokens expire and have a scope:
"read" tokens may call the GET endpoints only (403 read_only_token on the others)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _responses(ok: dict[str, Any], *codes: int) -> dict[str, Any]:
    described = {400: "Requête invalide (error = bad_request) : corps autre que du JSON UTF-8, JSON mal formé ou "
                      "imbriqué sur plus de 32 niveaux, NaN ou Infinity, caractère NUL ou surrogate isolé dans un "
                      "texte ou un paramètre, nombre hors des entiers 64 bits",
                 401: "Jeton absent, invalide ou révoqué (error = unauthorized), ou expiré (error = token_expired : "
                      "le renouveler)",
                 403: "Interdit ; jeton en lecture seule sur un appel qui écrit (error = read_only_token)",
                 404: "Introuvable ou non visible",
                 409: "Conflit (tâche déjà prise ou terminée) ou étape refusée au titre de la charte "
                      "(error = charter_refused, refusals = règles et motifs)",
                 422: "Données refusées (erreurs par champ)"}
    responses: dict[str, Any] = {"200": ok}
    for code in (400, *codes):
        responses[str(code)] = {"description": described[code], "content": {"application/json": {"schema": _ERROR}}}
    return responses


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema or {"type": "object"}}}}


TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
CASE_ID = {"name": "case_id", "in": "path", "required": True,
           "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Telerad API", "version": "1", "description":
             "Téléradiologie selon la charte G4/CNOM. Jeton personnel : en-tête `Authorization: Bearer <jeton>`."},
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearer": []}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error", "message"], "properties": {
                "error": {"type": "string"}, "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}}}},
            "Task": {"type": "object", "properties": {
                "id": {"type": "string"}, "case_id": {"type": "integer"}, "task": {"type": "string"},
                "title": {"type": "string"}, "role": {"type": ["string", "null"]}, "form": {"type": ["string", "null"]},
                "assignee": {"type": ["string", "null"]}, "urgency_rank": {"type": "integer"},
                "due_at": {"type": ["string", "null"], "format": "date-time"}}},
            "Case": {"type": "object", "properties": {
                "id": {"type": "integer"}, "process": {"type": "string"}, "status": {"type": "string"},
                "patient_name": {"type": ["string", "null"]}, "urgency": {"type": ["string", "null"]}}},
        },
    },
    "paths": {
        "/tasks": {"get": {"summary": "Mes tâches et celles que je peux prendre", "responses": _responses(
            _json("Liste", {"type": "object", "properties": {"tasks": {"type": "array", "items": {
                "$ref": "#/components/schemas/Task"}}}}), 401)}},
        "/tasks/{task_id}": {"get": {"summary": "Une tâche, ses données et son formulaire (JSON Schema)",
                                     "parameters": [TASK_ID], "responses": _responses(_json("Tâche"), 401, 404, 409)}},
        "/tasks/{task_id}/claim": {"post": {"summary": "Prendre la tâche", "parameters": [TASK_ID],
                                            "responses": _responses(_json("Tâche"), 401, 403, 404, 409)}},
        "/tasks/{task_id}/unclaim": {"post": {"summary": "Libérer la tâche", "parameters": [TASK_ID],
                                              "responses": _responses(_json("Tâche"), 401, 403, 404, 409)}},
        "/tasks/{task_id}/complete": {"post": {
            "summary": "Terminer la tâche avec les données de son formulaire", "parameters": [TASK_ID],
            "description": ("Les données sont celles du formulaire de la tâche. Un compte-rendu (ou un avis de "
                            "télé-expert) est signé : `signature_code` porte le code à 6 chiffres de "
                            "l'application d'authentification du titulaire du jeton, utilisable une fois. Sans "
                            "code, avec un code faux ou déjà utilisé : 409 `charter_refused` (CH-5.3), rien "
                            "n'est enregistré ; les codes faux comptent dans le verrouillage du compte."),
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"signature_code": {
                    "type": "string", "pattern": "^[0-9]{6}$",
                    "description": "Signature du compte-rendu : code TOTP à 6 chiffres"}}}}}},
            "responses": _responses(_json("Terminée"), 401, 403, 404, 409, 422)}},
        "/cases": {
            "get": {"summary": "Dossiers visibles", "parameters": [
                {"name": "status", "in": "query", "schema": {"type": "string"}},
                {"name": "q", "in": "query", "schema": {"type": "string"}}],
                "responses": _responses(_json("Liste"), 401)},
            "post": {"summary": "Nouvelle demande", "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"type": "object", "required": ["process", "site_id", "request"], "properties": {
                    "process": {"type": "string", "description": "Processus déployé (telediagnosis, teleexpertise…)"},
                    "site_id": {"type": "string"},
                    "request": {"type": "object"}}}}}},
                "responses": {**_responses(_json("Créé"), 401, 403, 422), "201": _json("Créé")}}},
        "/cases/{case_id}": {"get": {"summary": "Le dossier (lecture tracée)", "description": (
            "Identité, urgence, données (celles que l'appelant peut lire), étapes en cours (open_tasks), ce que "
            "chaque étape terminée a enregistré en libellés français (steps : title, by_name, at, fields[label, "
            "value]) et l'historique en phrases (history : at, action, text)."), "parameters": [CASE_ID],
                                     "responses": _responses(_json("Dossier"), 401, 404)}},
        "/cases/{case_id}/messages": {
            "get": {"summary": "Échanges du dossier", "parameters": [CASE_ID],
                    "responses": _responses(_json("Messages"), 401, 404)},
            "post": {"summary": "Ajouter un message", "parameters": [CASE_ID], "requestBody": {
                "required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["body"], "properties": {"body": {"type": "string"}}}}}},
                "responses": {**_responses(_json("Ajouté"), 401, 403, 404, 422), "201": _json("Ajouté")}}},
    },
}
