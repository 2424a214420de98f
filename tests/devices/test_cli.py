import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from edgewise.cli import app, main

runner = CliRunner()


def test_devices_json_lists_every_profile_with_sources():
    res = runner.invoke(app, ["devices", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    names = [d["name"] for d in data]
    required = {"raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano", "flagship-phone", "laptop-8gb", "host"}
    assert required <= set(names)
    host = data[names.index("host")]
    assert host["measured"] and host["bandwidth_gbs"] > 0 and host["sources"]["bandwidth_gbs"]


def test_devices_table_and_single_device():
    res = runner.invoke(app, ["devices"])
    assert res.exit_code == 0 and "raspberry-pi-5" in res.output and "spec-peak" in res.output
    res = runner.invoke(app, ["devices", "raspberry-pi-5"])
    assert res.exit_code == 0 and "LPDDR4X-4267" in res.output


def test_fit_table_labels_the_estimate():
    res = runner.invoke(app, ["fit", "qwen2.5-0.5b", "--device", "raspberry-pi-5", "--context", "2048"],
                        env={"COLUMNS": "120"})
    assert res.exit_code == 0, res.output
    for text in ("int4", "q4_k_m", "est. tok/s", "ESTIMATE, not a measurement", "context 2048"):
        assert text in res.output


def test_fit_json():
    res = runner.invoke(app, ["fit", "smollm2-135m", "-d", "jetson-orin-nano", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["device"]["name"] == "jetson-orin-nano" and d["context"] == 4096
    int4 = next(r for r in d["rows"] if r["precision"] == "int4")
    assert int4["fits"] and int4["est_tokens_per_s"] > 0


@pytest.mark.parametrize("argv, needle", [
    (["fit", "no-such-model", "--device", "raspberry-pi-5"], "unknown model 'no-such-model'"),
    (["fit", "smollm2-135m", "--device", "pi"], "unknown device 'pi'"),
    (["fit", "smollm2-135m", "--device", "raspberry-pi-5", "--context", "100000"], "lower --context"),
    (["devices", "toaster"], "unknown device 'toaster'"),
])
def test_bad_input_is_one_line_and_exit_code_2(argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_cli_subprocess_exit_code():
    p = subprocess.run([sys.executable, "-c", "from edgewise.cli import main; main()", "fit", "nope", "-d",
                        "raspberry-pi-4"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr.strip().startswith("error: unknown model") and not p.stdout
    assert len(p.stderr.strip().splitlines()) == 1
