"""/openapi.json describes what the API takes and answers (Schemathesis, in the
acceptance tests, fuzzes the running service from it)."""

from __future__ import annotations

from tests.integration.conftest import InProcess

ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}


def test_request_bodies_errors_and_bounds_are_declared(api: InProcess) -> None:
    doc = api.client.get("/openapi.json").json()
    paths = doc["paths"]
    assert "404" in paths["/exports/{token}/{name}.manifest.json"]["get"]["responses"]
    # The /api/v1 twins answer (OneSignal's former base URL) but are listed once.
    assert not [p for p in paths if p.startswith("/api/v1")]
    assert api.client.get(f"/api/v1/notifications?app_id={api.app_id}").status_code == 200
    for prefix in ("",):
        events = paths[f"{prefix}/notifications/{{message_id}}/events"]["post"]
        assert set(events["requestBody"]["content"]) == {"application/json",
                                                         "application/x-ndjson"}
        item = events["requestBody"]["content"]["application/json"]["schema"]["properties"][
            "events"]["items"]
        assert item["required"] == ["subscription_id", "event"]
        assert item["properties"]["external_id"]["maxLength"] == 512
        assert events["responses"]["413"]["content"]["application/json"]["schema"] == ENVELOPE
        create = paths[f"{prefix}/notifications"]["post"]
        assert create["requestBody"]["content"]["application/json"]["schema"]["required"] == [
            "app_id"]
        history = paths[f"{prefix}/notifications/{{message_id}}/history"]["post"]
        assert history["requestBody"]["content"]["application/json"]["schema"]["properties"][
            "events"]["enum"] == ["sent", "clicked"]
        export = paths[f"{prefix}/notifications/{{message_id}}/export_events"]["post"]
        assert "429" in export["responses"] and "503" in export["responses"]
        assert "format" in {p["name"] for p in export["parameters"]}
        assert export["requestBody"]["content"]["application/json"]["schema"]["properties"][
            "format"]["enum"] == ["csv", "jsonl", "parquet"]
        listing = {p["name"]: p["schema"] for p in paths[f"{prefix}/notifications"]["get"][
            "parameters"]}
        assert (listing["limit"]["minimum"], listing["limit"]["maximum"]) == (1, 50)
        assert listing["offset"]["minimum"] == 0 and listing["offset"]["maximum"] == 2**31 - 1
        assert listing["app_id"]["format"] == "uuid"
        activity = paths[f"{prefix}/apps/{{app_id}}/activity_exports"]
        body = activity["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body["additionalProperties"] is False
        assert set(body["properties"]) == {"message_ids", "events", "since", "until", "cursor",
                                           "format", "compression"}
        assert "429" in activity["post"]["responses"]
        paging = {p["name"]: p["schema"] for p in activity["get"]["parameters"]}
        assert paging["offset"]["maximum"] == 2**31 - 1 and paging["limit"]["maximum"] == 100
        assert "404" in paths[f"{prefix}/apps/{{app_id}}/activity_exports/{{export_id}}"][
            "get"]["responses"]
    for path in paths.values():
        for operation in path.values():
            assert "422" not in operation["responses"]  # errors are 400, in the envelope
            for status, answer in operation["responses"].items():
                if status in {"400", "401", "404", "413", "429", "503"} and "content" in answer:
                    assert answer["content"]["application/json"]["schema"] == ENVELOPE
    assert doc["components"]["schemas"]["ErrorEnvelope"]["required"] == ["errors"]


def test_docs_can_authorize_and_show_real_answers(api: InProcess) -> None:
    """The key as a security scheme (/docs's Authorize button), on every route that
    takes it and none that does not; the 200 examples are real answers."""
    doc = api.client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["RestApiKey"]["scheme"] == "bearer"
    assert doc["security"] == [{"RestApiKey": []}]
    paths = doc["paths"]
    for path, method in (("/livez", "get"), ("/readyz", "get"), ("/exports/{token}/{name}",
                                                                  "get"),
                         ("/webhooks/{source}/{app_id}", "post")):
        assert paths[path][method]["security"] == [], path
    export = paths["/notifications/{message_id}/export_events"]["post"]
    assert "security" not in export  # the document's own: the key
    example = export["responses"]["200"]["content"]["application/json"]["example"]
    assert set(example) == {"csv_file_url", "export_id", "manifest_url"}
    from msgtrail.web.api.examples import EXAMPLES

    for method_path in EXAMPLES:
        method, path = method_path
        assert "example" in paths[path][method]["responses"]["200"]["content"][
            "application/json"], method_path
    # Bearer works as the scheme says.
    assert api.client.get("/notifications", params={"app_id": api.app_id},
                          headers={"Authorization": f"Bearer {api.key}"}).status_code == 200
    # The page and its assets come from msgtrail, under a policy of this origin only.
    page = api.client.get("/docs")
    assert "/docs/assets/swagger-ui-bundle.js" in page.text and "cdn" not in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert api.client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert api.client.get("/redoc").status_code == 404
