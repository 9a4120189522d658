"""The command line, run in-process."""
import numpy as np

import imgio.v3 as iio
from imgio.cli import main


def test_demo_writes_and_reports(tmp_path, capsys):
    assert main(["demo", str(tmp_path), "--shape", "8,64,64"]) == 0
    out = capsys.readouterr().out
    assert "(8, 64, 64)" in out and "identical pixels" in out
    vol = iio.imread(tmp_path / "demo_stack.tif")
    assert vol.shape == (8, 64, 64) and vol.dtype == np.uint16
    assert vol.std() > 10  # structure, not a constant image


def test_errors_are_one_line(capsys):
    assert main(["demo", "/proc/definitely/not/here", "--shape", "2,4,4"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("imgio demo: error:") and "Traceback" not in err
