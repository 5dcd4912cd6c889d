"""Credentials and parameter decoding: the refusals the transports rely on."""

import pytest

from schemas import METHODS, decode, export_json_schema
from schemas.errors import InvalidParams, Unauthorized
from schemas.frames import BadFrame, pack, parse_request
from server.core.auth import PlayerTokens, hash_api_key, new_api_key


def test_api_keys_are_random_and_only_their_hash_is_kept():
    k1, h1 = new_api_key()
    k2, h2 = new_api_key()
    assert k1 != k2 and h1 == hash_api_key(k1) and k1 not in h1


def test_player_token_round_trip_expiry_and_tampering():
    tokens = PlayerTokens(b"s" * 32)
    token, expires = tokens.issue("exp1", "player1", now=100.0, ttl=60)
    p = tokens.verify(token, now=120.0)
    assert (p.role, p.experience_id, p.player_id) == ("client", "exp1", "player1")
    with pytest.raises(Unauthorized) as err:
        tokens.verify(token, now=expires)
    assert err.value.code == "TokenExpired"
    body, sig = token.split(".")
    forged = PlayerTokens(b"x" * 32).issue("exp1", "player2", now=100.0, ttl=60)[0]
    with pytest.raises(Unauthorized):
        tokens.verify(forged.split(".")[0] + "." + sig, now=120.0)
    with pytest.raises(Unauthorized):
        tokens.verify("not-a-token", now=0)


def test_decode_names_the_missing_or_mistyped_key():
    spec = METHODS["GenerateAvatar2DPreviewAsync"].params
    with pytest.raises(InvalidParams, match="FileId"):
        decode(spec, {"SessionId": "s"})
    with pytest.raises(InvalidParams, match="SessionId"):
        decode(spec, {"SessionId": 5, "FileId": "f"})
    with pytest.raises(InvalidParams, match="Bogus"):
        decode(spec, {"SessionId": "s", "FileId": "f", "Bogus": 1})
    p = decode(spec, {"SessionId": "s", "FileId": "f", "TextPrompt": "red hair"})
    assert (p.SessionId, p.FileId, p.TextPrompt, p.Style) == ("s", "f", "red hair", None)


def test_decode_refuses_bools_as_ints_and_non_finite_floats():
    with pytest.raises(InvalidParams):
        decode(METHODS["ApplyEdits"].params, {"GenerationId": "g", "BaseVersion": True, "Ops": []})
    with pytest.raises(InvalidParams):
        decode(METHODS["PromptSelectAvatarGenerationImageAsync"].params,
               {"SessionId": "s", "TimeoutSeconds": float("nan")})


def test_malformed_frames_are_typed():
    with pytest.raises(BadFrame):
        parse_request(b"\xc1\xff not msgpack")
    with pytest.raises(BadFrame):
        parse_request(pack([1, 2, 3]))
    with pytest.raises(BadFrame):
        parse_request(pack({"id": "1", "method": "X"}))
    assert parse_request(pack({"id": 3, "method": "GetValidationRules"})).params == {}


def test_json_schema_covers_every_method_with_required_keys():
    schema = export_json_schema()
    assert set(schema) == set(METHODS)
    assert schema["GenerateAvatarAsync"]["required"] == ["SessionId", "PreviewId"]
    assert schema["ApplyEdits"]["properties"]["BaseVersion"]["type"] == "integer"
