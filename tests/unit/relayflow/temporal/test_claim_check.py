"""The claim check's driver and filesystem store, through the SDK's own data converter.

The converter is the one the bridge and the worker use (pydantic JSON, AES-GCM
codec, external storage), so what is checked here is what Temporal's histories
get: a reference from the threshold up, the payload below it, ciphertext in the
blob, and nothing new stored for the same bytes twice.
"""

from __future__ import annotations

import dataclasses
import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, ExternalStorage

from relayflow.temporal.claim_check import ClaimCheckDriver, FileBlobStore, resolve_references
from relayflow.temporal.codec_server import CodecServer
from relayflow.temporal.payload_codec import EncryptionCodec, EncryptionKey

CODEC = EncryptionCodec([EncryptionKey("k-2026", os.urandom(32))])
THRESHOLD = 4096
REFERENCE_TYPE = b"temporal.api.sdk.v1.ExternalStorageReference"


@pytest.fixture
def store(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


def converter(store: FileBlobStore, *, encrypted: bool = True) -> DataConverter:
    return dataclasses.replace(
        pydantic_data_converter, payload_codec=CODEC if encrypted else None,
        external_storage=ExternalStorage(drivers=[ClaimCheckDriver(store)],
                                         payload_size_threshold=THRESHOLD))


def blobs(store: FileBlobStore) -> list[str]:
    return sorted(name for name, _ in store.list("blobs"))


async def test_a_large_payload_becomes_a_reference_and_comes_back(store: FileBlobStore) -> None:
    value = {"note": "secret-" + "x" * 10_000}
    [stored] = await converter(store).encode([value])
    assert stored.metadata["messageType"] == REFERENCE_TYPE
    assert stored.ByteSize() < 512
    assert await converter(store).decode([stored], [dict]) == [value]
    # The codec ran first: the blob holds ciphertext, never the value.
    [name] = blobs(store)
    assert b"secret-" not in store.get(name)


async def test_just_under_the_threshold_stays_inline(store: FileBlobStore) -> None:
    plain = converter(store, encrypted=False)

    def sized(size: int) -> str:
        return "x" * size

    near = THRESHOLD - 100  # same length-prefix width as at the threshold
    overhead = plain.payload_converter.to_payloads([sized(near)])[0].ByteSize() - near
    [inline] = await plain.encode([sized(THRESHOLD - overhead - 1)])
    assert inline.ByteSize() == THRESHOLD - 1
    assert "messageType" not in inline.metadata
    assert blobs(store) == []
    [referenced] = await plain.encode([sized(THRESHOLD - overhead)])
    assert referenced.metadata["messageType"] == REFERENCE_TYPE
    assert len(blobs(store)) == 1


async def test_the_same_bytes_twice_store_nothing_new(store: FileBlobStore) -> None:
    plain = converter(store, encrypted=False)  # the same bytes: a retried call
    [first] = await plain.encode(["y" * 20_000])
    [name] = blobs(store)
    written = store.root.joinpath(name).stat().st_mtime_ns
    [second] = await plain.encode(["y" * 20_000])
    assert first == second
    assert blobs(store) == [name]
    assert store.root.joinpath(name).stat().st_mtime_ns == written


async def test_a_blob_that_does_not_match_its_digest_is_refused(store: FileBlobStore) -> None:
    plain = converter(store, encrypted=False)
    [reference] = await plain.encode(["z" * 20_000])
    [name] = blobs(store)
    store.root.joinpath(name).write_bytes(Payload(data=b"forged").SerializeToString())
    with pytest.raises(ValueError, match="does not match its digest"):
        await plain.decode([reference], [str])


def test_the_store_writes_whole_files_and_keeps_to_its_folder(store: FileBlobStore) -> None:
    assert store.put("blobs/abc", b"data")
    assert not store.put("blobs/abc", b"other")  # content-addressed: the first one stays
    assert store.get("blobs/abc") == b"data"
    assert [p.name for p in store.root.rglob("*")] == ["blobs", "abc"]  # no temporary left
    with pytest.raises(ValueError, match="leaves the store"):
        store.put("../outside", b"x")


@pytest.fixture
def codec_server(store: FileBlobStore) -> Iterator[str]:
    server = CodecServer(CODEC, port=0, token="t", claim_check=ClaimCheckDriver(store))
    with server.serving() as address:
        yield address


def _decode(url: str, payloads: list[Payload]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{url}/decode", data=json_format.MessageToJson(Payloads(payloads=payloads)).encode(),
        headers={"Authorization": "Bearer t", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def test_the_codec_server_resolves_references_for_the_ui(
        store: FileBlobStore, codec_server: str) -> None:
    value = {"note": "n" * 10_000}
    [reference] = await converter(store).encode([value])
    status, answer = _decode(codec_server, [reference])
    assert status == 200, answer
    [clear] = json_format.ParseDict(answer, Payloads()).payloads
    assert pydantic_data_converter.payload_converter.from_payloads([clear], [dict]) == [value]
    assert resolve_references(ClaimCheckDriver(store), [clear]) == [clear]  # not a reference

    for name in blobs(store):  # swept
        store.delete(name)
    status, answer = _decode(codec_server, [reference])
    assert status == 404, answer
