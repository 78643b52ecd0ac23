"""The atomic text/bytes writers of postloan.data.io: whole file or the old one, no temp left."""

from __future__ import annotations

import json
import os
import stat

import pytest

from postloan.data import io


def test_text_and_bytes_land_whole_and_readable(tmp_path):
    target = tmp_path / "sub" / "page.html"
    assert io.write_text_atomic("报告 ok", target) == target
    assert target.read_text(encoding="utf-8") == "报告 ok"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # shared, unlike mkstemp's 0600
    io.write_bytes_atomic(b"\x00\x01", target)
    assert target.read_bytes() == b"\x00\x01"
    io.write_json_atomic({"b": 1, "a": "é"}, tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text(encoding="utf-8")) == {"a": "é", "b": 1}
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["m.json", "page.html", "sub"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    target.write_text("old", encoding="utf-8")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)  # fails after the bytes are written
    with pytest.raises(OSError, match="disk full"):
        io.write_text_atomic("new", target)
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
