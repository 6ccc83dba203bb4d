"""What a script sees: lean start-up, one JSON shape, JSON errors, batches, completion."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from core.cli import main
from core.cli.batch import run_batch
from core.cli.context import Context
from core.cli.outcome import parse
from core.service import ChangeSet
from core.service.demo import load_demo
from tests.support import make_service, sqlite_dump

HEAVY = ("sqlalchemy", "sqlalchemy.orm", "alembic", "pyroute2", "textual", "core.service")


def run(db: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["--db", f"sqlite:///{db}", *args])
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = tmp_path / "netcon.db"
    assert run(path, "demo")[0] == 0
    return path


def modules_after(*argv: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules a `netcon` process has imported when it exits."""
    probe = (
        "import atexit, json, sys\n"
        "def report():\n"
        "    sys.__stderr__.write('MODULES ' + json.dumps(sorted(sys.modules)))\n"
        "atexit.register(report)\n"
        "from tui.launch import main\n"
        "sys.exit(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    marker = result.stderr.rindex("MODULES ")
    return set(json.loads(result.stderr[marker + len("MODULES ") :]))


def test_help_imports_neither_the_database_nor_the_host_stack() -> None:
    for argv in (["--help"], ["floating", "associate", "--help"], ["host", "apply", "--help"]):
        loaded = modules_after(*argv)
        assert not loaded & set(HEAVY), (argv, loaded & set(HEAVY))


def test_a_read_command_imports_no_orm_alembic_host_stack_or_console(db: Path) -> None:
    loaded = modules_after("--db", f"sqlite:///{db}", "network", "list")
    assert "sqlalchemy" in loaded
    assert not loaded & {"sqlalchemy.orm", "alembic", "pyroute2", "textual"}


def frozen_at_exit(probe: str) -> int:
    """How many objects the collector no longer looks at when the process's at-exit
    handlers run, after ``probe`` (which runs a command)."""
    script = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: sys.__stderr__.write(f'FROZEN {gc.get_freeze_count()}'))\n"
        + probe
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    marker = result.stderr.rindex("FROZEN ")
    return int(result.stderr[marker + len("FROZEN ") :].split()[0])


def test_a_commands_process_leaves_what_it_made_to_the_exit_not_the_collector(
    db: Path,
) -> None:
    # The executable (and python -m tui): its command line is the process's own.
    argv = ["netcon", "--db", f"sqlite:///{db}", "network", "list"]
    executable = f"from tui.launch import main\nsys.argv = {argv!r}\nsys.exit(main())\n"
    assert frozen_at_exit(executable) > 10_000
    # A caller that runs a command in its own process keeps its collector as it was.
    in_process = f"from tui.launch import main\nmain({argv[1:]!r})\n"
    assert frozen_at_exit(in_process) == 0
    in_process = f"from core.cli import main\nmain({argv[1:]!r})\n"
    assert frozen_at_exit(in_process) == 0


def test_a_command_imports_its_own_module_and_no_other_commands() -> None:
    from core.cli.commands import DECLARED, every_command

    # The table the parser reads names every command as its module declares it.
    assert [name for name, _, _ in DECLARED] == [item.name for item in every_command()]
    modules = {module for _, module, _ in DECLARED}
    loaded = modules_after("host", "apply", "--help")
    assert loaded & modules == {"core.cli.host"}
    # The help lists every command, and `batch` reads them all.
    assert modules <= modules_after("--help")


