"""OpenAPI links: how one operation's answer names the next (series → observations → models → jobs → forecasts).

Clients and Schemathesis's stateful phase follow them; they are added to the generated document here, in one place.
"""

from typing import Any

__all__ = ["LINKS", "add_links"]

_SERIES = {"key": "$response.body#/key"}
_VERSION = {"name": "$response.body#/model/name", "version": "$response.body#/model/version"}
# (operation id, status) → {link name: (target operation id, parameters)}
LINKS: dict[tuple[str, str], dict[str, tuple[str, dict[str, str]]]] = {
    ("series-create_series", "201"): {
        "GetSeries": ("series-get_series", _SERIES),
        "UpdateSeries": ("series-update_series", _SERIES),
        "WriteObservations": ("observations-write_observations", _SERIES),
        "ReadObservations": ("observations-read_observations", _SERIES),
        "DeleteObservations": ("observations-delete_observations", _SERIES),
        "Forecast": ("forecasts-forecast_series", _SERIES),
        "DeleteSeries": ("series-delete_series", _SERIES),
    },
    ("series-list_series", "200"): {"NextPage": ("series-list_series", {"cursor": "$response.body#/next_cursor"})},
    ("models-train", "202"): {
        "GetJob": ("jobs-get_job", {"job_id": "$response.body#/job/id"}),
        "CancelJob": ("jobs-cancel_job", {"job_id": "$response.body#/job/id"}),
        "GetModel": ("models-get_model", {"name": "$response.body#/model/name"}),
        "GetVersion": ("models-get_version", _VERSION),
        "DeleteVersion": ("models-delete_version", _VERSION),
    },
    ("models-list_models", "200"): {"NextPage": ("models-list_models", {"cursor": "$response.body#/next_cursor"})},
    ("jobs-list_jobs", "200"): {"NextPage": ("jobs-list_jobs", {"cursor": "$response.body#/next_cursor"})},
    ("keys-create_key", "201"): {"RevokeKey": ("keys-revoke_key", {"name": "$response.body#/name"})},
    ("keys-list_keys", "200"): {"NextPage": ("keys-list_keys", {"cursor": "$response.body#/next_cursor"})},
}


def add_links(document: dict[str, Any]) -> dict[str, Any]:
    """Add LINKS to a generated OpenAPI document, in place; an id or status not in it is a KeyError."""
    operations = {op["operationId"]: op for path in document["paths"].values() for op in path.values()}
    for (source, status), links in LINKS.items():
        response = operations[source]["responses"][status]
        response["links"] = {name: {"operationId": operations[target]["operationId"], "parameters": params}
                             for name, (target, params) in links.items()}
    return document
