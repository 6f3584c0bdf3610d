"""The weights zoo refuses unreadable manifests and unloadable weights with WeightsError, never a raw exception."""

from __future__ import annotations

import json
import shutil

import pytest

from srnsz.neural.zoo import WeightsError, find_weights, load_pretrained, read_manifest, sha256_of


def _entry(**change) -> dict:
    entry = {"file": "w.pt", "architecture": "hat_tiny", "kwargs": {}, "sha256": "ab" * 32, "recipe": "test",
             "data": {}, "date": "2026-01-01", "validation": {}}
    return {**entry, **change}


@pytest.mark.parametrize("text", [b"\xff\xfe{}", b"{not json", b'{"x": 5}', b'{"x": []}'], ids=str)
def test_an_unreadable_manifest_is_a_weights_error(tmp_path, text):
    (tmp_path / "manifest.json").write_bytes(text)
    with pytest.raises(WeightsError, match="not a valid weights manifest"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("change", [{"sha256": 123}, {"file": None}, {"kwargs": []}, {"architecture": 7},
                                   {"extra": 1}], ids=str)
def test_manifest_fields_of_the_wrong_type_are_a_weights_error(tmp_path, change):
    (tmp_path / "manifest.json").write_text(json.dumps({"x": _entry(**change)}))
    with pytest.raises(WeightsError, match="not a valid weights manifest"):
        find_weights("abababab", tmp_path)


def test_a_manifest_without_a_field_names_it(tmp_path):
    entry = _entry()
    del entry["sha256"]
    (tmp_path / "manifest.json").write_text(json.dumps({"x": entry}))
    with pytest.raises(WeightsError, match="lacks fields.*sha256"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", b"PK\x03\x04 broken zip"], ids=str)
def test_weights_that_match_their_hash_but_do_not_load_are_a_weights_error(tmp_path, content):
    pytest.importorskip("torch")
    (tmp_path / "w.pt").write_bytes(content)
    (tmp_path / "manifest.json").write_text(json.dumps({"x": _entry(sha256=sha256_of(tmp_path / "w.pt"))}))
    with pytest.raises(WeightsError, match="w.pt cannot be loaded"):
        load_pretrained("x", directory=tmp_path)


def test_weights_that_are_not_a_state_dict_are_a_weights_error(tmp_path, test_weights):
    torch = pytest.importorskip("torch")
    shutil.copy(test_weights / "manifest.json", tmp_path / "manifest.json")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    torch.save(torch.zeros(3), tmp_path / "w.pt")
    manifest["test_hat"].update(file="w.pt", sha256=sha256_of(tmp_path / "w.pt"))
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="do not fit network"):
        load_pretrained("test_hat", directory=tmp_path)


def test_a_stream_finds_its_weights_by_hash_when_another_folder_has_weights_of_that_name(tmp_path, test_weights,
                                                                                        monkeypatch):
    torch = pytest.importorskip("torch")
    from srnsz.neural.zoo import cached_model

    shipped = read_manifest(test_weights)["test_hat"]
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    state = torch.load(test_weights / shipped.file, weights_only=True)
    torch.save({k: v + 1 if v.is_floating_point() else v for k, v in state.items()}, shadow / "other.pt")
    manifest = json.loads((test_weights / "manifest.json").read_text())
    entry = {**manifest["test_hat"], "file": "other.pt", "sha256": sha256_of(shadow / "other.pt")}
    (shadow / "manifest.json").write_text(json.dumps({"test_hat": entry}))
    monkeypatch.setenv("SRNSZ_WEIGHTS", f"{shadow}:{test_weights}")
    assert find_weights("test_hat").sha256 == entry["sha256"]  # new compressions take the first folder's
    _, found = cached_model("test_hat", "cpu", sha256=shipped.sha256)  # a stream made with the other weights
    assert found.sha256 == shipped.sha256 and found.directory == str(test_weights)
    with pytest.raises(WeightsError, match="use the same weights"):
        cached_model("test_hat", "cpu", sha256="cd" * 32)
