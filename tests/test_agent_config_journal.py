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


def _accept(journal, rid, request=b"request-bytes", client="ci", model=b"model-bytes"):
    import hashlib

    digest = hashlib.sha256(request + model).hexdigest()
    return journal.accept(client, rid, digest, hashlib.sha256(model).hexdigest(), model, request)


def test_journal_survives_reopen(tmp_path):
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    entry, new = _accept(journal, "r1")
    assert new and entry.state == QUEUED
    journal.mark_running("ci", "r1", "vb-0")
    _accept(journal, "r2", b"other")
    journal.close()

    journal = Journal(path)
    assert [e.request_id for e in journal.unfinished()] == ["r1", "r2"]
    assert journal.get("ci", "r1").state == RUNNING and journal.get("ci", "r1").board_id == "vb-0"
    assert journal.get("ci", "r1").attempts == 1
    journal.finish("ci", "r1", b"result-bytes")
    entry, new = _accept(journal, "r1")
    assert not new and entry.state == DONE and entry.result == b"result-bytes"
    assert journal.model(entry.model) == b"model-bytes"
    journal.close()


def test_journal_retries_only_transient_failures(tmp_path):
    journal = Journal(tmp_path / "j.sqlite")
    _accept(journal, "bad-model", b"x")
    journal.fail("ci", "bad-model", InvalidModel.kind, "INVALID_ARGUMENT", "malformed", transient=False)
    _accept(journal, "hung", b"y")
    journal.fail("ci", "hung", BoardNotAnswering.kind, "DEADLINE_EXCEEDED", "board stopped answering", transient=True)
    entry, new = _accept(journal, "bad-model", b"x")
    assert not new and entry.state == FAILED and entry.error_kind == InvalidModel.kind
    assert entry.error_code == "INVALID_ARGUMENT"
    assert isinstance(from_kind(entry.error_kind, entry.error_message), InvalidModel)
    entry, new = _accept(journal, "hung", b"y")
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


BOARD = "[[boards]]\nkind = 'virtual'\ntarget = 'NUCLEO-L4R5ZI'\n"


@pytest.mark.parametrize("text, message", [
    ('agent = "x"\n' + BOARD, "agent must be a table, not 'x'"),
    ('[agent]\ntls = "yes"\n' + BOARD, "agent.tls must be a table"),
    ('[agent]\nmax_model_bytes = "big"\n' + BOARD, "agent.max_model_bytes must be an integer, not 'big'"),
    ('[agent]\nmax_model_bytes = -5\n' + BOARD, "agent.max_model_bytes must be greater than or equal to 1"),
    ("[[boards]]\nkind = 'serial'\ntarget = 'NUCLEO-L496ZG'\nport = '/dev/x'\nbaud = 'fast'\n",
     "boards[0].baud must be an integer, not 'fast'"),
    ('[agent]\nlisten = 5\n' + BOARD, "agent.listen must be a string, not 5"),
    ('[agent]\nlisten = "999.1.1.1:99999"\n' + BOARD, "must be a number from 0 to 65535"),
    ('[agent]\nlisten = "999.1.1.1:5000"\n' + BOARD, "'999.1.1.1' is not an IPv4 address"),
    ('[agent]\nlisten = "localhost"\n' + BOARD, "must be HOST:PORT"),
    ("[[boards]]\nkind = 'serial'\ntarget = 'NUCLEO-L496ZG'\nport = '/dev/x'\n"
     "energy_monitor = { kind = 'rocketlogger', start = ['a'], stop = ['b'] }\n",
     "boards[0]: energy_monitor: a rocketlogger monitor needs file"),
    ("[[boards]]\nkind = 'virtual'\ntarget = 'NUCLEO-L4R5ZI'\ncount = true\n", "boards[0].count must be an integer"),
    ('[agent]\nlisen = "127.0.0.1:1"\n' + BOARD, "unknown key 'lisen' in [agent] (known keys: listen,"),
    ('agnet = 1\n' + BOARD, "unknown key 'agnet'"),
    ("[[boards]]\nkind = 'virtual'\ntarget = 'NUCLEO-L4R5ZI'\ncuont = 2\n", "unknown key 'cuont' in boards[0]"),
    ("[agent]\nworkers = 'fork'\n" + BOARD, "agent.workers must be 'process' or 'thread'"),
    ("[agent]\nretention = { max_age_days = 0 }\n" + BOARD, "greater than 0"),
    ("[clients]\na = '0123456789abcdef0'\nb = '0123456789abcdef0'\n" + BOARD, "share a token"),
    ("[clients]\nops = { token = '0123456789abcdef0', admin = 'yes' }\n" + BOARD, "clients.ops.admin must be true"),
])
def test_config_schema_errors(text, message):
    """Item 10: every malformed value is one ConfigError naming the key, unknown keys are refused by name."""
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_config_admin_clients_retention_and_journal_path(tmp_path):
    cfg = parse_config(f"[agent]\nretention = {{ max_age_days = 2, max_bytes = 1000000 }}\n"
                       f"[clients]\nci = '{TOKEN}'\nops = {{ token = '{TOKEN}x', admin = true }}\n" + BOARD, tmp_path)
    assert cfg.clients == {"ci": TOKEN, "ops": TOKEN + "x"} and cfg.admins == frozenset({"ops"})
    assert cfg.retention_max_age_s == 2 * 86400 and cfg.retention_max_bytes == 1_000_000
    assert cfg.workers == "process"
    (tmp_path / "journal.sqlite").mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        parse_config(BOARD, tmp_path)


