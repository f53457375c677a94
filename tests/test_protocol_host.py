"""End to end: the firmware shell's real C protocol code, built for the host (UART = pipes),
driven by BoardLink. The stub executor keeps these independent of the model runtime; the last
tests use the real runtime and a real plan (MLPerf Tiny KWS)."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest

from measure_agent import protocol as P
from measure_agent.firmware_build import build_host_shell
from measure_agent.serial_link import BoardError, BoardLink, PipeSerial

TIMEOUT_MS = 100


def stub_plan(layers=5, in_bytes=10, out_bytes=300, work=50, size=24) -> bytes:
    head = b"STUB" + struct.pack("<5I", layers, in_bytes, out_bytes, work, 0)
    return head + bytes((i * 7) & 0xFF for i in range(size - len(head)))


@pytest.fixture(scope="module")
def stub_shell():
    return build_host_shell("stub")


@pytest.fixture
def link(stub_shell):
    with PipeSerial([str(stub_shell), "--timeout-ms", str(TIMEOUT_MS), "--model-ram", str(1 << 20)]) as port:
        link = BoardLink(port, timeout=2.0)
        boot = link.read_frame()
        assert boot.cmd == P.MSG_BOOT and P.decode_boot(boot.payload) == 1 << 20
        yield link


def test_hello(link):
    h = link.hello()
    assert h.protocol_version == P.PROTOCOL_VERSION
    assert h.target == "host" and h.runtime == "stub" and h.flags & P.HELLO_FLAG_HOST
    assert h.model_ram_bytes == 1 << 20 and h.max_payload == P.MAX_PAYLOAD
    assert h.interbyte_timeout_ms == TIMEOUT_MS and len(h.build_id) == 16
    assert not h.loaded


def test_upload_load_run_read_output(link):
    plan = stub_plan(size=5000)  # 5 chunks
    info = link.upload_plan(plan)
    assert info.num_layers == 5 and info.input_bytes == (10,) and info.output_bytes == (300,)
    assert info.plan_bytes == 5000 and info.arena_bytes == 16 + 300
    assert link.hello().loaded
    link.set_input(0, bytes(range(10)))
    r = link.run(4)
    assert r.runs == 4 and len(r.layer_cycles) == 5
    assert all(c > 0 for c in r.layer_cycles)
    assert r.total <= r.max_total and r.layer_sum <= r.max_total
    out = link.read_output(0)
    assert out == bytes((i % 10 + 5) & 0xFF for i in range(300))


def test_chunked_input_output_and_many_layers(link):
    link.upload_plan(stub_plan(layers=600, in_bytes=3000, out_bytes=2500, work=1))
    data = bytes((i * 13) & 0xFF for i in range(3000))
    link.set_input(0, data)
    r = link.run(1)
    assert len(r.layer_cycles) == 600  # needs CYCLES continuation frames
    out = link.read_output(0)
    assert out == bytes((data[i] + 600) & 0xFF for i in range(2500))


def test_errors_are_mapped(link):
    with pytest.raises(BoardError) as e:
        link.run(1)
    assert e.value.code == P.ERR_NOT_LOADED
    with pytest.raises(BoardError) as e:
        link.upload_plan(b"NOPE" + bytes(40))
    assert e.value.code == P.ERR_NN_BASE + 1 and e.value.nn_status == 1  # NN_ERR_BAD_PLAN
    link.upload_plan(stub_plan(), load=False)
    with pytest.raises(BoardError) as e:
        link.load(stub_plan()[:-1] + b"\xff")
    assert e.value.code == P.ERR_PLAN_CRC
    link.request(P.CMD_UPLOAD, P.upload_payload(24, 20, stub_plan()[20:]))  # resending a chunk is fine
    link.request(P.CMD_UPLOAD, P.upload_payload(100, 0, b"x" * 10))
    with pytest.raises(BoardError) as e:
        link.request(P.CMD_UPLOAD, P.upload_payload(100, 50, b"x" * 10))
    assert e.value.code == P.ERR_BAD_OFFSET and e.value.detail == 10
    with pytest.raises(BoardError) as e:
        link.request(P.CMD_LOAD, P.load_payload(b"x" * 100))
    assert e.value.code == P.ERR_PLAN_INCOMPLETE
    with pytest.raises(BoardError) as e:
        link.upload_plan(bytes(2 << 20))
    assert e.value.code == P.ERR_TOO_LARGE and e.value.detail == 1 << 20
    link.upload_plan(stub_plan())
    with pytest.raises(BoardError) as e:
        link.set_input(1, b"abc")
    assert e.value.nn_status == 5  # NN_ERR_BAD_INDEX
    with pytest.raises(BoardError) as e:
        link.set_input(0, bytes(11))
    assert e.value.code == P.ERR_BAD_LENGTH
    with pytest.raises(BoardError) as e:
        link.request(P.CMD_RUN, struct.pack("<I", 0))
    assert e.value.code == P.ERR_BAD_ARG
    with pytest.raises(BoardError) as e:
        link.request(0x55)
    assert e.value.code == P.ERR_UNKNOWN_CMD
    with pytest.raises(BoardError) as e:
        link.request(P.CMD_RUN, b"\x01")
    assert e.value.code == P.ERR_BAD_LENGTH
    assert link.echo(b"still alive") == b"still alive"


def test_soft_reset_unloads(link):
    link.upload_plan(stub_plan())
    link.run(1)
    link.reset()
    assert not link.hello().loaded
    with pytest.raises(BoardError):
        link.run(1)


def test_garbage_then_valid_request(link):
    rng = np.random.default_rng(3)
    garbage = rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    # false syncs with good and bad headers inside the garbage
    fake_header = struct.pack("<BBBBH", 1, P.CMD_ECHO, 99, 0, 40)
    garbage += b"\xa5\x5a" + fake_header + bytes([P.crc8(fake_header)]) + b"\x00" * 10
    link.write_raw(garbage)
    assert link.echo(b"after garbage") == b"after garbage"
    assert link.hello().target == "host"


def test_truncated_frame_then_interbyte_timeout(link):
    wire = P.encode_frame(P.CMD_ECHO, 200, b"z" * 100)
    link.write_raw(wire[:40])
    t0 = time.monotonic()
    frame = link.read_frame(timeout=2.0)
    elapsed = time.monotonic() - t0
    assert isinstance(frame, P.Frame) and frame.cmd == P.MSG_ERROR and frame.seq == 200
    err = P.decode_error(frame.payload)
    assert err.code == P.ERR_TIMEOUT and err.cmd == P.CMD_ECHO and err.detail == 40
    assert TIMEOUT_MS / 1000 * 0.8 <= elapsed < 1.5
    assert link.echo(b"recovered") == b"recovered"


def test_truncated_frame_followed_by_request_is_answered(link):
    link.write_raw(P.encode_frame(P.CMD_ECHO, 201, b"q" * 500)[:30])
    assert link.echo(b"next") == b"next"  # answered by rescan or by a retry


def test_corrupted_request_gets_bad_crc_and_retry_succeeds(link):
    bad = bytearray(P.encode_frame(P.CMD_ECHO, 202, b"corrupt me"))
    bad[15] ^= 0xFF
    link.write_raw(bytes(bad))
    frame = link.read_frame()
    assert frame.cmd == P.MSG_ERROR and frame.seq == 202 and P.decode_error(frame.payload).code == P.ERR_BAD_CRC

    class Corrupting:
        def __init__(self, port):
            self.port, self.first = port, True

        def write(self, data):
            if self.first:
                self.first = False
                data = data[:-1] + bytes([data[-1] ^ 1])
            return self.port.write(data)

        def read(self, n=1):
            return self.port.read(n)

        def flush(self):
            self.port.flush()

    flaky = BoardLink(Corrupting(link.port), timeout=2.0)
    assert flaky.echo(b"through a flaky line") == b"through a flaky line"
    assert flaky.stats.retries == 1


def test_oversized_length_and_bad_version(link):
    header = struct.pack("<BBBBH", 1, P.CMD_UPLOAD, 203, 0, 60000)
    link.write_raw(P.SYNC + header + bytes([P.crc8(header)]))
    frame = link.read_frame()
    assert frame.seq == 203 and P.decode_error(frame.payload).code == P.ERR_TOO_LONG
    link.write_raw(P.encode_frame(P.CMD_HELLO, 204, version=7))
    frame = link.read_frame()
    assert frame.seq == 204 and P.decode_error(frame.payload).code == P.ERR_BAD_VERSION
    assert link.echo(b"x" * 1024) == b"x" * 1024


# ------------------------------------------------------------------ the real runtime

@pytest.fixture(scope="module")
def nn_shell():
    from measure_agent.firmware_build import resolve_runtime

    if resolve_runtime("auto") != "nn":
        pytest.skip("firmware/runtime/executor.c not present")
    return build_host_shell("nn")


def test_real_plan_on_host_shell(nn_shell, kws_model):
    plan_mod = pytest.importorskip("measure_agent.plan")
    from costmodel.tflite import read_model
    from measure_agent.plan.host import run_on_host

    plan = plan_mod.compile_plan(read_model(kws_model))
    x = np.random.default_rng(0).integers(-128, 128, size=plan.inputs[0].shape, dtype=np.int8)
    with PipeSerial([str(nn_shell)]) as port:
        link = BoardLink(port, timeout=5.0)
        assert link.hello().runtime == "nn"
        info = link.upload_plan(plan.blob)
        assert info.num_layers == len(plan.layers) and info.arena_bytes == plan.arena_bytes
        link.set_input(0, x.tobytes())
        r = link.run(2)  # the runtime reuses input memory: the shell restores inputs before each run
        assert len(r.layer_cycles) == len(plan.layers) and r.total > 0
        assert link.hello().flags & P.HELLO_FLAG_INPUT_SNAPSHOT
        link.run(1)
        out = link.read_output(0)
    ref = run_on_host(plan, [x], "reference")[0]
    assert out == ref.tobytes()


def test_hard_reset_on_host_is_soft(link):
    link.upload_plan(stub_plan())
    link.reset(hard=True)
    assert not link.info.loaded


def test_pyserial_over_pty(stub_shell):
    from measure_agent.serial_link import HostShellPty, open_serial

    with HostShellPty(stub_shell, "--timeout-ms", "50") as pty:
        port = open_serial(pty.path)
        try:
            link = BoardLink(port, timeout=2.0)
            assert link.hello().interbyte_timeout_ms == 50
            plan = stub_plan(layers=3, in_bytes=4, out_bytes=8)
            link.prepare(plan, [b"\x01\x02\x03\x04"])
            result = link.run(2)
            assert len(result.layer_cycles) == 3 and link.read_outputs() == [bytes([4, 5, 6, 7, 4, 5, 6, 7])]
            uploads = link.stats.requests
            link.prepare(plan, [b"\x00\x00\x00\x00"])  # same plan: no upload
            link.run(1)
            assert link.read_outputs() == [bytes([3] * 8)]
            assert link.stats.requests - uploads == 1 + 1 + 1  # SET_INPUT, RUN, READ_OUTPUT
        finally:
            port.close()


def test_slow_sender_within_interbyte_timeout(link):
    """Gaps shorter than the inter-byte timeout (USB-serial adapters chop frames) are not an error."""
    wire = P.encode_frame(P.CMD_ECHO, 205, b"slow")
    for i in range(0, len(wire), 3):
        link.write_raw(wire[i:i + 3])
        time.sleep(TIMEOUT_MS / 1000 / 4)
    frame = link.read_frame()
    assert frame == P.Frame(P.CMD_ECHO | P.RESPONSE_BIT, 205, b"slow")
