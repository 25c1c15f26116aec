"""Every path a `myotone` command takes, given badly: one line, in the user's terms,
exit code 1, never a traceback. The walk finds every path option and argument of
every command, so a new one cannot be added without a row here."""
import json
from pathlib import Path

import pytest

from cli_helpers import REPO, cli, one_line_error, usage_error
from myotone.cli import main
from myotone.cli_paths import ImageFile, InFile, OutFile, OutFolder

SCENARIO = str(REPO / "docs" / "scenarios" / "host-gone.json")


def commands(group=main, prefix=()):
    for name, cmd in sorted(group.commands.items()):
        path = prefix + (name,)
        if hasattr(cmd, "commands"):
            yield from commands(cmd, path)
        else:
            yield path, cmd


@pytest.fixture
def rec(tmp_path):
    p = tmp_path / "rec.json"
    p.write_text(json.dumps({"n": 1, "program": "lift", "samples": [{"t_s": 1, "ua": 10, "ohm": 9000, "led_pct": 0}]}))
    return str(p)


# (command, option or None for the argument) -> argv with {} where the bad path goes
INVOCATIONS = {
    (("emu", "run"), "scenario_path"): ["emu", "run", "{}"],
    (("emu", "run"), "vcd"): ["emu", "run", SCENARIO, "--vcd", "{}"],
    (("emu", "run"), "trace_json"): ["emu", "run", SCENARIO, "--trace-json", "{}"],
    (("emu", "run"), "flash_path"): ["emu", "run", SCENARIO, "--flash", "{}"],
    (("emu", "scope"), "scenario_path"): ["emu", "scope", "{}", "--out", "x.png"],
    (("emu", "scope"), "out"): ["emu", "scope", SCENARIO, "--out", "{}"],
    (("emu", "serve"), "flash_path"): ["emu", "serve", "--tcp", "0", "--flash", "{}"],
    (("emu", "serve"), "uf2"): ["emu", "serve", "--tcp", "0", "--chip", "rp2040", "--uf2", "{}"],
    (("logs", "export"), "csv_out"): ["logs", "export", "{rec}", "--csv", "{}"],
    (("logs", "pull"), "out_dir"): ["logs", "pull", "--all", "--port", "emu", "--dir", "{}"],
    (("plot",), "out"): ["plot", "{rec}", "--out", "{}"],
    (("selftest",), "out"): ["selftest", "--port", "emu", "--out", "{}"],
    (("programs", "write"), "path"): ["programs", "write", "{}", "--port", "emu"],
    (("study", "create"), "key_path"): ["study", "create", "{}", "--arm", "A=sham", "--arm", "B=sculpt",
                                        "--port", "emu"],
    (("study", "unblind"), "key_path"): ["study", "unblind", "{}", "--port", "emu"],
    (("study", "unblind"), "out_dir"): ["study", "unblind", "{rec}", "--dir", "{}", "--port", "emu"],
}

# paths given as plain strings (a log number or a file; a board name or a file)
STRING_PATHS = [
    ["logs", "export", "{}"],
    ["plot", "{}", "--out", "{out}"],
    ["emu", "serve", "--tcp", "0", "--board", "{}"],
    ["hil", "--board", "{}"],
    ["hello", "--port", "emu:{}"],
]


def bad_values(kind, tmp: Path):
    a_file = tmp / "a-file.txt"
    a_file.write_text("not json {")
    folder = tmp / "a-folder"
    folder.mkdir(exist_ok=True)
    under_file = str(a_file / "x.out")           # fails even for root: a file is not a folder
    no_folder = str(tmp / "no-such-folder" / "x.out")
    if kind is OutFile:
        return [str(folder), no_folder, under_file]
    if kind is InFile:
        return [str(tmp / "missing.json"), str(folder)]
    if kind is ImageFile:
        return [str(folder), no_folder, under_file]
    if kind is OutFolder:
        return [str(a_file), under_file]
    raise AssertionError(kind)


def test_every_path_parameter_has_a_row():
    found = {(path, p.name) for path, cmd in commands() for p in cmd.params
             if isinstance(p.type, (OutFile, InFile, ImageFile, OutFolder))}
    assert found == set(INVOCATIONS), found ^ set(INVOCATIONS)