def test_lists_objects_and_deletions_have_one_shape(db: Path) -> None:
    code, out, _ = run(db, "--json", "network", "list")
    networks = json.loads(out)
    assert isinstance(networks, list) and code == 0
    assert list(networks[0]) == [
        "id", "label", "manager", "cidr", "vlan", "bridge", "gateway", "project", "host",
        "used", "free",
    ]  # fmt: skip
    text_header = run(db, "network", "list")[1].splitlines()[0].split()
    assert [h.lower() for h in text_header] == list(networks[0])

    code, out, _ = run(db, "--json", "network", "show", "10.20.0.0/24")
    shown = json.loads(out)
    assert isinstance(shown, dict) and shown["bridge"] == "brflat"

    code, out, _ = run(db, "--json", "floating", "list")
    floating = json.loads(out)
    assert [f["address"] for f in floating][:3] == ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
    assert set(floating[0]) == {
        "address", "pool", "host", "interface", "project", "instance", "fixed_address"
    }  # fmt: skip

    code, out, _ = run(db, "--json", "project", "create", "delta", "--manager", "flatdhcp")
    made = json.loads(out)
    code, out, _ = run(db, "--json", "project", "delete", "delta")
    assert json.loads(out) == made  # the deletion reports what went, in the same form

    code, out, _ = run(db, "--json", "instance", "terminate", "db1")
    gone = json.loads(out)
    assert gone["name"] == "db1" and gone["addresses"][0]["address"].startswith("10.0.0.")

    code, out, _ = run(db, "--json", "floating", "release", "203.0.113.3")
    assert json.loads(out)["project"] is None


def test_errors_under_json_are_an_object_with_field_rule_and_status(db: Path) -> None:
    code, out, err = run(db, "--json", "floating", "associate", "203.0.113.9", "web1")
    assert (code, out) == (2, "")
    error = json.loads(err)["error"]
    assert error["field"] == "address"
    assert error["exit_status"] == 2
    assert "not allocated" in error["rule"] and error["message"].startswith("address: ")

    code, _, err = run(db, "--json", "network", "create", "10.9.0.0/33")
    assert code == 2 and json.loads(err)["error"]["field"] == "fixed_range"

    code, _, err = run(db, "--json", "floating", "crete")
    error = json.loads(err)["error"]
    assert code == 2 and "invalid choice" in error["rule"]


def test_batch_runs_many_commands_in_one_process(db: Path) -> None:
    script = (
        "# allocate two addresses and put them on web servers\n"
        "floating allocate --project beta --pool public\n"
        "floating allocate --project beta --pool public\n"
        "floating associate 203.0.113.6 app2\n"
        "\n"
        "floating list --project beta\n"
    )
    code, out, err = run(db, "batch", stdin=script)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:3] == [
        "203.0.113.5",
        "203.0.113.6",
        "associated 203.0.113.6 with app2 (10.0.1.4)",
    ]
    assert "app2" in out.splitlines()[-1]


def test_associate_moves_an_associated_address_and_no_move_refuses(db: Path) -> None:
    # The demo: 203.0.113.1 on web1, 203.0.113.3 allocated to alpha, db1 with none.
    code, out, err = run(db, "floating", "associate", "203.0.113.1", "db1")
    assert (code, err) == (0, "")
    assert out == "moved 203.0.113.1 from web1 to db1 (10.0.0.5)\n"

    before = sqlite_dump(f"sqlite:///{db}")
    code, out, err = run(db, "floating", "associate", "203.0.113.1", "web1", "--no-move")
    assert (code, out) == (2, "")
    assert err == (
        "netcon: address: 203.0.113.1 is associated with db1 (10.0.0.5); "
        "not moved to web1 (--no-move)\n"
    )
    assert sqlite_dump(f"sqlite:///{db}") == before
    # --no-move on a free address is an ordinary association.
    code, out, _ = run(db, "floating", "associate", "203.0.113.3", "web1", "--no-move")
    assert (code, out) == (0, "associated 203.0.113.3 with web1 (10.0.0.3)\n")

    # A batch takes the same path, each line its own change: web2 has an address of its
    # own, so the first line is refused and the batch stops there.
    script = "floating associate 203.0.113.1 web2\nfloating disassociate 203.0.113.1\n"
    code, out, err = run(db, "batch", stdin=script)
    assert code == 2
    assert err.startswith("netcon: line 1: instance: 10.0.0.4 of web2 already has floating IP")
    script = "floating disassociate 203.0.113.1\nfloating associate 203.0.113.3 db1\n"
    code, out, err = run(db, "batch", stdin=script)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "disassociated 203.0.113.1",
        "moved 203.0.113.3 from web1 to db1 (10.0.0.5)",
    ]


