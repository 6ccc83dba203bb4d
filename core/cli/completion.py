"""`netcon completion bash|zsh|fish`: a static completion script made from the commands'
declarations.

Commands, actions and options complete from tables in the script itself, so a Tab costs
no Python start-up; names of projects, instances, networks, pools, floating IPs,
security groups and hosts come from `netcon complete KIND PREFIX`, which does one query.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from core.cli.context import Context
from core.cli.spec import Arg, Command, Group, arg

SHELLS = ("bash", "zsh", "fish")
GLOBAL_OPTIONS = ("--db", "--json", "--help")
TOP_OPTIONS = (*GLOBAL_OPTIONS, "--read-only")


@dataclass
class Path:
    """One place in the command tree (``secgroup rule add``) and what may follow it."""

    words: tuple[str, ...]
    help: str
    subcommands: list[tuple[str, str]] = field(default_factory=list)
    options: list[Arg] = field(default_factory=list)
    positionals: list[Arg] = field(default_factory=list)

    @property
    def key(self) -> str:
        return " ".join(self.words)


def paths(commands: Sequence[Group | Command]) -> list[Path]:
    root = Path((), "netcon")
    found = [root]

    def walk(item: Group | Command, parent: Path) -> None:
        path = Path((*parent.words, item.name), item.help)
        parent.subcommands.append((item.name, item.help))
        found.append(path)
        if isinstance(item, Command):
            path.options = [a for a in item.args if not a.positional]
            path.positionals = [a for a in item.args if a.positional]
            return
        children: list[Group | Command] = [*item.commands, *item.groups]
        for child in children:
            walk(child, path)

    for item in commands:
        walk(item, root)
    return found


def _completer(a: Arg) -> str:
    """A kind for `netcon complete`, or ``=word word`` for a fixed list, or empty."""
    if a.complete is None:
        return ""
    if isinstance(a.complete, str):
        return a.complete
    return "=" + " ".join(a.complete)


def _option_names(path: Path) -> list[str]:
    if not path.words:
        return sorted(TOP_OPTIONS)
    if path.subcommands:
        return ["--help"]
    names = {n for a in path.options for n in a.names if n.startswith("--")}
    return sorted(names | set(GLOBAL_OPTIONS))


def _cases(rows: Iterator[tuple[str, str]]) -> str:
    return "\n".join(f"        {pattern}) echo {value} ;;" for pattern, value in rows)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def bash(commands: Sequence[Group | Command]) -> str:
    tree = paths(commands)
    subs = _cases(
        (_quote(p.key), _quote(" ".join(n for n, _ in p.subcommands)))
        for p in tree
        if p.subcommands
    )
    opts = _cases((_quote(p.key), _quote(" ".join(_option_names(p)))) for p in tree)
    valued = " | ".join(
        _quote(f"{p.key} {name}")
        for p in tree
        for a in p.options
        if a.takes_value
        for name in a.names
    )
    option_kinds = _cases(
        (_quote(f"{p.key} {name}"), _quote(_completer(a)))
        for p in tree
        for a in p.options
        if a.takes_value and _completer(a)
        for name in a.names
    )
    positional_kinds = _cases(
        (_quote(f"{p.key} {index}"), _quote(_completer(a)))
        for p in tree
        for index, a in enumerate(p.positionals)
        if _completer(a)
    )
    return BASH_TEMPLATE.format(
        subs=subs,
        opts=opts,
        valued=valued or "''",
        option_kinds=option_kinds,
        positional_kinds=positional_kinds,
    )


BASH_TEMPLATE = r"""# bash completion for netcon (made by `netcon completion bash`)
_netcon_subs() {{
    case "$1" in
{subs}
    esac
}}
_netcon_opts() {{
    case "$1" in
{opts}
    esac
}}
_netcon_takes_value() {{
    case "$1 $2" in
        *' --db') return 0 ;;
        {valued}) return 0 ;;
    esac
    return 1
}}
_netcon_option_kind() {{
    case "$1 $2" in
{option_kinds}
    esac
}}
_netcon_positional_kind() {{
    case "$1 $2" in
{positional_kinds}
    esac
}}
_netcon_words_for() {{
    # $1: a kind for `netcon complete`, or "=w1 w2" for a fixed list; $2: the prefix.
    local kind="$1" cur="$2"
    case "$kind" in
        "") return ;;
        =*) compgen -W "${{kind#=}}" -- "$cur" ;;
        *) netcon ${{_netcon_db:+--db "$_netcon_db"}} complete "$kind" "$cur" 2>/dev/null ;;
    esac
}}
_netcon() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" path="" position=0 i=1 word subs
    _netcon_db=""
    while [ "$i" -lt "$COMP_CWORD" ]; do
        word="${{COMP_WORDS[i]}}"
        case "$word" in
            --db=*) _netcon_db="${{word#--db=}}" ;;
            --db) _netcon_db="${{COMP_WORDS[i+1]}}"; i=$((i + 1)) ;;
            -*) if _netcon_takes_value "$path" "$word"; then i=$((i + 1)); fi ;;
            *)
                subs=" $(_netcon_subs "$path") "
                if [ "$position" = 0 ] && [[ "$subs" == *" $word "* ]]; then
                    path="${{path:+$path }}$word"
                else
                    position=$((position + 1))
                fi
                ;;
        esac
        i=$((i + 1))
    done
    local prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    if [ "$COMP_CWORD" -gt 1 ] && [[ "$prev" == -* ]] && _netcon_takes_value "$path" "$prev"; then
        COMPREPLY=($(_netcon_words_for "$(_netcon_option_kind "$path" "$prev")" "$cur"))
        return
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$(_netcon_opts "$path")" -- "$cur"))
        return
    fi
    subs="$(_netcon_subs "$path")"
    if [ -n "$subs" ] && [ "$position" = 0 ]; then
        COMPREPLY=($(compgen -W "$subs" -- "$cur"))
        return
    fi
    COMPREPLY=($(_netcon_words_for "$(_netcon_positional_kind "$path" "$position")" "$cur"))
}}
complete -F _netcon netcon
"""


def zsh(commands: Sequence[Group | Command]) -> str:
    # zsh runs bash completion functions through bashcompinit, which ships with zsh.
    return (
        "#compdef netcon\n# zsh completion for netcon (made by `netcon completion zsh`)\n"
        "autoload -U +X bashcompinit && bashcompinit\n" + bash(commands).split("\n", 1)[1]
    )


def fish(commands: Sequence[Group | Command]) -> str:
    tree = paths(commands)
    lines = [
        "# fish completion for netcon (made by `netcon completion fish`)",
        "function __netcon_words --description 'netcon words typed so far, options left out'",
        "    set -l skip 0",
        "    for word in (commandline -opc)[2..-1]",
        "        if test $skip = 1; set skip 0; continue; end",
        "        switch $word",
        "            case --db; set skip 1",
        "            case '-*'",
        "            case '*'; echo $word",
        "        end",
        "    end",
        "end",
        "function __netcon_at --description 'whether the typed words are exactly this path'",
        '    string match -q -- (string join " " $argv) (string join " " (__netcon_words))',
        "end",
        "function __netcon_position --description 'the path, then the index of the next word'",
        "    set -l words (__netcon_words)",
        "    for length in (seq (count $words) -1 1)",
        '        set -l head (string join " " $words[1..$length])',
        "        if contains -- $head $__netcon_paths",
        '            echo "$head "(math (count $words) - $length)',
        "            return",
        "        end",
        "    end",
        "end",
        "complete -c netcon -f",
    ]
    leaves = [p.key for p in tree if p.words and not p.subcommands]
    lines.append("set -g __netcon_paths " + " ".join(_quote(c) for c in leaves))
    for p in tree:
        lines += _fish_lines(p)
    for name in GLOBAL_OPTIONS:
        lines.append(f"complete -c netcon -l {name[2:]}" + (" -r" if name == "--db" else ""))
    return "\n".join(lines) + "\n"


def _fish_lines(p: Path) -> list[str]:
    """What may follow one path: its actions, its options with their values, and the names
    its positional arguments take."""
    condition = "__fish_use_subcommand" if not p.words else f"__netcon_at {p.key}"
    lines = [
        f"complete -c netcon -n {_quote(condition)} -a {name} -d {_quote(text)}"
        for name, text in p.subcommands
    ]
    for a in p.options:
        for name in a.names:
            if name.startswith("--"):
                lines.append(
                    f"complete -c netcon -n {_quote(condition)} -l {name[2:]}{_fish_value(a)}"
                )
    for index, a in enumerate(p.positionals):
        kind = _completer(a)
        if kind:
            test = f'string match -q -- "{p.key} {index}" (__netcon_position)'
            lines.append(f"complete -c netcon -n {_quote(test)} -a {_quote(_fish_words(kind))}")
    return lines


def _fish_value(a: Arg) -> str:
    help_text = a.options.get("help", "")
    described = f" -d {_quote(help_text)}" if help_text else ""
    if not a.takes_value:
        return described
    kind = _completer(a)
    return (f" -xa {_quote(_fish_words(kind))}" if kind else " -r") + described


def _fish_words(kind: str) -> str:
    return kind[1:] if kind.startswith("=") else f"(netcon complete {kind} (commandline -ct))"


def print_script(ctx: Context) -> None:
    script = {"bash": bash, "zsh": zsh, "fish": fish}[ctx.args.shell](ctx.args.commands)
    ctx.out.write(script)


command = Command(
    "completion",
    "print a shell completion script: source <(netcon completion bash)",
    (arg("shell", choices=SHELLS),),
    print_script,
)
