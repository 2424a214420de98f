import io

from edgewise.progress import LineProgress, Progress


def test_the_library_default_prints_nothing(capsys):
    p = Progress()
    p.stage("compress", 2)
    p.step("int8")
    p.info("note")
    p.done()
    assert capsys.readouterr() == ("", "")


def test_line_progress_writes_stages_every_nth_step_and_notes():
    out = io.StringIO()
    p = LineProgress(every=2, out=out)
    p.stage("edge answers", 5)
    for i in range(5):
        p.step(f"item {i}")
    p.info("skipped int4: no calibration text")
    lines = out.getvalue().splitlines()
    assert lines[0] == "edge answers: 5 steps"
    assert [ln.split()[1] for ln in lines[1:3]] == ["answers", "answers"] and "2/5" in lines[1] and "4/5" in lines[2]
    assert lines[3] == "skipped int4: no calibration text" and len(lines) == 4
