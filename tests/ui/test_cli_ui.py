"""`studio` with no arguments serves the studio on 127.0.0.1 and a free port; other hosts are opt-ins."""

import re
import subprocess
import sys
import time
import urllib.request

import pytest

import studio.ui
from studio.cli import main
from studio.ui.launch import parse_auth


@pytest.fixture
def launched(monkeypatch):
    calls = []
    monkeypatch.setattr(studio.ui, "launch", lambda *args: calls.append(args))
    return calls


def test_no_arguments_means_the_studio_on_localhost(launched):
    assert main([]) == 0
    host, port, share, auth, *_ = launched[0]
    assert (host, port, share, auth) == ("127.0.0.1", None, False, None)


def test_host_port_share_and_auth_are_explicit_opt_ins(launched):
    assert main(["--host", "0.0.0.0", "--port", "8080", "--share", "--auth", "me:pw"]) == 0
    assert main(["ui", "--port", "9000"]) == 0
    assert launched[0][:4] == ("0.0.0.0", 8080, True, "me:pw") and launched[1][1] == 9000


def test_models_dir_reaches_the_studio(launched, tmp_path):
    assert main(["--models-dir", str(tmp_path)]) == 0
    assert launched[0][6] == str(tmp_path)
    assert main([]) == 0 and launched[1][6] is None  # by default only the workspace


def test_malformed_auth_is_a_readable_error(capsys):
    with pytest.raises(ValueError, match="USER:PASSWORD"):
        parse_auth("nopassword")
    assert main(["--auth", "nopassword"]) == 2
    assert "--auth expects USER:PASSWORD" in capsys.readouterr().err


def test_python_m_studio_prints_a_free_local_port_and_serves(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "studio", "--workspace", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline, line = time.monotonic() + 120, ""
        while "running at" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, f"no local address printed: {line!r}"
        with urllib.request.urlopen(url.group(0), timeout=30) as page:
            assert page.status == 200 and "Adaptation Studio" in page.read().decode()
    finally:
        proc.terminate()
        proc.wait(30)