def test_batch_stops_at_the_first_failure_unless_forced(db: Path) -> None:
    script = (
        "project create one --manager flat\nproject create one\nproject create two --manager flat\n"
    )
    code, out, err = run(db, "-", stdin=script)
    assert code == 2
    assert err == "netcon: line 2: project: 'one' already exists\n"
    assert "two" not in run(db, "project", "list")[1]

    code, out, err = run(db, "batch", "--force", stdin=script.replace("one", "three"))
    assert code == 2 and err.count("\n") == 1
    assert "two" in run(db, "project", "list")[1]


def test_batch_json_is_one_document_per_line_and_errors_name_the_line(db: Path) -> None:
    script = "project list\nfloating allocate --project nobody\n"
    code, out, err = run(db, "--json", "batch", "--force", stdin=script)
    assert code == 2
    (only,) = out.splitlines()
    assert [p["name"] for p in json.loads(only)][:2] == ["alpha", "beta"]
    error = json.loads(err)["error"]
    assert error["where"] == "line 2" and error["field"] == "project"


def test_a_batch_tells_the_host_once(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    load_demo(service)
    told: list[ChangeSet] = []
    service.listeners.append(told.append)
    from core.cli.commands import COMMANDS
    from core.cli.parser import build_parser

    args = parse(build_parser(COMMANDS), ["batch"])
    script = io.StringIO("floating disassociate 203.0.113.1\nfloating disassociate 203.0.113.2\n")
    out = io.StringIO()
    context = Context(args, out=out, service=service)
    assert run_batch(context, lines=script) == 0
    assert len(told) == 1 and told[0].floating


def test_complete_prints_names_from_one_query(db: Path) -> None:
    code, out, _ = run(db, "complete", "project", "a")
    assert (code, out) == (0, "alpha\n")
    assert run(db, "complete", "floating", "203.0.113.2")[1].split() == ["203.0.113.2"]
    assert run(db, "complete", "instance", "")[1].split()[:2] == ["app1", "app2"]
    # No database yet: nothing to offer, nothing said, none made.
    missing = db.parent / "absent.db"
    assert run(missing, "complete", "project", "")[:2] == (0, "")
    assert not missing.exists()
    loaded = modules_after("--db", f"sqlite:///{db}", "complete", "project", "a")
    assert not loaded & set(HEAVY)


def test_dhcp_event_refuses_an_unknown_action_and_imports_no_sqlalchemy(db: Path) -> None:
    code, _, err = run(db, "dhcp-event", "tftp", "fa:16:3e:00:00:01", "10.0.0.3")
    assert code == 2 and "must be one of add, old, del, init" in err
    loaded = modules_after("--db", f"sqlite:///{db}", "dhcp-event", "init", env={"NETWORK_ID": "1"})
    assert not loaded & set(HEAVY)


def test_dhcp_event_init_prints_the_networks_leases_in_dnsmasq_lease_file_form(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instances = json.loads(run(db, "--json", "instance", "list")[1])
    first, second = (i["addresses"][0] for i in instances[:2])
    network = next(
        n["id"]
        for n in json.loads(run(db, "--json", "network", "list")[1])
        if n["cidr"] == first["network"]
    )
    for address in (first, second):
        assert run(db, "dhcp-event", "add", address["mac"], address["address"])[0] == 0
    monkeypatch.setenv("NETWORK_ID", str(network))
    monkeypatch.setenv("DHCP_LEASE_TIME", "600")
    before = int(time.time())
    code, out, _ = run(db, "dhcp-event", "init")
    assert code == 0
    lines = [line.split() for line in out.splitlines()]
    # EXPIRY MAC IP HOSTNAME CLIENT-ID, only the leased addresses of that network.
    wanted = {
        (a["mac"], a["address"], i["name"])
        for i in instances[:2]
        for a in i["addresses"]
        if a["network"] == first["network"]
    }
    assert {(mac, ip, name) for _, mac, ip, name, _ in lines} == wanted
    assert all(before + 600 <= int(expiry) <= int(time.time()) + 600 for expiry, *_ in lines)
    assert all(client == "*" for *_, client in lines)

    # A database it cannot read must not keep dnsmasq from starting: no leases, status 0.
    code, out, err = run(db.parent / "missing" / "netcon.db", "dhcp-event", "init")
    assert (code, out) == (0, "") and "no leases read" in err

    monkeypatch.delenv("NETWORK_ID")
    code, out, err = run(db, "dhcp-event", "init")
    assert (code, out) == (0, "") and "NETWORK_ID" in err


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_from_the_generated_script(db: Path, tmp_path: Path) -> None:
    script = tmp_path / "netcon.bash"
    code, out, _ = run(db, "completion", "bash")
    script.write_text(out)
    launcher = tmp_path / "bin" / "netcon"
    launcher.parent.mkdir()
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} -m tui "$@"\n')
    launcher.chmod(0o755)

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        shell = (
            f"source {script}\n"
            f"COMP_WORDS=({' '.join(repr(w) if w else chr(34) * 2 for w in words)})\n"
            f"COMP_CWORD={len(words) - 1}\n"
            "_netcon\n"
            'printf "%s\\n" "${COMPREPLY[@]}"\n'
        )
        env = {
            **os.environ,
            "PATH": f"{launcher.parent}:{os.environ['PATH']}",
            "NETCON_DATABASE_URL": f"sqlite:///{db}",
        }
        result = subprocess.run(
            ["bash", "-c", shell], capture_output=True, text=True, env=env, check=True
        )
        return [w for w in result.stdout.splitlines() if w]

    assert complete("netcon flo") == ["floating"]
    assert complete("netcon floating as") == ["associate"]
    assert complete("netcon floating associate 203.0.113.2") == ["203.0.113.2"]
    assert complete("netcon floating associate 203.0.113.4 we") == ["web1", "web2"]
    assert complete("netcon floating allocate --project ") == [
        "alpha", "beta", "gamma", "legacy", "ops"
    ]  # fmt: skip
    assert complete("netcon network create --manager f") == ["flat", "flatdhcp"]
    assert "--segmentation" in complete("netcon network create --s")
    assert complete("netcon secgroup rule a") == ["add"]
    assert complete("netcon completion ") == ["bash", "zsh", "fish"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completion_from_the_generated_script(db: Path, tmp_path: Path) -> None:
    script = tmp_path / "netcon.fish"
    script.write_text(run(db, "completion", "fish")[1])
    launcher = tmp_path / "bin" / "netcon"
    launcher.parent.mkdir()
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} -m tui "$@"\n')
    launcher.chmod(0o755)
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "PATH": f"{launcher.parent}:{os.environ['PATH']}",
        "NETCON_DATABASE_URL": f"sqlite:///{db}",
    }

    def complete(line: str) -> list[str]:
        result = subprocess.run(
            ["fish", "-c", f"source {script}; complete -C'{line}'"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        assert result.stderr == ""
        return [w.split("\t")[0] for w in result.stdout.splitlines()]

    assert complete("netcon flo") == ["floating"]
    assert complete("netcon floating associate 203.0.113.4 we") == ["web1", "web2"]
    assert complete("netcon network create --manager f") == ["flat", "flatdhcp"]


def test_lease_script_answers_the_leases_dnsmasq_learnt_at_start_without_python(
    tmp_path: Path,
) -> None:
    from core.linux.dnsmasq import script_text

    script = tmp_path / "dhcp-script"
    # A "python" that fails: whatever reaches it shows as exit status 1.
    script.write_text(script_text(python="/bin/false"))
    script.chmod(0o755)
    event = [str(script), "old", "fa:16:3e:00:00:01", "10.0.0.3", "web1"]
    at_start = subprocess.run(event, env={"DNSMASQ_DATA_MISSING": "1"}, check=False)
    assert at_start.returncode == 0
    # An "old" event later (a changed hostname) and every other action go to netcon.
    assert subprocess.run(event, env={}, check=False).returncode == 1
    add = [str(script), "add", *event[2:]]
    assert subprocess.run(add, env={"DNSMASQ_DATA_MISSING": "1"}, check=False).returncode == 1


def test_the_lease_script_starts_netcon_only_for_what_the_database_may_not_know(
    tmp_path: Path,
) -> None:
    """dnsmasq's lease script: "init" prints the leases the apply wrote; "old" for a lease
    the database is known to hold (every renewal, with --leasefile-ro) starts nothing;
    anything else runs `netcon dhcp-event`, and what it recorded is known from then on."""
    from core.linux.dnsmasq import script_text

    calls = tmp_path / "calls"
    fake = tmp_path / "python"
    # Stands for the interpreter: says what it was asked, fails for the MAC ...:99.
    fake.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\ncase "$*" in *:99\\ *) exit 1 ;; esac\nexit 0\n'
    )
    fake.chmod(0o755)
    script = tmp_path / "dhcp-script"
    script.write_text(script_text(str(fake)))
    script.chmod(0o755)
    leases = tmp_path / "br100.leases"
    leases.write_text("1700000120 fa:16:3e:00:00:01 10.0.0.3 web1 *\n")
    (tmp_path / "br100.leased").write_text("fa:16:3e:00:00:01 10.0.0.3\n")
    env = {"PATH": os.environ["PATH"], "NETCON_LEASES": str(leases)}

    def event(*words: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *words], env={**env, **extra}, capture_output=True, text=True
        )

    assert event("init").stdout == leases.read_text()
    assert event("old", "fa:16:3e:00:00:01", "10.0.0.3", "web1").returncode == 0
    assert event("old", "fa:16:3e:00:00:02", "10.0.0.4", DNSMASQ_DATA_MISSING="1").returncode == 0
    assert not calls.exists()  # a renewal of a known lease, and a lease read at start
    assert event("old", "fa:16:3e:00:00:02", "10.0.0.4", "web2").returncode == 0
    assert event("old", "fa:16:3e:00:00:02", "10.0.0.4", "web2").returncode == 0
    assert event("add", "fa:16:3e:00:00:03", "10.0.0.5", "db1").returncode == 0
    assert event("old", "fa:16:3e:00:00:03", "10.0.0.5", "db1").returncode == 0
    assert event("del", "fa:16:3e:00:00:01", "10.0.0.3", "web1").returncode == 0
    # A failed recording (the database away) is tried again at the next event.
    assert event("add", "fa:16:3e:00:00:99", "10.0.0.9").returncode == 1
    assert event("old", "fa:16:3e:00:00:99", "10.0.0.9").returncode == 1
    assert calls.read_text().splitlines() == [
        "-m core.cli dhcp-event old fa:16:3e:00:00:02 10.0.0.4 web2",
        "-m core.cli dhcp-event add fa:16:3e:00:00:03 10.0.0.5 db1",
        "-m core.cli dhcp-event del fa:16:3e:00:00:01 10.0.0.3 web1",
        "-m core.cli dhcp-event add fa:16:3e:00:00:99 10.0.0.9",
        "-m core.cli dhcp-event old fa:16:3e:00:00:99 10.0.0.9",
    ]
    # ...and kept in the spool, for the host's next apply to record.
    assert (tmp_path / "lease-events").read_text().splitlines() == [
        "add fa:16:3e:00:00:99 10.0.0.9",
        "old fa:16:3e:00:00:99 10.0.0.9",
    ]
    # Without the apply's file (a dnsmasq started by hand), init asks the database.
    del env["NETCON_LEASES"]
    assert event("init").returncode == 0
    assert calls.read_text().splitlines()[-1] == "-m core.cli dhcp-event init"
