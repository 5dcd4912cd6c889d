"""The ``acs`` command line: the composition root, the one module that wires the SDK
(``client_sim``) to a server it starts (``acs demo``, ``acs sim``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from server import logs
from server.config import Config

__all__ = ["main"]


def _config(args) -> Config:
    return Config.from_env(
        data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else None,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        capacity=getattr(args, "capacity", None),
        workers=getattr(args, "workers", None),
    )


def cmd_serve(args) -> int:
    from aiohttp import web

    from server.web.app import create_app
    from server.web.common import AccessLogger

    config = _config(args)
    try:
        config.check()
    except ValueError as exc:
        print(f"acs serve: {exc}", file=sys.stderr)
        return 2
    logs.configure(config.log_format)
    web.run_app(create_app(config), host=config.host, port=config.port, access_log_class=AccessLogger)
    return 0


def cmd_worker(args) -> int:
    from server.worker import run_worker

    config = _config(args)
    try:
        config.check()
        logs.configure(config.log_format)
        asyncio.run(run_worker(config))
    except ValueError as exc:
        print(f"acs worker: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_create_experience(args) -> int:
    from server.admin import create_experience

    settings = {
        "Allowed2DGenerations": args.allowed_2d,
        "Allowed3DGenerations": args.allowed_3d,
        "SessionTime": args.session_time,
        "QueueShare": args.share,
        "DefaultStyle": args.default_style,
        "LikenessThreshold": args.likeness_threshold,
        "InputCaching": True if args.input_caching else None,
        "CreationTokens": args.creation_token or None,
        "MaxQueuedRequests": args.max_queued,
        "BatchPhotosPerHour": args.batch_photos_per_hour,
        "MaxOutfitsPerPlayer": args.max_outfits,
        "PurchaseCallbackUrl": args.purchase_callback_url,
    }
    try:
        exp_id, key = asyncio.run(create_experience(_config(args), args.name, settings))
    except ValueError as exc:
        print(f"acs: {exc}", file=sys.stderr)
        return 2
    print(f"experience {exp_id} ({args.name}) created; its API key (shown once):", file=sys.stderr)
    print(key)
    return 0


def cmd_list_experiences(args) -> int:
    from server.admin import list_experiences

    print(json.dumps(asyncio.run(list_experiences(_config(args))), indent=2))
    return 0


def _admin(args, run) -> int:
    """Run ``run(config)`` and print its JSON: exit 2 with one line on bad input, 1 when the
    state of things refuses it (a player with an active session, say)."""
    from schemas.errors import AcsError

    try:
        out = asyncio.run(run(_config(args)))
    except ValueError as exc:
        print(f"acs admin {args.admin}: {exc}", file=sys.stderr)
        return 2
    except AcsError as err:
        print(f"acs admin {args.admin}: {err.message}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2))
    return 0


def cmd_show_experience(args) -> int:
    from server.admin import show_experience

    return _admin(args, lambda config: show_experience(config, args.experience))


def cmd_update_experience(args) -> int:
    from server.admin import parse_setting, update_experience

    async def run(config):
        values = dict(parse_setting(text) for text in args.set or ())
        return await update_experience(config, args.experience, values, args.unset or ())

    return _admin(args, run)


def cmd_rotate_key(args) -> int:
    from server.admin import rotate_key

    code = _admin(args, lambda config: rotate_key(config, args.experience, args.grace))
    if code == 0:
        print("the new API key is shown once; the old one works until previous_key_until", file=sys.stderr)
    return code


def cmd_revoke_tokens(args) -> int:
    from server.admin import revoke_tokens

    return _admin(args, lambda config: revoke_tokens(config, args.experience, args.player))


def cmd_status(args) -> int:
    from server.admin import pool_status

    return _admin(args, lambda config: pool_status(config, args.experience))


def cmd_erase_player(args) -> int:
    from server.adapters.blobs import FolderBlobStore
    from server.admin import erase_player

    async def run(config):
        if not config.blob_dir.is_dir():
            raise ValueError(f"no blob folder at {config.blob_dir}: run this where --data-dir "
                             "(or ACS_DATA_DIR) is the server's data directory")
        return await erase_player(config, FolderBlobStore(config.blob_dir), args.experience, args.player,
                                  dry_run=not args.yes)

    code = _admin(args, run)
    if code == 0 and not args.yes:
        print("nothing was deleted: this is what --yes would delete", file=sys.stderr)
    return code


#: The demo's steps, in the order the flow takes them.
DEMO_STEPS = ("queue", "upload", "preview", "load_preview", "generate", "load_avatar", "edit_sync", "publish",
              "download")


async def run_demo(out_dir: Path, *, data_dir: Path | None = None, photo: bytes | None = None,
                   text_prompt: str | None = None) -> dict:
    """Start the server in-process and drive one player through the whole flow with the SDK."""
    from client_sim.flow import run_player_flow
    from server.admin import create_experience
    from server.web.runner import RunningServer

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="acs-demo-") as tmp:
        config = Config(data_dir=data_dir or Path(tmp), port=0, workers=1)
        t0 = time.perf_counter()
        _exp, key = await create_experience(config, "demo")
        async with RunningServer(config) as srv:
            startup = time.perf_counter() - t0
            flow = await run_player_flow(srv.url, key, "player-1", photo=photo, text_prompt=text_prompt)
    if flow.publish.get("Result") != "Success":
        raise RuntimeError(f"publish did not succeed: {flow.publish}")
    (out_dir / "preview.png").write_bytes(flow.preview_png)
    (out_dir / "avatar.glb").write_bytes(flow.glb)
    (out_dir / "humanoid_description.json").write_text(json.dumps(flow.description, indent=2))
    return {"startup": startup, "flow": flow}


def demo_summary(result: dict, out_dir: Path) -> str:
    flow = result["flow"]
    lines = [f"server started in {result['startup'] * 1000:.0f} ms (database, blob store, worker pool)"]
    for name in DEMO_STEPS:
        if name in flow.timings:
            lines.append(f"  {name:<13} {flow.timings[name] * 1000:8.0f} ms")
    lines.append(f"  {'total':<13} {flow.timings['total'] * 1000:8.0f} ms")
    report = flow.preview
    lines += [
        f"preview: face_count={report.get('face_count')} quality={report.get('input_quality_score')} "
        f"style={report.get('style')} warnings={report.get('validation_warnings')}",
        f"edits: server and client copies converged: {flow.hashes['server_copy'] == flow.hashes['client_copy']}",
        f"publish: {flow.publish['Result']} BundleId={flow.publish.get('BundleId')} "
        f"OutfitId={flow.publish.get('OutfitId')}",
        f"wrote {out_dir / 'preview.png'}, {out_dir / 'avatar.glb'} ({len(flow.glb) // 1024} KiB), "
        f"{out_dir / 'humanoid_description.json'}",
    ]
    return "\n".join(lines)


def cmd_demo(args) -> int:
    out = Path(args.out)
    photo = Path(args.photo).read_bytes() if args.photo else None
    result = asyncio.run(run_demo(out, photo=photo, text_prompt=args.prompt))
    print(demo_summary(result, out))
    return 0


def cmd_sim(args) -> int:
    from client_sim.sim import run_sim

    photo = Path(args.photo).read_bytes() if args.photo else None
    report = asyncio.run(run_sim(args.url, args.api_key, args.players, timeout=args.timeout, photo=photo))
    print(json.dumps(report, indent=2))
    return 0 if report["succeeded"] == args.players else 1


def cmd_preview(args) -> int:
    """The 2D pipeline without a server: writes preview.png, thumbnail.png, report.json, features.msgpack."""
    from generation.preview import make_preview
    from schemas.errors import AcsError
    from server.jobs import pack_features

    config = Config.from_env()
    try:
        data = Path(args.photo).read_bytes()
    except OSError as exc:
        return _refuse(args, "FileNotFound", f"Cannot read {args.photo}: {exc.strerror}.")
    try:
        result = make_preview(data, text_prompt=args.prompt, style=args.style, size=args.size,
                              backend=args.backend or config.style_backend,
                              diffusion_model=config.diffusion_model)
    except AcsError as err:
        return _refuse(args, err.code, err.message)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "preview.png").write_bytes(result.png)
    (out / "thumbnail.png").write_bytes(result.thumbnail_png)
    (out / "features.msgpack").write_bytes(pack_features(result.landmarks, result.skin_rgb, result.hair_rgb))
    (out / "report.json").write_text(json.dumps(result.report, indent=2))
    if args.json:
        print(json.dumps(result.report))
    else:
        r = result.report
        print(f"{out / 'preview.png'}: style={r['style']} faces={r['face_count']} "
              f"quality={r['input_quality_score']} likeness={r['likeness_score']} "
              f"total={r['timings_ms']['total']:.0f} ms")
        for warning in r["validation_warnings"]:
            print(f"warning: {warning}")
    return 0


def cmd_avatar(args) -> int:
    """The 3D builder without a server, from a folder written by ``acs preview``."""
    import time

    from generation.avatar_builder import build_avatar
    from meshes import export_glb, validate_full_body
    from schemas.errors import AcsError
    from server.jobs import unpack_features

    src = Path(args.preview_dir)
    try:
        png = (src / "preview.png").read_bytes()
        features = unpack_features((src / "features.msgpack").read_bytes())
        report = json.loads((src / "report.json").read_text()) if (src / "report.json").exists() else {}
    except (OSError, ValueError) as exc:
        return _refuse(args, "PreviewNotFound",
                       f"{src} does not hold a preview made by 'acs preview' ({exc.__class__.__name__}).")
    try:
        t0 = time.perf_counter()
        avatar = build_avatar(png, landmarks=features["landmarks"], skin_rgb=tuple(features["skin_rgb"]),
                              hair_rgb=tuple(features["hair_rgb"]), text_prompt=args.prompt)
        t1 = time.perf_counter()
        glb = export_glb(avatar)
        t2 = time.perf_counter()
    except AcsError as err:
        return _refuse(args, err.code, err.message)
    ok, reasons = validate_full_body(avatar)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "avatar.glb").write_bytes(glb)
    (out / "humanoid_description.json").write_text(json.dumps(avatar.description, indent=2))
    summary = {
        "Ok": ok,
        "FailureReasons": reasons,
        "ContentHash": avatar.content_hash(),
        "Triangles": {part: avatar.triangle_count(part) for part in avatar.parts},
        "GlbBytes": len(glb),
        "PreviewStyle": report.get("style"),
        "timings_ms": {"build": round((t1 - t0) * 1000, 1), "export": round((t2 - t1) * 1000, 1)},
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{out / 'avatar.glb'}: {len(glb) // 1024} KiB, {sum(summary['Triangles'].values())} triangles, "
              f"valid={ok}, build {summary['timings_ms']['build']:.0f} ms, export "
              f"{summary['timings_ms']['export']:.0f} ms")
        for reason in reasons:
            print(f"invalid: {reason}")
    return 0 if ok else 1


def _refuse(args, code: str, message: str) -> int:
    if args.json:
        print(json.dumps({"error": {"code": code, "message": message}}))
    else:
        print(f"{code}: {message}", file=sys.stderr)
    return 2


def cmd_schema(args) -> int:
    from schemas import export_json_schema

    print(json.dumps(export_json_schema(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acs", description="Avatar Creation Server")
    sub = parser.add_subparsers(dest="command", required=True)

    def data_dir(p):
        p.add_argument("--data-dir", help="data directory (default $ACS_DATA_DIR or ./acs-data)")

    p = sub.add_parser("serve", help="run the server")
    data_dir(p)
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--capacity", type=int, help="generation sessions active at once")
    p.add_argument("--workers", type=int, help="generation worker processes")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker",
                       help="run generation jobs for the scaled-out form (needs a PostgreSQL ACS_DATABASE_URL)")
    p.add_argument("--workers", type=int, help="generation processes (jobs at once)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("demo", help="run the whole flow on the bundled photo against an in-process server")
    p.add_argument("--out", default="acs-demo-out", help="output folder (default ./acs-demo-out)")
    p.add_argument("--photo", help="use this photo instead of the bundled one")
    p.add_argument("--prompt", help="text prompt for the preview")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("sim", help="run N simulated players against a running server")
    p.add_argument("--players", type=int, default=2)
    p.add_argument("--url", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--photo")
    p.add_argument("--timeout", type=float, default=600.0)
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("preview", help="run the 2D preview pipeline on a photo, without a server")
    p.add_argument("photo")
    p.add_argument("--prompt")
    p.add_argument("--style")
    p.add_argument("--size", type=int, default=800, help="preview edge in pixels (800, or 1200 high-res)")
    p.add_argument("--backend", choices=("procedural", "diffusion"))
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--json", action="store_true", help="print the report (or the refusal) as JSON")
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser("avatar", help="build the rigged 3D avatar from an 'acs preview' folder, without a server")
    p.add_argument("preview_dir")
    p.add_argument("--prompt", help="text prompt (clothing colours)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--json", action="store_true", help="print the summary (or the refusal) as JSON")
    p.set_defaults(func=cmd_avatar)

    p = sub.add_parser("schema", help="print the JSON Schema of every method")
    p.set_defaults(func=cmd_schema)

    admin = sub.add_parser("admin", help="administration").add_subparsers(dest="admin", required=True)
    p = admin.add_parser("create-experience", help="create an experience and print its API key")
    p.add_argument("name")
    data_dir(p)
    p.add_argument("--allowed-2d", type=int)
    p.add_argument("--allowed-3d", type=int)
    p.add_argument("--session-time", type=float)
    p.add_argument("--share", type=float, help="queue share relative to other experiences (default 1)")
    p.add_argument("--default-style", help="style of previews that name none (default game_avatar)")
    p.add_argument("--likeness-threshold", type=float,
                   help="likeness score below which a preview is retried (default 0.75 photoreal, 0.60 stylised)")
    p.add_argument("--input-caching", action="store_true", help="keep selfies 24 h after the session")
    p.add_argument("--creation-token", action="append",
                   help="an avatar creation token PromptCreateAvatarAsync accepts as TokenId (repeatable)")
    p.add_argument("--max-queued", type=int,
                   help="session requests that may wait at once (default $ACS_MAX_QUEUED_PER_EXPERIENCE, 500)")
    p.add_argument("--batch-photos-per-hour", type=int,
                   help="batch previews per hour (default $ACS_BATCH_PHOTOS_PER_HOUR, 200)")
    p.add_argument("--max-outfits", type=int, help="published outfits per player (default unlimited)")
    p.add_argument("--purchase-callback-url",
                   help="URL asked to approve each publish (POST JSON; a refusal gives PurchaseFailure)")
    p.set_defaults(func=cmd_create_experience)
    p = admin.add_parser("list-experiences")
    data_dir(p)
    p.set_defaults(func=cmd_list_experiences)

    def experience(p):
        p.add_argument("experience", metavar="EXP", help="the experience's id (or its name, when unique)")
        data_dir(p)

    p = admin.add_parser("show-experience", help="print an experience and its settings")
    experience(p)
    p.set_defaults(func=cmd_show_experience)
    p = admin.add_parser("update-experience", help="change an experience's settings")
    experience(p)
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="set a setting; the value is read as JSON when it is JSON (2.5, true, [\"a\"]), "
                        "else as a string (repeatable)")
    p.add_argument("--unset", action="append", metavar="KEY",
                   help="remove a setting: the server's default applies again (repeatable)")
    p.set_defaults(func=cmd_update_experience)
    p = admin.add_parser("rotate-key", help="give an experience a new API key; the old one works for a grace period")
    experience(p)
    p.add_argument("--grace", type=float, default=86400.0,
                   help="seconds the old key keeps working (default 86400; 0 refuses it at once)")
    p.set_defaults(func=cmd_rotate_key)
    p = admin.add_parser("revoke-tokens", help="refuse every player token of a player issued until now")
    experience(p)
    p.add_argument("player", metavar="PLAYER")
    p.set_defaults(func=cmd_revoke_tokens)
    p = admin.add_parser("status", help="an experience's queued session requests and active sessions")
    experience(p)
    p.set_defaults(func=cmd_status)
    p = admin.add_parser("erase-player",
                         help="delete everything stored of a player (selfies, previews, generations, bundles)")
    experience(p)
    p.add_argument("player", metavar="PLAYER")
    p.add_argument("--yes", action="store_true", help="delete; without it, print what would be deleted")
    p.set_defaults(func=cmd_erase_player)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