def test_serve_config_errors_are_one_line(tmp_path):
    """Item 10: `serve --config` with a bad file: one line, exit 2, the message intact (no console markup eats
    "[clients]"), for a corrupt journal and a journal that is a directory too."""
    import subprocess
    import sys

    def serve(text: str):
        config = tmp_path / "bench.toml"
        config.write_text(text)
        return subprocess.run([sys.executable, "-m", "measure_agent.cli", "serve", "--config", str(config)],
                              capture_output=True, text=True, timeout=120)

    (tmp_path / "corrupt.sqlite").write_bytes(b"not a database at all" * 100)
    clients = f"[clients]\nci = '{TOKEN}'\n"
    for text, needle in [
        ("[agent]\nlisten = '127.0.0.1:0'\n" + BOARD, "no [clients] tokens configured"),
        ('agent = "x"\n' + clients + BOARD, "agent must be a table"),
        ("[agent]\nlisten = '127.0.0.1:0'\njournal = 'corrupt.sqlite'\n" + clients + BOARD, "not a usable journal"),
        ("[agent]\nlisten = '127.0.0.1:0'\njournal = '.'\n" + clients + BOARD, "is a directory"),
    ]:
        result = serve(text)
        assert result.returncode == 2, result.stderr
        assert needle in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_tls_files_that_are_no_certificate_and_key(tmp_path):
    """Item 10: a TLS cert or key that is not PEM, an encrypted key or a key of another certificate were only
    "cannot listen on ADDRESS" (gRPC fails to bind without a reason): refused by the configuration, naming them."""
    import shutil
    import subprocess

    (tmp_path / "junk.crt").write_text("not a certificate\n")
    (tmp_path / "junk.key").write_text("not a key\n")
    clients = f"[clients]\nci = '{TOKEN}'\n"

    def config(cert: str, key: str) -> str:
        return f"[agent]\nlisten = '127.0.0.1:0'\ntls = {{ cert = '{cert}', key = '{key}' }}\n" + clients + BOARD

    with pytest.raises(ConfigError, match="junk.crt and .*junk.key are not a PEM certificate and its unencrypted"):
        parse_config(config("junk.crt", "junk.key"), tmp_path)
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available to make test certificates")

    def make(name: str, *key_options: str) -> None:
        key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", *key_options, "-days", "1", "-subj",
                        "/CN=localhost", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)

    make("a", "-nodes")
    make("b", "-nodes")
    make("locked", "-passout", "pass:secret")
    assert parse_config(config("a.crt", "a.key"), tmp_path).tls_cert == tmp_path / "a.crt"
    with pytest.raises(ConfigError, match="b.key is not the private key of the certificate .*a.crt"):
        parse_config(config("a.crt", "b.key"), tmp_path)
    with pytest.raises(ConfigError, match="unencrypted private key"):
        parse_config(config("locked.crt", "locked.key"), tmp_path)


def test_journal_files_that_are_not_journals(tmp_path):
    (tmp_path / "corrupt.sqlite").write_bytes(b"garbage" * 1000)
    with pytest.raises(JournalError, match="not a usable journal"):
        Journal(tmp_path / "corrupt.sqlite")
    with pytest.raises(JournalError, match="is a directory"):
        Journal(tmp_path)


def test_journal_has_one_writer(tmp_path):
    """Two agents on one journal would both run its unfinished requests: the second is refused."""
    first = Journal(tmp_path / "j.sqlite", exclusive=True)
    with pytest.raises(JournalError, match="in use by another running agent"):
        Journal(tmp_path / "j.sqlite", exclusive=True)
    reader = Journal(tmp_path / "j.sqlite")  # readers are welcome
    reader.close()
    first.close()
    Journal(tmp_path / "j.sqlite", exclusive=True).close()


def test_journal_stores_models_once_and_conflicts_on_reuse(tmp_path):
    """Items 2, 16: a model measured by many requests is stored once; a request id reused with another digest
    is a RequestConflict."""
    from measure_agent.errors import RequestConflict

    journal = Journal(tmp_path / "j.sqlite")
    model = bytes(range(256)) * 400
    for i in range(20):
        _accept(journal, f"r{i}", f"settings {i}".encode(), model=model)
    assert journal._db.execute("SELECT COUNT(*) FROM models").fetchone()[0] == 1
    assert journal.stored_bytes() < 2 * len(model)
    with pytest.raises(RequestConflict, match="reused with a different request"):
        _accept(journal, "r0", b"other settings", model=model)
    journal.close()


def test_retention_never_drops_what_is_not_fetched(tmp_path):
    """Item 16: by age and by size, only final requests whose answer was fetched are dropped, then the models
    no request refers to."""
    import time

    journal = Journal(tmp_path / "j.sqlite")
    for i in range(6):
        _accept(journal, f"r{i}", f"s{i}".encode(), model=f"model {i % 2}".encode() * 1000)
    for i in range(4):
        journal.finish("ci", f"r{i}", b"result" * 100)
    journal.fail("ci", "r4", InvalidModel.kind, "INVALID_ARGUMENT", "bad", False)
    for i in (0, 1, 4):
        journal.mark_fetched("ci", f"r{i}")
    journal.mark_fetched("ci", "r5")  # not final: no effect
    report = journal.prune(max_age_s=3600)
    assert report.requests == 0
    report = journal.prune(max_age_s=0, now=time.time() + 1)
    assert report.requests == 3
    kept = {e.request_id for e in [journal.get("ci", f"r{i}") for i in range(6)] if e}
    assert kept == {"r2", "r3", "r5"}
    assert journal.prune(max_bytes=1).requests == 0
    assert journal.check() == []
    journal.close()
