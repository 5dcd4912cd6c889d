"""The OpenAPI 3.1 document: it covers every route and method, names every error code the
source raises with its status, renders as a page, and schemathesis fuzzing every operation
of a live server finds no server error."""

from __future__ import annotations

import ast
import asyncio
import json
import re
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

import generation.errors
from schemas import METHODS
from schemas.codes import CODES
from schemas.openapi import openapi_document
from server.config import Config
from server.services.previews import SELFIE_REFUSALS
from server.web.app import create_app

from .conftest import new_experience, running_server

ROOT = Path(__file__).resolve().parents[1]


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _app_routes(app: web.Application) -> dict[str, set[str]]:
    """``{path shape: HTTP methods}`` of an app and its sub-apps (static folders aside); a
    sub-app's resources carry its prefix already."""
    out: dict[str, set[str]] = {}
    for resource in app.router.resources():
        if isinstance(resource, web.StaticResource):
            continue
        if isinstance(resource, web.PrefixedSubAppResource):
            for path, methods in _app_routes(resource._app).items():
                out.setdefault(path, set()).update(methods)
            continue
        out.setdefault(_shape(resource.canonical), set()).update(r.method.lower() for r in resource
                                                                 if r.method != "HEAD")
    return out


def test_the_document_covers_every_route_and_method_and_nothing_else(tmp_path):
    doc = openapi_document()
    assert doc["openapi"] == "3.1.0"
    documented: dict[str, set[str]] = {}
    rpc_names = set()
    for path, ops in doc["paths"].items():
        if path.startswith("/v1/rpc/"):
            rpc_names.add(path.removeprefix("/v1/rpc/"))
            path = "/v1/rpc/{method}"
        documented.setdefault(_shape(path), set()).update(ops)
    assert rpc_names == set(METHODS)
    served = _app_routes(create_app(Config(data_dir=tmp_path)))
    assert served == documented
    # every method's body is its parameter schema, and every error status lists its codes
    for name, spec in METHODS.items():
        op = doc["paths"][f"/v1/rpc/{name}"]["post"]
        assert op["x-roles"] == sorted(spec.roles)
        assert set(doc["components"]["schemas"][name]["properties"]) == set(spec.params.__dataclass_fields__)
    for status, response in doc["components"]["responses"].items():
        listed = re.findall(r"- `(\w+)`", response["description"])
        assert listed and all(CODES[c][0] == int(status[1:]) for c in listed)


def _raised_codes() -> dict[str, set[int | None]]:
    """Every error code the source can raise, with the statuses it is raised with (None: unknown here)."""
    import server.core.queue  # noqa: F401  (loads the error classes the scan names)
    import server.jobs  # noqa: F401
    from schemas import errors as base

    classes = {c.__name__: c for c in _subclasses(base.AcsError)}
    found: dict[str, set] = {}
    for pkg in ("server", "generation", "meshes", "schemas", "client_sim"):
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call):
                    kws = {k.arg: k.value for k in node.keywords}
                    code = kws.get("code")
                    if isinstance(code, ast.Constant) and isinstance(code.value, str):
                        status = kws.get("status")
                        fn = getattr(node.func, "id", getattr(node.func, "attr", ""))
                        found.setdefault(code.value, set()).add(
                            status.value if isinstance(status, ast.Constant)
                            else getattr(classes.get(fn), "status", None))
                if isinstance(node, ast.ClassDef):
                    for stmt in node.body:
                        if isinstance(stmt, ast.Assign) and any(getattr(t, "id", "") == "default_code"
                                                                for t in stmt.targets):
                            found.setdefault(stmt.value.value, set()).add(
                                getattr(classes.get(node.name), "status", None))
    for name in generation.errors.__all__:  # the photo refusals' codes are their class names
        cls = getattr(generation.errors, name)
        if name != "PhotoError":
            found.setdefault(name, set()).add(cls.status)
    # codes made from names: Service.check_owner, the session allowances, a declined selfie prompt
    for what in ("file", "preview", "generation", "bundle", "prompt", "selfie prompt"):
        found.setdefault(what.title().replace(" ", "") + "NotFound", set()).add(404)
    for name in ("Allowed2DGenerations", "Allowed3DGenerations"):
        found.setdefault(f"{name}Exceeded", set()).add(409)
    for reason in SELFIE_REFUSALS:
        found.setdefault(reason, set()).add(409)
    for code, status in ((404, "NotFound"), (405, "MethodNotAllowed"), (413, "PayloadTooLarge"),
                         (500, "InternalError")):  # aiohttp's own refusals, named by the error middleware
        found.setdefault(status, set()).add(code)
    return found


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_code_the_source_raises_is_catalogued_with_its_status():
    raised = _raised_codes()
    missing = sorted(set(raised) - set(CODES))
    assert missing == [], f"codes raised but not in schemas/codes.py: {missing}"
    wrong = {c: (CODES[c][0], s) for c, statuses in raised.items() for s in statuses
             if s is not None and s != CODES[c][0]}
    assert wrong == {}, f"catalogued status differs from the raised one: {wrong}"
    unused = sorted(set(CODES) - set(raised))
    assert unused == [], f"catalogued codes nothing raises: {unused}"


async def test_the_document_and_its_page_are_served(tmp_path, executor):
    async with running_server(tmp_path, executor) as srv:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{srv.url}/v1/openapi.json") as r:
                assert r.status == 200 and r.content_type == "application/json"
                assert await r.json() == json.loads(json.dumps(openapi_document()))
            async with http.get(f"{srv.url}/docs") as r:
                assert r.status == 200 and r.content_type == "text/html"
                page = await r.text()
    for name in METHODS:
        assert f"<code>/v1/rpc/{name}</code>" in page
    for code in CODES:
        assert f"<code>{code}</code>" in page
    assert "<script" not in page  # a static page: nothing to load from anywhere


async def _schemathesis(url: str, credential: str, out: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("schemathesis")), "run", f"{url}/v1/openapi.json", "--checks", "not_a_server_error",
        "--max-examples", "25", "--seed", "20261201", "--phases", "coverage,fuzzing", "--request-timeout", "30",
        "--header", f"Authorization: Bearer {credential}", "--no-color",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=out)
    stdout, _ = await asyncio.wait_for(proc.communicate(), 600)
    return proc.returncode, stdout.decode(errors="replace")


async def test_schemathesis_finds_no_server_error_as_game_server_or_player(tmp_path, executor):
    key = await new_experience(tmp_path)
    async with running_server(tmp_path, executor, http_requests_per_second=1e6) as srv:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
            async with http.post(f"{srv.url}/v1/rpc/CreatePlayerToken", json={"PlayerId": "fuzzed"}) as r:
                token = (await r.json())["Token"]
        for credential in (key, token):
            rc, report = await _schemathesis(srv.url, credential, tmp_path)
            summary = report[report.find("SUMMARY"):]
            print(summary)
            assert rc == 0, report[-6000:]
            generated = re.search(r"(\d+) generated, (\d+) passed", summary)
            assert generated and generated[1] == generated[2] and int(generated[1]) > 500, summary
            selected = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", summary)
            assert selected and selected[1] == selected[2] == selected[3] and int(selected[3]) >= 40, summary
