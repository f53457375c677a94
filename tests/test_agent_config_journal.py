"""The agent's configuration file and its SQLite journal."""

from __future__ import annotations

import sqlite3

import pytest

from measure_agent.config import ConfigError, parse_config
from measure_agent.errors import BoardNotAnswering, InvalidModel, from_kind
from measure_agent.journal import DONE, FAILED, QUEUED, RUNNING, Journal, JournalError

TOKEN = "0123456789abcdef0123"


def test_config_expands_virtual_boards(tmp_path):
    cfg = parse_config(f"""
[agent]
listen = "127.0.0.1:0"
journal = "j.sqlite"
[clients]
ci = "{TOKEN}"
[[boards]]
kind = "virtual"
target = "nucleo-l4r5zi"
count = 2
[[boards]]
kind = "serial"
id = "l4"
target = "NUCLEO-L496ZG"
port = "/dev/ttyACM0"
flash_command = ["st-flash", "write", "{{bin}}", "0x08000000"]
""", tmp_path)
    assert [b.id for b in cfg.boards] == ["vb-nucleo-l4r5zi-0", "vb-nucleo-l4r5zi-1", "l4"]
    assert cfg.boards[0].target == "NUCLEO-L4R5ZI"
    assert cfg.boards[2].flash_command[2] == "{bin}"
    assert cfg.journal == (tmp_path / "j.sqlite").resolve()
    assert cfg.clients == {"ci": TOKEN}


@pytest.mark.parametrize("text, message", [
    ("[[boards]]\nkind = 'virtual'\ntarget = 'NOPE'\n", "unknown target"),
    ("[[boards]]\nkind = 'usb'\ntarget = 'NUCLEO-L496ZG'\n", "kind must be"),
    ("[[boards]]\nkind = 'serial'\ntarget = 'NUCLEO-L496ZG'\n", "needs a port"),
    ("[[boards]]\nkind = 'serial'\ntarget = 'NUCLEO-L496ZG'\nport = 'x'\nflash_command = 'st-flash write x'\n",
     "list of strings"),
    ("[clients]\na = 'short'\n[[boards]]\nkind = 'virtual'\ntarget = 'NUCLEO-L496ZG'\n", "16 characters"),
    ("[agent]\ntls = { cert = 'a.crt' }\n", "both cert and key"),
    ("", "no boards"),
    ("[agent", "not valid TOML"),
])
def test_bad_configs(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_journal_survives_reopen(tmp_path):
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    entry, new = journal.accept("r1", "ci", b"request-bytes")
    assert new and entry.state == QUEUED
    journal.mark_running("r1", "vb-0")
    journal.accept("r2", "ci", b"other")
    journal.close()

    journal = Journal(path)
    assert [e.request_id for e in journal.unfinished()] == ["r1", "r2"]
    assert journal.get("r1").state == RUNNING and journal.get("r1").board_id == "vb-0"
    journal.finish("r1", b"result-bytes")
    entry, new = journal.accept("r1", "ci", b"request-bytes")
    assert not new and entry.state == DONE and entry.result == b"result-bytes"
    journal.close()


def test_journal_retries_only_transient_failures(tmp_path):
    journal = Journal(tmp_path / "j.sqlite")
    journal.accept("bad-model", "ci", b"x")
    journal.fail("bad-model", InvalidModel.kind, "malformed", transient=False)
    journal.accept("hung", "ci", b"y")
    journal.fail("hung", BoardNotAnswering.kind, "board stopped answering", transient=True)
    entry, new = journal.accept("bad-model", "ci", b"x")
    assert not new and entry.state == FAILED and entry.error_kind == InvalidModel.kind
    assert isinstance(from_kind(entry.error_kind, entry.error_message), InvalidModel)
    entry, new = journal.accept("hung", "ci", b"y")
    assert new and entry.state == QUEUED and entry.error_kind is None
    assert journal.count(FAILED) == 1


def test_journal_of_another_schema_is_refused(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE requests (request_id TEXT PRIMARY KEY, error_code TEXT)")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="schema 0"):
        Journal(path)


def test_shipped_example_bench_config():
    from measure_agent.config import load_config
    from tests.conftest import REPO

    cfg = load_config(REPO / "examples" / "bench.toml")
    assert [b.target for b in cfg.boards] == ["NUCLEO-L4R5ZI", "NUCLEO-L4R5ZI", "NUCLEO-F767ZI"]
    assert cfg.journal == REPO / "out" / "bench-journal.sqlite"
    assert cfg.clients["search-1"] == "replace-me-with-a-long-random-token"