@pytest.mark.parametrize("key", sorted(INVOCATIONS), ids=lambda k: " ".join(k[0]) + ":" + k[1])
def test_bad_paths_are_one_line(key, tmp_path, rec, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, pname = key
    cmd = dict(commands())[path]
    kind = type(next(p for p in cmd.params if p.name == pname).type)
    for bad in bad_values(kind, tmp_path):
        argv = [a.replace("{rec}", rec).replace("{}", bad) for a in INVOCATIONS[key]]
        r = cli(*argv)
        assert r.exit_code == 1, (argv, r.output)
        err = one_line_error(r)
        assert bad in err or Path(bad).name in err, err


@pytest.mark.parametrize("argv", STRING_PATHS, ids=lambda a: " ".join(a[:2]))
def test_bad_string_paths_are_one_line(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a_file = tmp_path / "broken.json"
    a_file.write_text("not json {")
    folder = tmp_path / "a-folder.json"
    folder.mkdir()
    for bad in (str(tmp_path / "missing.json"), str(folder), str(a_file)):
        r = cli(*[a.replace("{out}", str(tmp_path / "o.png")).replace("{}", bad) for a in argv])
        assert r.exit_code == 1, (bad, r.output)
        one_line_error(r)


def test_a_path_that_fails_while_writing_is_one_line(tmp_path, monkeypatch, rec):
    """The net under the checks: the folder goes away between the check and the write."""
    from myotone import logs

    def vanish(_rec):
        (tmp_path / "gone").rmdir()
        return "t_s\n"
    (tmp_path / "gone").mkdir()
    monkeypatch.setattr(logs, "to_csv", vanish)
    one_line_error(cli("logs", "export", rec, "--csv", str(tmp_path / "gone" / "x.csv")), "x.csv",
                   "No such file")


def test_good_paths_still_work(tmp_path, rec):
    r = cli("logs", "export", rec, "--csv", str(tmp_path / "x.csv"))
    assert r.exit_code == 0 and (tmp_path / "x.csv").read_text().startswith("t_s")
    r = cli("logs", "export", rec)                             # '-': stdout
    assert r.exit_code == 0 and r.stdout.startswith("t_s")
    r = cli("emu", "run", SCENARIO, "--vcd", str(tmp_path / "t.vcd"), "--json")
    assert r.exit_code == 0 and (tmp_path / "t.vcd").stat().st_size > 0


# ---- matplotlib is an optional extra ------------------------------------------------
def test_plot_and_scope_without_matplotlib_say_how_to_get_it(tmp_path, rec, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_matplotlib(name, *a, **kw):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *a, **kw)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    one_line_error(cli("plot", rec, "--out", str(tmp_path / "x.png")), "matplotlib", "pip install 'myotone[plot]'")
    one_line_error(cli("emu", "scope", SCENARIO, "--out", str(tmp_path / "x.png")), "myotone[plot]")
    assert not (tmp_path / "x.png").exists()


def test_matplotlib_is_only_in_the_plot_extra():
    import tomllib
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("matplotlib") for d in project["dependencies"])
    assert any(d.startswith("matplotlib") for d in project["optional-dependencies"]["plot"])


def test_an_interrupted_write_leaves_the_old_file_and_no_partial_one(tmp_path, rec, monkeypatch):
    from myotone import plot as plot_mod
    out = tmp_path / "log.png"
    out.write_bytes(b"the old plot")

    def interrupted(_rec, path):
        Path(path).write_bytes(b"half a new pl")
        raise KeyboardInterrupt
    monkeypatch.setattr(plot_mod, "plot", interrupted)
    r = cli("plot", rec, "--out", str(out))
    assert r.exit_code == 130 and r.stderr.strip().splitlines()[-1].startswith("Interrupted by Ctrl-C")
    assert out.read_bytes() == b"the old plot" and sorted(p.name for p in tmp_path.iterdir()) == ["log.png", "rec.json"]


# ---- bad values that used to be tracebacks ------------------------------------------
def test_bad_values_are_one_line(tmp_path):
    import socket
    one_line_error(cli("demo", "--board", "nope"), "the emulator did not start", "no board file 'nope'")
    one_line_error(cli("emu", "scope", SCENARIO, "--out", str(tmp_path / "a.png"), "--from-s", "5", "--to-s", "1"),
                   "must be after --from-s")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_line_error(cli("emu", "serve", "--tcp", str(port)), f"cannot serve on 127.0.0.1:{port}")
    usage_error(cli("emu", "serve", "--tcp", "99999"), "myotone emu serve", "0<=x<=65535")   # click's range check
